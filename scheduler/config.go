package scheduler

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"os/user"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"hpcbot/plugins"
	"hpcbot/scheduler/nextcloud"
)

// Config is what the scheduler needs from hpcbot.toml (top-level keys, [storage]
// and [[clusters]]); main composes it.
type Config struct {
	DownloadPath        string
	FetchTime           FetchTime
	ExtensionsWhitelist []string
	FilesWhitelist      []string
	ResultMaxSize       int64
	Retention           time.Duration
	GiveUpAfter         time.Duration
	Storage             StorageConfig
	Clusters            []ClusterConfig
}

// ClusterConfig is one [[clusters]] entry.
type ClusterConfig struct {
	plugins.Cluster
	Runners []plugins.RunnerRule `toml:"runners"`
	// Failover lets a calculation go to the next cluster with a matching runner when
	// this one is unreachable at intake (default true).
	Failover *bool `toml:"failover"`
	// Cleanup removes the remote folder once the results are delivered.
	Cleanup bool `toml:"cleanup"`
	// Drained starts the cluster closed for maintenance (drain.go): nothing new is
	// submitted to it until an admin's /undrain. The admin's /drain and /undrain
	// outlast restarts until this key changes.
	Drained bool `toml:"drained"`
}

// FailoverAllowed reports whether rule r of this cluster may fail over.
func (c ClusterConfig) FailoverAllowed(r plugins.RunnerRule) bool {
	if r.Failover != nil {
		return *r.Failover
	}
	if c.Failover != nil {
		return *c.Failover
	}
	return true
}

// StorageConfig is the [storage] section: a Nextcloud account that receives results.
// An empty URL means results go to the user as Telegram documents.
type StorageConfig struct {
	URL          string         `toml:"url"`
	User         string         `toml:"user"`
	Password     plugins.Secret `toml:"password"`
	PasswordFile string         `toml:"password_file"`
	BasePath     string         `toml:"base_path"`
	// Share is "per_calculation" (one public link per calculation) or "per_user"
	// (one public share of the user's folder, with links into it).
	Share string `toml:"share"`
	// ShareExpireDays sets an expiry on new public links (0: none).
	ShareExpireDays int            `toml:"share_expire_days"`
	SharePassword   plugins.Secret `toml:"share_password"`
	// FallbackAfter: when the cloud has not taken a calculation's results for
	// this long, they are sent as Telegram files instead (0: never).
	FallbackAfter plugins.Duration `toml:"fallback_after"`
}

// Enabled reports whether results go to Nextcloud.
func (s StorageConfig) Enabled() bool { return s.URL != "" }

// Client returns the Nextcloud client of this configuration.
func (s StorageConfig) Client(log *slog.Logger) (*nextcloud.Client, error) {
	return nextcloud.New(nextcloud.Options{
		URL:             s.URL,
		User:            s.User,
		Password:        string(s.Password),
		BasePath:        s.BasePath,
		ShareExpireDays: s.ShareExpireDays,
		SharePassword:   string(s.SharePassword),
		Logger:          log,
	})
}

// SetDefaults fills in what the operator left out.
func (s *StorageConfig) SetDefaults() {
	if s.Share == "" {
		s.Share = "per_calculation"
	}
	if s.BasePath == "" {
		s.BasePath = "hpc_results"
	}
}

