package qcrun

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"hpcbot/plugins"
	"hpcbot/runners/command"
	"hpcbot/runners/qc"
)

// The runners' names in configuration (`runner = "orca"`).
const (
	XTB      = "xtb"
	ORCA     = "orca"
	Gaussian = "gaussian"
)

// Names lists the runners this package serves.
var Names = []string{XTB, ORCA, Gaussian}

// Version is reported by Info; raise it when the rules change.
const Version = "1.0.0"

// Runner is one of the program-aware runners for one cluster.
type Runner struct {
	name string
	prog qc.Program
	*command.Runner
}

var _ plugins.FullRunner = (*Runner)(nil)

// New returns an unconfigured runner called name (one of Names); it panics on
// any other name, a programming error.
func New(name string) *Runner {
	prog, ok := qc.ProgramFromName(name)
	if !ok || !slices.Contains(Names, name) {
		panic("qcrun: no runner called " + name)
	}
	return &Runner{name: name, prog: prog, Runner: command.NewNamed(name)}
}

// Configure validates the rules (the command runner's checks, max_cores and
// max_memory) and installs them.
func (r *Runner) Configure(ctx context.Context, cluster string, rules []plugins.RunnerRule) error {
	if err := validateLimits("clusters["+cluster+"].runners", r.name, rules); err != nil {
		return plugins.Errorf(plugins.KindPermanent, "configure %s runner: %w", r.name, err)
	}
	return r.Runner.Configure(ctx, cluster, rules)
}

// Info is the command runner's, with this runner's version.
func (r *Runner) Info(ctx context.Context) (plugins.RunnerInfo, error) {
	info, err := r.Runner.Info(ctx)
	info.Version = Version
	return info, err
}

// Plan is the command runner's plan, plus the files the program writes that
// Digest and the user want back, whatever the global whitelists say: ORCA
// <stem>.out, <stem>.log and <stem>.xyz (its final geometry), Gaussian
// <stem>.log and <stem>.out, xtb xtbopt.xyz, xtbopt.log and xtblast.xyz.
func (r *Runner) Plan(ctx context.Context, req plugins.PlanRequest) (plugins.Plan, error) {
	p, err := r.Runner.Plan(ctx, req)
	if err != nil {
		return p, err
	}
	stem := strings.TrimSuffix(req.FileName, path.Ext(req.FileName))
	var files []string
	switch r.prog {
	case qc.ORCA:
		files = []string{stem + ".out", stem + ".log", stem + ".xyz"}
	case qc.Gaussian:
		files = []string{stem + ".log", stem + ".out"}
	case qc.XTB:
		files = []string{"xtbopt.xyz", "xtbopt.log", "xtblast.xyz"}
	}
	for _, f := range files {
		if !slices.Contains(p.Files, f) {
			p.Files = append(p.Files, f)
		}
	}
	return p, nil
}

// limits are a rule's max_cores and max_memory (MiB); 0: none.
type limits struct {
	cores    int
	memoryMB int64
}

func ruleLimits(rule plugins.RunnerRule) (limits, error) {
	l := limits{cores: rule.MaxCores}
	if rule.MaxMemory != "" {
		mb, err := ParseMemory(rule.MaxMemory)
		if err != nil {
			return l, err
		}
		l.memoryMB = mb
	}
	return l, nil
}

// Validate checks a cluster's rules for the runners of this package (each
// name's rules as command.ValidateNamed does, plus max_cores and max_memory)
// and refuses max_cores or max_memory on a rule of the command runner, which
// would ignore them. Every problem names its key, like command.Validate.
func Validate(prefix string, rules []plugins.RunnerRule) error {
	var errs []error
	for _, name := range Names {
		if err := command.ValidateNamed(prefix, name, rules); err != nil {
			errs = append(errs, err)
		}
		if err := validateLimits(prefix, name, rules); err != nil {
			errs = append(errs, err)
		}
	}
	for i, rule := range rules {
		if rule.Runner != "" && rule.Runner != command.Name {
			continue
		}
		key := fmt.Sprintf("%s[%d]", prefix, i)
		if rule.MaxCores != 0 {
			errs = append(errs, fmt.Errorf("%s.max_cores: the %s runner does not read inputs, so it cannot enforce it: set runner = \"xtb\", \"orca\" or \"gaussian\", or remove max_cores", key, command.Name))
		}
		if rule.MaxMemory != "" {
			errs = append(errs, fmt.Errorf("%s.max_memory: the %s runner does not read inputs, so it cannot enforce it: set runner = \"xtb\", \"orca\" or \"gaussian\", or remove max_memory", key, command.Name))
		}
	}
	return errors.Join(errs...)
}

func validateLimits(prefix, name string, rules []plugins.RunnerRule) error {
	var errs []error
	for i, rule := range rules {
		if rule.Runner != name {
			continue
		}
		key := fmt.Sprintf("%s[%d]", prefix, i)
		if rule.MaxCores < 0 {
			errs = append(errs, fmt.Errorf("%s.max_cores: %d is negative: write the most cores one input may ask for, or 0 for no limit", key, rule.MaxCores))
		}
		if _, err := ruleLimits(rule); err != nil {
			errs = append(errs, fmt.Errorf("%s.max_memory: %w", key, err))
		}
	}
	return errors.Join(errs...)
}
