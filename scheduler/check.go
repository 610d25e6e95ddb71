package scheduler

import (
	"context"
	"errors"
	"maps"
	"path/filepath"
	"strconv"

	"hpcbot/plugins"
	"hpcbot/plugins/shellquote"
	"hpcbot/store"
)

// checkInput asks the calculation's runner to read the input before it is
// staged. It reports whether intake goes on: false when the runner refused
// (the calculation is in error, the user told why, with the line and the
// fix) or the calculation moved on. Resources the input asks for are added to
// the calculation's (see inputResources). A runner without Check, or one that
// fails to answer, lets the input through unchecked: the cluster's scheduler
// still enforces its own limits.
func (s *Scheduler) checkInput(ctx context.Context, c *clusterState, calc *store.Calculation) bool {
	ch, ok := s.runnerByName(ctx, c, calc.Runner).(plugins.Checker)
	if !ok {
		return true
	}
	path, err := filepath.Abs(filepath.Join(calc.LocalDir, calc.InputName))
	if err != nil {
		return true
	}
	// The caption that gives this argv again, as failover does.
	req := plugins.CheckInputRequest{FileName: calc.InputName, Caption: shellquote.Join(calc.Argv), Path: path, Program: calc.Program}
	res, err := ch.Check(ctx, req)
	var ref *plugins.Refusal
	if errors.As(err, &ref) {
		if _, err := s.st.UpdateCalc(calc.ID, func(_ *store.Tx, c *store.Calculation) error {
			if c.State != store.StateReceived {
				return errStale
			}
			c.Progress.Refusal = &store.InputRefusal{Code: ref.Code, Detail: ref.Detail, Line: ref.Line, Limit: ref.Limit}
			return nil
		}); err != nil {
			return false
		}
		s.toError(ctx, *calc, CodeInputRefused, "the runner refused the input: "+ref.Error()+" (line "+strconv.Itoa(ref.Line)+")")
		return false
	}
	if err != nil {
		s.log.Error("runner could not check the input; running it unchecked", "calc", calc.ID, "runner", calc.Runner, "err", err)
		return true
	}
	merged := inputResources(c.cfg.Scheduler, calc.Resources, res)
	if maps.Equal(merged, calc.Resources) {
		return true
	}
	after, err := s.st.UpdateCalc(calc.ID, func(_ *store.Tx, c *store.Calculation) error {
		if c.State != store.StateReceived {
			return errStale
		}
		c.Resources = merged
		return nil
	})
	if err != nil {
		return false
	}
	*calc = after
	return true
}

// inputResources adds what the input asks for to the rule's resources, in the
// scheduler's words; a key the rule sets wins. Slurm: --ntasks (MPI
// processes), --cpus-per-task (threads), --mem in MB. Other schedulers name
// resources differently (PBS: select=...:ncpus=...): nothing is added there,
// and the runner rule's resources apply as configured.
func inputResources(scheduler string, rule map[string]string, in plugins.InputResources) map[string]string {
	out := maps.Clone(rule)
	if scheduler != "slurm" || in == (plugins.InputResources{}) {
		return out
	}
	if out == nil {
		out = map[string]string{}
	}
	set := func(k, v string) {
		if _, ok := out[k]; !ok {
			out[k] = v
		}
	}
	if in.Tasks > 0 {
		set("ntasks", strconv.Itoa(in.Tasks))
	}
	if in.CPUsPerTask > 0 {
		set("cpus-per-task", strconv.Itoa(in.CPUsPerTask))
	}
	_, perCPU := out["mem-per-cpu"]
	if in.MemoryMB > 0 && !perCPU {
		set("mem", strconv.FormatInt(in.MemoryMB, 10)+"M")
	}
	return out
}

// refusalOf is the Check refusal stored with a calculation in error, or nil.
func refusalOf(c store.Calculation) *plugins.Refusal {
	r := c.Progress.Refusal
	if r == nil || r.Code == "" {
		return nil
	}
	return &plugins.Refusal{Code: r.Code, Detail: r.Detail, Line: r.Line, Limit: r.Limit}
}