// Validate reports every problem, each naming its key.
func (s *StorageConfig) Validate() error {
	if !s.Enabled() {
		if s.User != "" || s.Password != "" {
			return errors.New("storage.url: storage.user or storage.password is set but storage.url is not; set the Nextcloud address (https://cloud.example.org) or remove the [storage] section")
		}
		return nil
	}
	var errs []error
	if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("storage.url: %q is not an http(s) URL such as https://cloud.example.org", s.URL))
	}
	if s.User == "" {
		errs = append(errs, errors.New("storage.user: storage.url is set, so storage.user must be set too (the Nextcloud account that uploads results)"))
	}
	if s.Password == "" {
		errs = append(errs, errors.New("storage.password: storage.url is set, so a password is needed: set storage.password, storage.password_file or HPCBOT_STORAGE_PASSWORD (use a Nextcloud app password)"))
	}
	if s.Share != "per_calculation" && s.Share != "per_user" {
		errs = append(errs, fmt.Errorf("storage.share: %q is not one of per_calculation, per_user", s.Share))
	}
	if s.ShareExpireDays < 0 {
		errs = append(errs, errors.New("storage.share_expire_days: must not be negative"))
	}
	if s.FallbackAfter < 0 {
		errs = append(errs, errors.New("storage.fallback_after: must not be negative (0: never send the results as Telegram files instead)"))
	}
	return errors.Join(errs...)
}

// FetchTime is the pause between two polls of a cluster: one number of seconds, or
// [min, max] for a random pause in that range each time (as the original bot did,
// to make its connections less regular).
type FetchTime struct {
	Min, Max time.Duration
}

// UnmarshalTOML accepts 120, 120.5 or [120, 240].
func (f *FetchTime) UnmarshalTOML(v any) error {
	num := func(x any) (time.Duration, error) {
		switch n := x.(type) {
		case int64:
			return time.Duration(n) * time.Second, nil
		case float64:
			return time.Duration(n * float64(time.Second)), nil
		}
		return 0, fmt.Errorf("%v is not a number of seconds", x)
	}
	switch x := v.(type) {
	case []any:
		if len(x) != 2 {
			return fmt.Errorf("must be one number or [min, max], not a list of %d", len(x))
		}
		lo, err := num(x[0])
		if err != nil {
			return err
		}
		hi, err := num(x[1])
		if err != nil {
			return err
		}
		f.Min, f.Max = lo, hi
		return nil
	default:
		d, err := num(x)
		if err != nil {
			return err
		}
		f.Min, f.Max = d, d
		return nil
	}
}

// Next returns the pause before the next poll.
func (f FetchTime) Next() time.Duration {
	if f.Max <= f.Min {
		return f.Min
	}
	return f.Min + rand.N(f.Max-f.Min+1)
}

// Validate reports fetch_time problems.
func (f FetchTime) Validate() error {
	var errs []error
	if f.Min <= 0 {
		errs = append(errs, errors.New("fetch_time: must be positive (seconds), e.g. 120 or [120, 240]"))
	}
	if f.Min > f.Max {
		errs = append(errs, fmt.Errorf("fetch_time: min %v is greater than max %v; write [min, max]", f.Min, f.Max))
	}
	return errors.Join(errs...)
}

var labelRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

