package scheduler

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"hpcbot/plugins"
	"hpcbot/store"
)

// DefaultDigestTimeout bounds a runner's Digest of one calculation.
const DefaultDigestTimeout = time.Minute

// WithDigestTimeout sets how long a runner's Digest may take (tests).
func WithDigestTimeout(d time.Duration) Option { return func(s *Scheduler) { s.digestTimeout = d } }

// runnerByName is the runner of c that Info names name, or nil.
func (s *Scheduler) runnerByName(ctx context.Context, c *clusterState, name string) plugins.Runner {
	for i, r := range c.runners {
		if s.runnerName(ctx, c, i) == name {
			return r
		}
	}
	return nil
}

// digest asks the calculation's runner to summarize the fetched results. It
// never fails the delivery: a runner without Digest, no summary, an error, a
// timeout or a crash of the plugin all give nil (logged).
func (s *Scheduler) digest(ctx context.Context, c *clusterState, calc store.Calculation, res plugins.FetchResult) (out *store.Digest) {
	dg, ok := s.runnerByName(ctx, c, calc.Runner).(plugins.Digester)
	if !ok {
		return nil
	}
	dir, err := filepath.Abs(calc.LocalDir)
	if err != nil {
		return nil
	}
	req := plugins.DigestRequest{Dir: dir, InputFile: calc.InputName, Program: calc.Program, ExitCode: calc.ExitCode}
	for _, f := range res.Files {
		if filepath.IsLocal(f) {
			req.Files = append(req.Files, f)
		}
	}
	// The job's own output: jobName.out/.err (slurm, ssh, local) or PBS's fixed names.
	for _, stem := range []string{jobName(calc.ID), "hpcbot-job"} {
		if slices.Contains(req.Files, stem+".out") {
			req.Stdout = stem + ".out"
			if slices.Contains(req.Files, stem+".err") {
				req.Stderr = stem + ".err"
			}
			break
		}
	}
	dctx, cancel := context.WithTimeout(ctx, s.digestTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("digest panicked; delivering without a summary", "calc", calc.ID, "panic", fmt.Sprint(p))
			out = nil
		}
	}()
	d, err := dg.Digest(dctx, req)
	if err != nil {
		s.log.Warn("digest failed; delivering without a summary", "calc", calc.ID, "runner", calc.Runner, "err", err)
		return nil
	}
	if !d.HasSummary() && d.Termination != plugins.TerminationNone {
		return nil
	}
	return &store.Digest{
		Program: d.Program, Version: d.Version, Termination: d.Termination, TerminationLine: d.TerminationLine,
		Energy: d.Energy, EnergyMethod: d.EnergyMethod, Optimization: d.Optimization, OptConverged: d.OptConverged,
		OptCycles: d.OptCycles, Frequencies: d.Frequencies, Imaginary: d.Imaginary, LowestFrequency: d.LowestFrequency,
		WallSeconds: d.WallSeconds, GeometryFile: d.GeometryFile,
	}
}
