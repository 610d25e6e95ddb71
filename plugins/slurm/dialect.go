package slurm

import (
	"fmt"
	"regexp"
	"strings"

	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
	"hpcbot/plugins/shellquote"
)

// sep separates squeue's fields: it appears in no field squeue prints (AiiDA's choice).
const sep = "^^^"

// timeEnv makes every Slurm command print times as 2026-11-26T17:53:25.
const timeEnv = "SLURM_TIME_FORMAT=standard"

// Dialect builds Slurm commands and parses their output. It holds no state.
type Dialect struct{}

var (
	_ cluster.Dialect       = Dialect{}
	_ cluster.JobFinder     = Dialect{}
	_ cluster.SubmitRetrier = Dialect{}
)

// NewDialect returns the Slurm dialect.
func NewDialect() Dialect { return Dialect{} }

// Name is "slurm".
func (Dialect) Name() string { return "slurm" }

// VersionCommand prints "slurm 22.05.8" (Debian: "slurm-wlm 22.05.8").
func (Dialect) VersionCommand() string { return "sinfo --version" }

var versionRe = regexp.MustCompile(`^slurm(?:-wlm)? (\d+\.\d+[^\s]*)`)

// ParseVersion returns "slurm 22.05.8".
func (Dialect) ParseVersion(r cluster.RunResult) (string, error) {
	out := strings.TrimSpace(string(r.Stdout))
	m := versionRe.FindStringSubmatch(out)
	if r.ExitCode != 0 || m == nil {
		return "", fmt.Errorf("sinfo --version: exit %d: %s", r.ExitCode, firstLine(out+" "+string(r.Stderr)))
	}
	return "slurm " + m[1], nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// jobIDRe is the shape of a Slurm job id hpcbot accepts: 123 or 123_4 (array task).
var jobIDRe = jobIDMatcher{}

type jobIDMatcher struct{}

// MatchString is ^[0-9]+(_[0-9]+)?$ without the regexp engine (poll builds it 10,000 times).
func (jobIDMatcher) MatchString(s string) bool {
	digits, under := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '_' && !under && digits > 0:
			under, digits = true, 0
		default:
			return false
		}
	}
	return digits > 0
}

// CancelCommand is scancel for the job.
func (Dialect) CancelCommand(job plugins.JobRef, _ string) string {
	if !jobIDRe.MatchString(job.JobID) {
		return "echo " + shellquote.Quote("hpcbot: not a Slurm job id: "+job.JobID) + " >&2; exit 2"
	}
	return "scancel " + job.JobID
}

// StreamFiles are the batch script's --output and --error: <job name>.out
// and .err in the calculation folder.
func (Dialect) StreamFiles(req plugins.TailRequest) (string, string) {
	name, err := jobName(plugins.SubmitRequest{CalcID: req.CalcID, JobName: req.JobName})
	if err != nil {
		return "", ""
	}
	return name + ".out", name + ".err"
}

// CancelDone: scancel exits 0, or the job is gone or finishing already.
func (Dialect) CancelDone(r cluster.RunResult) bool {
	if r.ExitCode == 0 {
		return true
	}
	out := string(r.Stderr) + string(r.Stdout)
	return strings.Contains(out, "Invalid job id specified") ||
		strings.Contains(out, "already completing or completed")
}