// Validate reports every problem of one cluster entry; key is its config path
// ("clusters[0]"). builtins are the scheduler plugins the hpcbot binary serves
// itself, dropIns those found in the plugin folder.
func (c *ClusterConfig) Validate(key string, builtins, dropIns []string) error {
	var errs []error
	add := func(sub, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", key, sub, fmt.Sprintf(format, args...)))
	}
	if c.Label == "" {
		add("label", "missing; give the cluster a short name such as \"loc\"")
	} else if !labelRE.MatchString(c.Label) {
		add("label", "%q may hold only letters, digits, _ and -", c.Label)
	}
	known := slices.Concat(builtins, dropIns)
	if c.Scheduler == "" {
		add("scheduler", "missing; one of %s", strings.Join(known, ", "))
	} else if !contains(known, c.Scheduler) {
		add("scheduler", "%q is not a built-in scheduler (%s) nor a drop-in plugin hpcbot-scheduler-%s in plugin_dir", c.Scheduler, strings.Join(builtins, ", "), c.Scheduler)
	}
	if c.UploadPath == "" {
		add("upload_path", "missing; the folder on the cluster where calculations run, e.g. \"/home/user/hpcbot\"")
	}
	if c.Scheduler != "local" {
		conn := c.Connection
		if conn.Host == "" {
			add("connection.host", "missing; the login node's address")
		}
		if conn.User == "" {
			add("connection.user", "missing; the account on the cluster")
		}
		if conn.Port < 0 || conn.Port > 65535 {
			add("connection.port", "%d is not a TCP port", conn.Port)
		}
		if conn.Password == "" && conn.KeyPath == "" {
			add("connection", "neither password nor key_path is set; set key_path (recommended) or password, or HPCBOT_CLUSTER_%s_PASSWORD", EnvLabel(c.Label))
		}
	}
	if c.MaxJobs < 0 {
		add("max_jobs", "must not be negative")
	}
	errs = append(errs, c.validateRunAs(key)...)
	if len(c.Runners) == 0 {
		add("runners", "no runners: add at least one [[clusters.runners]] with a program")
	}
	if c.JobIDRegex != "" {
		if re, err := regexp.Compile(c.JobIDRegex); err != nil {
			add("job_id_regex", "does not compile: %v", err)
		} else if re.NumSubexp() < 1 {
			add("job_id_regex", "needs a group around the job id, e.g. `Submitted batch job (\\d+)`")
		}
	}
	return errors.Join(errs...)
}

// validateRunAs checks run_as and allow_same_user: local only; run_as an
// existing account other than root and hpcbot's own; without either, every
// runner's program must be plugins.HarmlessAsBotUser, since a job of the local
// scheduler then runs as hpcbot's user and could read its token, store and socket.
func (c *ClusterConfig) validateRunAs(key string) []error {
	var errs []error
	add := func(sub, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", key, sub, fmt.Sprintf(format, args...)))
	}
	if c.Scheduler != "local" {
		if c.RunAs != "" {
			add("run_as", "is for the local scheduler only; on a cluster jobs run as connection.user")
		}
		if c.AllowSameUser {
			add("allow_same_user", "is for the local scheduler only; remove it")
		}
		return errs
	}
	if c.RunAs != "" {
		if c.AllowSameUser {
			add("allow_same_user", "makes no sense with run_as = %q; remove one of them", c.RunAs)
		}
		u, err := lookupUser(c.RunAs)
		switch {
		case err != nil:
			add("run_as", "%v; create the account (useradd --create-home %s) or name an existing one", err, c.RunAs)
		case u.Uid == strconv.Itoa(os.Geteuid()):
			add("run_as", "%q is hpcbot's own user; name another account, which cannot read hpcbot's files", c.RunAs)
		case u.Uid == "0":
			add("run_as", "%q is root; name an unprivileged account that only runs calculations", c.RunAs)
		}
		return errs
	}
	if c.AllowSameUser {
		return errs
	}
	for i, r := range c.Runners {
		if !plugins.HarmlessAsBotUser(r.Program) {
			add(fmt.Sprintf("runners[%d].program", i), "%q would run as hpcbot's own user on the local scheduler, who can read the bot's token and store; a program that can run code a user sends (a shell, an interpreter, a wrapper such as timeout or mpirun, and chemistry programs: Gaussian's External, ORCA's ProgExt) could read them too, and without run_as only counting and checksum tools (wc, md5sum, sha256sum, ...) may run. Set run_as = \"USER\" on this cluster (an account of its own for calculations), or allow_same_user = true if you trust every user of this cluster with everything hpcbot can read", r.Program)
		}
	}
	return errs
}

// lookupUser finds an account by name or numeric id.
func lookupUser(name string) (*user.User, error) {
	if _, err := strconv.Atoi(name); err == nil {
		return user.LookupId(name)
	}
	return user.Lookup(name)
}

// EnvLabel turns a cluster label into the part of an environment variable name:
// "hpc-1" → "HPC_1".
func EnvLabel(label string) string {
	b := []byte(strings.ToUpper(label))
	for i, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
