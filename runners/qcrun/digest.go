package qcrun

import (
	"context"
	"io"
	"math"
	"os"
	"path"
	"slices"
	"strings"

	"hpcbot/plugins"
	"hpcbot/runners/qc"
)

// Digest finds the program's output among the fetched files and summarizes
// it with runners/qc (see the package comment); no output recognised:
// TerminationNone ("no summary"). An error is only a failure to read, or the
// deadline.
func (r *Runner) Digest(ctx context.Context, req plugins.DigestRequest) (plugins.Digest, error) {
	stem := strings.TrimSuffix(req.InputFile, path.Ext(req.InputFile))
	have := func(name string) bool { return name != "" && slices.Contains(req.Files, name) }
	var sources [][]string // each: files read one after the other as one output
	switch r.prog {
	case qc.ORCA:
		sources = [][]string{{stem + ".out"}, {stem + ".log"}, {req.Stdout}}
	case qc.Gaussian:
		sources = [][]string{{stem + ".log"}, {stem + ".out"}, {req.Stdout}}
	case qc.XTB:
		sources = [][]string{{req.Stdout, req.Stderr}, {stem + ".out"}}
	}
	for _, src := range sources {
		var names []string
		for _, n := range src {
			if have(n) {
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			continue
		}
		d, err := r.parse(ctx, req.Dir, names)
		if err != nil {
			return plugins.Digest{}, err
		}
		if d.HasSummary() {
			return toDigest(d, r.prog, stem, have), nil
		}
	}
	return plugins.Digest{Program: string(r.prog), Termination: plugins.TerminationNone}, nil
}

// parse streams the named files, in order, through qc.Parse. A file that
// does not exist is left out; names are opened inside dir only.
func (r *Runner) parse(ctx context.Context, dir string, names []string) (qc.Digest, error) {
	var readers []io.Reader
	for _, n := range names {
		f, err := os.OpenInRoot(dir, n)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return qc.Digest{}, plugins.Errorf(plugins.KindPermanent, "digest: open %s: %w", n, err)
		}
		defer f.Close()
		readers = append(readers, f)
	}
	if len(readers) == 0 {
		return qc.Digest{}, nil
	}
	d, err := qc.Parse(ctxReader{ctx, io.MultiReader(readers...)}, r.prog)
	if err != nil {
		if ctx.Err() != nil {
			return qc.Digest{}, plugins.Errorf(plugins.KindTransient, "digest: %w", ctx.Err())
		}
		return qc.Digest{}, plugins.Errorf(plugins.KindPermanent, "digest: read: %w", err)
	}
	return d, nil
}

// ctxReader stops reading when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// toDigest keeps what the protocol carries: the energy only when final, the
// geometry file only when it was fetched.
func toDigest(d qc.Digest, prog qc.Program, stem string, have func(string) bool) plugins.Digest {
	out := plugins.Digest{
		Program:         string(d.Program),
		Version:         d.Version,
		Termination:     d.Termination.String(),
		TerminationLine: d.TerminationLine,
	}
	if out.Program == "" {
		out.Program = string(prog)
	}
	if d.FinalEnergy != nil {
		out.Energy, out.EnergyMethod = d.FinalEnergy.Text, d.FinalEnergy.Method
	}
	if d.Opt != nil {
		out.Optimization, out.OptConverged, out.OptCycles = true, d.Opt.Converged, d.Opt.Cycles
	}
	if d.Freqs != nil {
		out.Frequencies, out.Imaginary, out.LowestFrequency = d.Freqs.Modes, d.Freqs.Imaginary, d.Freqs.LowestText
	}
	if d.WallTime != nil {
		out.WallSeconds = int64(math.Round(d.WallTime.Seconds()))
	}
	switch {
	case d.GeometryFile != "" && have(d.GeometryFile):
		out.GeometryFile = d.GeometryFile
	case prog == qc.ORCA && d.Opt != nil && have(stem+".xyz"):
		// ORCA writes the optimized geometry to <basename>.xyz without naming it.
		out.GeometryFile = stem + ".xyz"
	}
	return out
}
