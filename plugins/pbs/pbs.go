package pbs

import (
	"bytes"
	"regexp"
	"strings"
	"time"

	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
	"hpcbot/plugins/shellquote"
)

// Flavors New accepts (plugins.Cluster.Flavor).
const (
	FlavorPro    = "pro"    // PBS Professional and OpenPBS: qstat -x -f -F json
	FlavorTorque = "torque" // Torque (and PBS derivatives that print its qstat -f text)
)

// DefaultJobIDPattern finds a PBS job id on a line of its own, as qsub prints it:
// "1234.server", "1234.pbs01.cluster", "1234" or an array id "1234[].server".
// Its first group is the id.
const DefaultJobIDPattern = `(?m)^[ \t]*([0-9]+(?:\[[0-9]*\])?(?:\.[A-Za-z0-9][A-Za-z0-9_.-]*)?)[ \t\r]*$`

var defaultJobIDRe = regexp.MustCompile(DefaultJobIDPattern)

// validJobID is what a job id may contain once found; ids reach commands quoted
// anyway, this only keeps odd output from becoming an id.
var validJobID = regexp.MustCompile(`^[A-Za-z0-9_.@\[\]-]{1,256}$`)

// Dialect builds PBS Pro/OpenPBS or Torque commands and parses their output.
// It performs no I/O. The zero value is not usable; call New.
type Dialect struct {
	flavor string
	// Location is the time zone the cluster prints its times in (qstat's stime,
	// obittime, ...carry no zone). New sets time.Local; a deployment whose bot
	// host and cluster are in different zones should set it.
	Location *time.Location
}

var _ cluster.Dialect = (*Dialect)(nil)

// New returns the dialect for flavor: "pro" (also the default for "") or "torque".
func New(flavor string) (*Dialect, error) {
	switch f := strings.ToLower(strings.TrimSpace(flavor)); f {
	case "", FlavorPro, "pbspro", "openpbs":
		return &Dialect{flavor: FlavorPro, Location: time.Local}, nil
	case FlavorTorque:
		return &Dialect{flavor: FlavorTorque, Location: time.Local}, nil
	default:
		return nil, plugins.Errorf(plugins.KindPermanent,
			"pbs: unknown flavor %q: set flavor to %q (PBS Pro, OpenPBS) or %q", flavor, FlavorPro, FlavorTorque)
	}
}

// Name is "pbs" for both flavors.
func (d *Dialect) Name() string { return "pbs" }

// Flavor is "pro" or "torque".
func (d *Dialect) Flavor() string { return d.flavor }

func (d *Dialect) loc() *time.Location {
	if d.Location == nil {
		return time.Local
	}
	return d.Location
}

// VersionCommand prints the PBS version; both flavors know qstat --version.
func (d *Dialect) VersionCommand() string { return "qstat --version" }

var (
	proVersionRe    = regexp.MustCompile(`(?mi)^[ \t]*pbs_version[ \t]*=[ \t]*(\S+)`)
	torqueVersionRe = regexp.MustCompile(`(?mi)^[ \t]*version:[ \t]*(\S+)`)
)

// ParseVersion reads "pbs_version = 19.0.0" (PBS Pro, OpenPBS) or
// "Version: 6.1.2" / "version: 2.5.12" (Torque) and returns "pbs 19.0.0" or
// "torque 6.1.2". A mismatch with the configured flavor is reported, not hidden.
func (d *Dialect) ParseVersion(r cluster.RunResult) (string, error) {
	out := string(r.Stdout) + "\n" + string(r.Stderr)
	var name, version string
	if m := proVersionRe.FindStringSubmatch(out); m != nil {
		name, version = "pbs", m[1]
	} else if m := torqueVersionRe.FindStringSubmatch(out); m != nil {
		name, version = "torque", m[1]
	}
	if version == "" {
		return "", plugins.Errorf(plugins.KindPermanent, "pbs version: no version in qstat --version output (exit %d): %q",
			r.ExitCode, firstLine(out))
	}
	switch {
	case name == "torque" && d.flavor == FlavorPro:
		return "", plugins.Errorf(plugins.KindPermanent, "pbs version: the cluster runs Torque %s: set flavor = %q", version, FlavorTorque)
	case name == "pbs" && d.flavor == FlavorTorque:
		return "", plugins.Errorf(plugins.KindPermanent, "pbs version: the cluster runs PBS Pro/OpenPBS %s: set flavor = %q", version, FlavorPro)
	}
	return name + " " + version, nil
}

