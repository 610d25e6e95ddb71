package kit

import (
	"context"
	"fmt"
)

// ProgramInfo describes one program a runner accepts, for /help and for routing.
type ProgramInfo struct {
	Program      string
	Description  string
	AllowedArgs  []string
	DefaultArgs  []string
	Associations []string // extensions, with the dot: ".inp"
	Launch       string
}

// RunnerInfo is what a runner tells the core about itself.
type RunnerInfo struct {
	Name     string // e.g. "command"
	Version  string
	Programs []ProgramInfo
}

// PlanRequest asks a runner how to run an input file with an optional caption.
type PlanRequest struct {
	FileName string // already checked against [A-Za-z0-9._-]+\.[A-Za-z0-9]+
	Caption  string // "" or "program arg arg", as the user typed it
}

// Plan is a runner's answer: exactly what to run.
type Plan struct {
	Program   string
	Argv      []string // Argv[0] is the program; every element passed as one word
	Launch    string
	Resources map[string]string
	// Extensions and Files extend the global result whitelists for this calculation.
	Extensions []string
	Files      []string
	Failover   bool
}

// Refusal codes a runner uses to say why it will not run a file. The bot turns
// each into a localized message; Detail carries the offending word.
const (
	RefuseNoProgram      = "no_program"      // no program is associated with the extension
	RefuseUnknownProgram = "unknown_program" // the caption names a program this runner does not know
	RefuseArgNotAllowed  = "arg_not_allowed" // an argument matches none of allowed_args
	RefuseNoInput        = "no_input"        // the argv does not mention the input file ({})
	RefuseBadCaption     = "bad_caption"     // the caption cannot be split (unbalanced quote, control char)

	// Check's refusals of an input (protocol 2). Line is the input's line.
	RefuseInputEmpty    = "input_empty"            // the file is empty or blank
	RefuseInputEncoding = "input_encoding"         // Detail: "UTF-16" or "UTF-8 with BOM"; save as plain UTF-8
	RefuseInputBinary   = "input_binary"           // a zero byte on Line: not a text file
	RefuseXYZHeader     = "input_xyz_header"       // an .xyz whose first line is not the atom count
	RefuseXYZCount      = "input_xyz_count"        // Detail: the count on line 1; Limit: the atom lines found
	RefuseXYZAtom       = "input_xyz_atom"         // Line is not "element x y z"
	RefuseTooManyCores  = "input_too_many_cores"   // Detail: the cores Line asks for; Limit: max_cores
	RefuseTooMuchMemory = "input_too_much_memory"  // Detail: the MB the input asks for (Line); Limit: max_memory in MB
	RefuseCaptionCores  = "caption_too_many_cores" // Detail: the cores the caption asks for; Limit: max_cores
)

// Refusal is returned by Runner.Plan (and Checker.Check) when the file or
// caption is not acceptable. It is an answer for the user, not a failure of
// the runner.
type Refusal struct {
	Code   string
	Detail string
	// Line is the input's line a Check refusal is about (1-based); 0: none.
	Line int
	// Limit is the number a Check refusal compares with: the configured limit
	// ("16"), or the count found (RefuseXYZCount); "": none.
	Limit string
}

func (r *Refusal) Error() string {
	if r.Detail == "" {
		return "refused: " + r.Code
	}
	return fmt.Sprintf("refused: %s: %q", r.Code, r.Detail)
}

// Runner is the contract every runner plugin implements. One instance serves the
// runner rules of one cluster, configured once with Configure.
//
// Plan is pure: it never touches the cluster, and the same request always gives the
// same answer. It returns *Refusal (and no other error) when the request is not acceptable.
type Runner interface {
	Configure(ctx context.Context, cluster string, rules []RunnerRule) error
	Info(ctx context.Context) (RunnerInfo, error)
	Plan(ctx context.Context, req PlanRequest) (Plan, error)
}

// CheckInputRequest asks a runner to read an input before it is uploaded.
// Runner plugins run on hpcbot's own host: Path is the downloaded input, which
// the runner opens and reads itself (a bounded read: the file may be large)
// and never writes.
type CheckInputRequest struct {
	FileName string // as in PlanRequest
	Caption  string // as in PlanRequest
	Path     string // absolute path of the input on hpcbot's host
	Program  string // Plan.Program
}

// InputResources are what an input asks for itself; a zero field is not stated.
type InputResources struct {
	Tasks       int   // MPI processes (ORCA %pal nprocs)
	CPUsPerTask int   // threads of one process (Gaussian %nprocshared)
	MemoryMB    int64 // memory of the whole job in MiB (ORCA %maxcore × nprocs, Gaussian %mem)
}

// DigestRequest names a finished calculation's fetched results. Dir is the
// local folder on hpcbot's host; Files, Stdout and Stderr are names relative to
// it, each checked with filepath.IsLocal by the host. The runner only reads them.
type DigestRequest struct {
	Dir       string
	Files     []string
	InputFile string // as in PlanRequest
	Program   string // Plan.Program
	Stdout    string // the job's standard output among Files, or ""
	Stderr    string // the job's standard error among Files, or ""
	ExitCode  *int   // nil when unknown
}

// Termination values of a Digest. The zero value, "", is no digest at all (the
// runner does not summarize); TerminationNone is a runner that read the results
// and found nothing it could summarize ("no summary").
const (
	TerminationNormal     = "normal"
	TerminationFailed     = "failed"     // TerminationLine is the program's error line
	TerminationUnfinished = "unfinished" // the output stops without a termination line
	TerminationNone       = "none"       // no summary: the output was missing or not recognised
)

// Digest is a short summary of a calculation's results, as the program printed
// them: never reformatted, never guessed. Termination "" means no digest,
// TerminationNone no summary; only the other values carry one.
type Digest struct {
	Program         string
	Version         string
	Termination     string
	TerminationLine string
	Energy          string // final energy in Eh as printed; "" when not certain
	EnergyMethod    string
	Optimization    bool // a geometry optimization: OptConverged and OptCycles apply
	OptConverged    bool
	OptCycles       int
	Frequencies     int    // vibrational modes listed
	Imaginary       int    // of which imaginary
	LowestFrequency string // cm⁻¹ as printed
	WallSeconds     int64  // 0: not printed
	GeometryFile    string // a plain file name among the results, or ""
}

// HasSummary reports whether the digest summarizes the results.
func (d Digest) HasSummary() bool {
	switch d.Termination {
	case TerminationNormal, TerminationFailed, TerminationUnfinished:
		return true
	}
	return false
}

// Checker is implemented by runners that read the input before it is uploaded
// (protocol 2). Check returns a *Refusal (and no other error) when the input
// cannot run; otherwise the resources the input asks for.
type Checker interface {
	Check(ctx context.Context, req CheckInputRequest) (InputResources, error)
}

// Digester is implemented by runners that summarize a finished calculation
// (protocol 2). A runner that read the results and cannot summarize them
// returns Termination TerminationNone (the user reads "no summary"); an error
// means the runner itself failed (the delivery goes on without a digest).
type Digester interface {
	Digest(ctx context.Context, req DigestRequest) (Digest, error)
}

// FullRunner is a Runner with both protocol-2 calls: what the host hands out.
// For a protocol-1 plugin, Check accepts with no resources and Digest has no
// summary.
type FullRunner interface {
	Runner
	Checker
	Digester
}
