package plugins

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
)

// Refusal is returned by Runner.Plan when the file or caption is not acceptable.
// It is an answer for the user, not a failure of the runner.
type Refusal struct {
	Code   string
	Detail string
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