// batchMark precedes what qsub printed on stdout in a batch launch, so that
// ParseSubmit reads qsub's id even when the cluster's job_id_regex is written
// for a wrapper's output.
const batchMark = "hpcbot-pbs-job: "

// SubmitCommand runs qsub on the batch script (batch launch: script is the file
// name in remoteDir) or the runner's argv (wrapper launch), from remoteDir. Every
// word is quoted. qsub's stdout is printed after batchMark.
func (d *Dialect) SubmitCommand(req plugins.SubmitRequest, remoteDir, script string) string {
	cd := "cd " + shellquote.Quote(remoteDir) + " && "
	if script == "" || req.Launch == plugins.LaunchWrapper {
		return cd + shellquote.Join(req.Argv)
	}
	return cd + "hb_out=$(qsub " + shellquote.Quote(script) + ") && printf '%s%s\\n' " +
		shellquote.Quote(batchMark) + ` "$hb_out"`
}

// ParseSubmit finds the job id in what the submit command printed. After the
// batch marker (batch launch) the id is read with DefaultJobIDPattern. Otherwise
// (wrapper launch) with jobIDRegex, or DefaultJobIDPattern when it is empty: the
// regex's first group (or its whole match without a group) is the id. The
// default pattern wants the id alone on its line, so warnings around it do no harm.
func (d *Dialect) ParseSubmit(out []byte, jobIDRegex string) (string, error) {
	re := defaultJobIDRe
	if i := bytes.Index(out, []byte(batchMark)); i >= 0 {
		out, jobIDRegex = out[i+len(batchMark):], ""
	}
	if jobIDRegex != "" {
		var err error
		re, err = regexp.Compile(jobIDRegex)
		if err != nil {
			return "", plugins.Errorf(plugins.KindPermanent, "pbs submit: job_id_regex %q: %w", jobIDRegex, err)
		}
	}
	m := re.FindSubmatch(out)
	if m == nil {
		return "", plugins.Errorf(plugins.KindPermanent, "pbs submit: no job id in the output: %q", firstLine(string(out)))
	}
	id := m[0]
	if len(m) > 1 && m[1] != nil {
		id = m[1]
	}
	s := strings.TrimSpace(string(id))
	if !validJobID.MatchString(s) {
		return "", plugins.Errorf(plugins.KindPermanent, "pbs submit: %q is not a job id", s)
	}
	return s, nil
}

// CancelCommand deletes one job.
func (d *Dialect) CancelCommand(job plugins.JobRef, remoteDir string) string {
	return "qdel " + shellquote.Quote(job.JobID)
}

// cancelDoneRe matches what qdel says about a job that has already ended:
// PBS Pro "Job <id> has finished" / "Job has finished", "Unknown Job Id" (PBS Pro
// and Torque, once the job is purged), Torque's "invalid state for job - COMPLETE"
// (a completed job kept by keep_completed) and "nonexistent job id".
var cancelDoneRe = regexp.MustCompile(`(?i)unknown job id|has finished|invalid state for job - complete|nonexistent job id`)

// StreamFiles are the script's -o and -e files. PBS keeps a running job's
// output in its spool on the execution host and copies it into the folder
// when the job ends (unless the site writes it directly), so until then Tail
// finds no output.
func (d *Dialect) StreamFiles(plugins.TailRequest) (string, string) {
	return StdoutFile, StderrFile
}

// CancelDone reports whether qdel succeeded or the job had already ended.
func (d *Dialect) CancelDone(r cluster.RunResult) bool {
	if r.ExitCode == 0 {
		return true
	}
	return cancelDoneRe.Match(r.Stderr) || cancelDoneRe.Match(r.Stdout)
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
