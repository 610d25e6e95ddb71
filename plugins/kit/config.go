package kit

import (
	"fmt"
	"log/slog"
	"path"
	"strings"
	"time"
)

// Connection says how a scheduler plugin reaches a cluster's login node.
// Secrets are plain strings here because they must cross the process boundary;
// the core never logs a Connection (see String).
type Connection struct {
	Host       string `toml:"host"`
	Port       int    `toml:"port"`
	User       string `toml:"user"`
	Password   Secret `toml:"password"`
	KeyPath    string `toml:"key_path"`
	KeyPassEnv string `toml:"key_passphrase_env"` // name of the env var holding the key's passphrase
	KnownHosts string `toml:"known_hosts"`        // path of a known_hosts file
	HostKey    string `toml:"host_key"`           // pinned key, "ssh-ed25519 AAAA..." (wins over known_hosts)
}

// String prints the connection without its secrets.
func (c Connection) String() string {
	return c.User + "@" + c.Host
}

// Cluster is everything a scheduler plugin is told about the cluster it serves.
// One plugin process serves one cluster.
type Cluster struct {
	Label      string     `toml:"label"`
	Scheduler  string     `toml:"scheduler"` // slurm, pbs, ssh, local, or a drop-in plugin's name
	UploadPath string     `toml:"upload_path"`
	Connection Connection `toml:"connection"`
	// JobIDRegex finds the job id in a wrapper's output; its first group is the id.
	// Empty means the plugin's default (slurm: `Submitted batch job (\d+)`).
	JobIDRegex string `toml:"job_id_regex"`
	// MaxJobs caps concurrent jobs of the local plugin (0: number of CPUs).
	MaxJobs int `toml:"max_jobs"`
	// Flavor selects a dialect where a scheduler has several (pbs: "pro" or "torque").
	Flavor string `toml:"flavor"`
	// Options are free-form settings for drop-in plugins.
	Options map[string]string `toml:"options"`
	// RunAs (local only) is the Unix user the calculations run as, and every
	// command and file operation in upload_path with them: a job then cannot read
	// hpcbot's token, store or control socket. hpcbot switches to it directly when
	// it runs as root, else through `sudo -n -u RunAs`. Empty: hpcbot's own user,
	// allowed only with AllowSameUser or when every program is HarmlessAsBotUser.
	RunAs string `toml:"run_as"`
	// AllowSameUser (local only) lets calculations run as hpcbot's own user
	// whatever their program: every user of the cluster is then trusted with
	// everything hpcbot can read.
	AllowSameUser bool `toml:"allow_same_user"`
}

// harmlessAsBotUser are the programs that may run as hpcbot's own user: they
// neither run code nor print the contents of what they read, whatever a
// caption or an input holds. Everything else can: shells and interpreters
// (also behind a wrapper: timeout, nice, env, mpirun, find -exec), and the
// chemistry programs too (Gaussian's External keyword, ORCA's ProgExt, psi4's
// Python), so the list is of what is allowed, not of what is not.
var harmlessAsBotUser = map[string]bool{
	"wc": true, "cksum": true, "md5sum": true, "sha1sum": true, "sha224sum": true, "sha256sum": true,
	"sha384sum": true, "sha512sum": true, "b2sum": true,
}

// HarmlessAsBotUser reports whether program (a name or a path, by its base
// name) may run as hpcbot's own user on the local scheduler: one that only
// counts or checksums its input, as the quick start's demo runner does. Any
// other program needs run_as (or allow_same_user).
func HarmlessAsBotUser(program string) bool {
	return harmlessAsBotUser[path.Base(program)]
}

// RunnerKinds lists the runner plugins rules name, in first-use order: the
// host starts one runner per kind and cluster in this order, and the scheduler
// numbers a cluster's runners by it.
func RunnerKinds(rules []RunnerRule) []string {
	var kinds []string
	seen := map[string]bool{}
	for _, r := range rules {
		if !seen[r.Runner] {
			seen[r.Runner] = true
			kinds = append(kinds, r.Runner)
		}
	}
	return kinds
}

// RunnerRule is one `[[clusters.runners]]` entry: the original bot's rules for one program.
type RunnerRule struct {
	Runner       string            `toml:"runner"` // runner plugin that handles it; default "command"
	Program      string            `toml:"program"`
	Launch       string            `toml:"launch"` // "batch" (default) or "wrapper"
	AllowedArgs  []string          `toml:"allowed_args"`
	DefaultArgs  []string          `toml:"default_args"`
	Associations []string          `toml:"associations"`
	Description  string            `toml:"description"`
	Resources    map[string]string `toml:"resources"`
	// Results lists extra result files (exact names or extensions such as ".chk") to fetch
	// besides the global whitelists.
	Results  []string `toml:"results"`
	Failover *bool    `toml:"failover"`
	// MaxCores and MaxMemory bound what an input may ask for (ORCA %pal and
	// %maxcore, Gaussian %nprocshared and %mem): the xtb, orca and gaussian
	// runners refuse an input above them. MaxMemory is a size such as "64GB"
	// or "8000MB" (1 GB = 1024 MB, as Slurm counts). 0 and "": no limit.
	MaxCores  int    `toml:"max_cores"`
	MaxMemory string `toml:"max_memory"`
}

// Launch modes.
const (
	LaunchBatch   = "batch"   // the scheduler plugin writes a batch script and submits it
	LaunchWrapper = "wrapper" // the program submits itself and prints the job id
)

// Timeouts every host-side call uses unless the caller's context is shorter.
const (
	DefaultCallTimeout     = 2 * time.Minute
	DefaultTransferTimeout = 2 * time.Hour
)

// Secret is a password or token. It prints as "[redacted]" through fmt and slog, so a
// config or connection logged by mistake leaks nothing; string(s) gives the value.
type Secret string

func (s Secret) String() string   { return redacted(s) }
func (s Secret) GoString() string { return redacted(s) }

// LogValue keeps secrets out of slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted(s)) }

// MarshalText keeps secrets out of JSON and TOML encodings of a config.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted(s)), nil }

// UnmarshalText lets TOML/JSON decode into a Secret even though MarshalText redacts.
func (s *Secret) UnmarshalText(b []byte) error { *s = Secret(b); return nil }

func redacted(s Secret) string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// Duration is a time.Duration written in TOML as a string: "720h", "90m".
type Duration time.Duration

// UnmarshalText parses "720h"; a bare number of days such as "30d" is accepted too.
func (d *Duration) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int
		if _, err := fmt.Sscanf(n, "%d", &days); err == nil && fmt.Sprint(days) == n {
			*d = Duration(time.Duration(days) * 24 * time.Hour)
			return nil
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (examples: \"720h\", \"30d\", \"90m\")", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalText prints the duration as time.Duration does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }
