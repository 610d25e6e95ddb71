package cluster

import "hpcbot/plugins"

// Dialect turns scheduler operations into shell commands and parses their output.
// It performs no I/O, so every method is tested on captured real output (testdata/).
// Every word taken from a request is shell-quoted by the dialect (see shellquote).
type Dialect interface {
	// Name is the scheduler's name: "slurm", "pbs", "ssh", "local".
	Name() string

	// VersionCommand prints the scheduler's version; ParseVersion reads it ("slurm 22.05.8").
	VersionCommand() string
	ParseVersion(r RunResult) (string, error)

	// BatchScript returns the job script for a batch launch of req in remoteDir.
	// The script must record the program's exit code in the file ExitCodeFile in remoteDir.
	// Submit writes it to BatchScriptName from inside the submit command itself
	// (see SubmitWrapper), so it should hold no NUL byte (one would cost a
	// separate file write).
	BatchScript(req plugins.SubmitRequest, remoteDir string) ([]byte, error)
	// SubmitCommand submits the script (batch launch, script is the file name in
	// remoteDir) or runs req.Argv (wrapper launch), from remoteDir. The generic code
	// wraps it so that it runs at most once per folder.
	SubmitCommand(req plugins.SubmitRequest, remoteDir, script string) string
	// ParseSubmit finds the job id in what the submit command printed.
	// re is the cluster's job_id_regex, nil for the dialect's default.
	ParseSubmit(out []byte, jobIDRegex string) (string, error)

	// PollCommand asks about many jobs in one command. An empty string means the
	// dialect polls through files only (see PollFiles).
	PollCommand(jobs []plugins.JobRef, remoteDirs []string) string
	// ParsePoll reads PollCommand's result. Jobs the scheduler did not mention are
	// absent from the map (not an error): the generic code then asks FinishedCommand.
	ParsePoll(r RunResult, jobs []plugins.JobRef) (map[string]plugins.JobStatus, error)

	// FinishedCommand asks about jobs that left the queue (sacct, scontrol, qstat -x),
	// in one command; "" if the dialect has none. ParseFinished is like ParsePoll.
	FinishedCommand(jobs []plugins.JobRef) string
	ParseFinished(r RunResult, jobs []plugins.JobRef) (map[string]plugins.JobStatus, error)

	// CancelCommand stops one job; cancelling a finished job must exit 0 or be
	// recognised by CancelDone.
	CancelCommand(job plugins.JobRef, remoteDir string) string
	CancelDone(r RunResult) bool

	// StreamFiles names the files (relative to the calculation folder) the
	// job's standard output and error go to, for Tail. "" for a stream the
	// dialect does not keep.
	StreamFiles(req plugins.TailRequest) (stdout, stderr string)
}

// Files the generic code and the dialects keep in a calculation's remote folder.
const (
	ExitCodeFile    = ".hpcbot-exitcode" // the program's exit code, written by the job script
	SubmitLockDir   = ".hpcbot-submit"   // created atomically (mkdir) by the first submit
	SubmitOutFile   = ".hpcbot-submit/out"
	SubmitRCFile    = ".hpcbot-submit/rc"
	BatchScriptName = "hpcbot-job.sh"
)
