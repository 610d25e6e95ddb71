package qc

import (
	"bytes"
	"strings"
)

// xtb markers, as xtb 6.x prints them (source: https://github.com/grimme-lab/xtb;
// the "[ERROR]" block is written by src/type/environment.f90; the manual:
// https://xtb-docs.readthedocs.io/en/latest/). xtb writes its result to
// standard output and the last word, "normal termination of xtb" or
// "abnormal termination of xtb", to standard error: give Parse both (a
// 2>&1 log, or stdout followed by stderr). Standard output alone ends a
// finished run with " * finished run on <date>" and a failed one with an
// "[ERROR] Program stopped due to fatal error" block.
var (
	xtbBanner    = []byte("x T B") // the "|  x T B  |" box at the top
	xtbVersion   = []byte("* xtb version ")
	xtbNormal    = []byte("normal termination of xtb")
	xtbAbnormal  = []byte("abnormal termination of xtb")
	xtbFinished  = []byte("* finished run on ")
	xtbError     = []byte("[ERROR] Program stopped due to fatal error")
	xtbTotal     = []byte("| TOTAL ENERGY ")   // the final summary box
	xtbSCCTotal  = []byte(":: total energy ")  // each single point's summary
	xtbOptTotal  = []byte("* total energy  :") // each optimization cycle
	xtbCycle     = []byte(" CYCLE ")           // "....... CYCLE    1 ......."
	xtbOptDone   = []byte("GEOMETRY OPTIMIZATION CONVERGED AFTER")
	xtbOptFailed = []byte("FAILED TO CONVERGE GEOMETRY OPTIMIZATION IN")
	xtbFreqs     = []byte("vibrational frequencies (cm") // "projected vibrational frequencies (cm⁻¹)"
	xtbEigval    = []byte("eigval :")
	xtbTotalHead = []byte("total:") // then " * wall-time:     0 d,  0 h,  0 min,  1.033 sec"
	xtbWall      = []byte("* wall-time:")
	xtbGeomOpt   = []byte("optimized geometry written to:")
	xtbGeomLast  = []byte("last geometry written to:")
)

type xtbParser struct {
	d       Digest
	seen    bool
	inError int  // lines left in the "[ERROR]" block
	rootSet bool // the block's "-1-" (root cause) line was kept
	inTotal bool // after the "total:" timing header
	freq    *freqBlock
}

func newXTB() *xtbParser { return &xtbParser{d: Digest{Program: XTB}} }

func (p *xtbParser) line(l []byte) {
	t := trimLeft(l)
	if p.inError > 0 {
		// "-2- reading geometry input 'bad.xyz' failed"
		// "-1- Error: Atom number missmatch in xyz file"
		// The block lists the errors logged, numbered in the order they
		// were logged and printed from the highest number down
		// (environment.f90, show): -1- is the first, the root cause; the
		// highest is the message the run stopped with.
		p.inError--
		if bytes.HasPrefix(t, []byte("-1- ")) && !p.rootSet {
			p.d.TerminationLine, p.rootSet = clean(t), true
		}
		if bytes.HasPrefix(t, []byte("####")) {
			p.inError = 0
		}
		return
	}
	switch {
	case bytes.Contains(t, xtbBanner):
		p.seen = true
	case bytes.HasPrefix(t, xtbVersion):
		// "* xtb version 6.6.1 (8d0f1dd) compiled by 'conda@1efc2f54142f' on 2023-08-01"
		p.seen = true
		if f := strings.Fields(string(t)); len(f) >= 4 && p.d.Version == "" {
			p.d.Version = clean([]byte(f[3]))
		}
	case bytes.HasPrefix(t, xtbError):
		p.d.Termination, p.d.TerminationLine = Failed, clean(t)
		p.inError, p.rootSet = 64, false
	case bytes.HasPrefix(t, xtbAbnormal):
		if p.d.Termination != Failed {
			p.d.Termination, p.d.TerminationLine = Failed, clean(t)
		}
	case bytes.HasPrefix(t, xtbNormal), bytes.HasPrefix(t, xtbFinished):
		if p.d.Termination != Failed {
			p.d.Termination, p.d.TerminationLine = Normal, clean(t)
		}
	case bytes.HasPrefix(t, xtbTotal):
		// "| TOTAL ENERGY              -26.438242468348 Eh   |"
		if f := strings.Fields(string(t)); len(f) >= 5 && f[4] == "Eh" {
			if e := energy(f[3], "xtb total"); e != nil {
				p.d.LastEnergy = e
				p.d.FinalEnergy = e // kept only if the run terminates normally
			}
		}
	case bytes.HasPrefix(t, xtbSCCTotal):
		// ":: total energy             -26.425939358406 Eh    ::"
		if f := strings.Fields(string(t)); len(f) >= 5 && f[4] == "Eh" {
			if e := energy(f[3], "xtb total"); e != nil {
				p.d.LastEnergy = e
			}
		}
	case bytes.HasPrefix(t, xtbOptTotal):
		// "* total energy  :   -26.4259394 Eh     change       -0.6016592E-09 Eh"
		if f := strings.Fields(string(t)); len(f) >= 6 && f[5] == "Eh" {
			if e := energy(f[4], "xtb total"); e != nil {
				p.d.LastEnergy = e
			}
		}
	case bytes.HasPrefix(t, []byte("....")) && bytes.Contains(t, xtbCycle):
		f := strings.Fields(string(bytes.Trim(t, ". ")))
		if len(f) == 2 && f[0] == "CYCLE" {
			if n, ok := integer(f[1]); ok {
				p.d.Opt = &Optimization{Cycles: n}
			}
		}
	case bytes.Contains(t, xtbOptDone), bytes.Contains(t, xtbOptFailed):
		// "*** GEOMETRY OPTIMIZATION CONVERGED AFTER 6 ITERATIONS ***"
		// "*** FAILED TO CONVERGE GEOMETRY OPTIMIZATION IN 2 ITERATIONS ***"
		f := strings.Fields(string(t))
		for i, w := range f {
			if (w == "AFTER" || w == "IN") && i+1 < len(f) {
				if n, ok := integer(f[i+1]); ok {
					p.d.Opt = &Optimization{Cycles: n, Converged: bytes.Contains(t, xtbOptDone)}
				}
			}
		}
	case bytes.Contains(t, xtbFreqs):
		p.freq = &freqBlock{}
	case bytes.HasPrefix(t, xtbEigval):
		// "eigval :       26.15    39.77   119.21   179.62   263.40   269.49"
		if p.freq != nil {
			for _, w := range strings.Fields(string(t))[2:] {
				p.freq.add(w)
			}
		}
	case bytes.Equal(bytes.TrimSpace(t), xtbTotalHead):
		p.inTotal = true
		return
	case p.inTotal && bytes.HasPrefix(t, xtbWall):
		if dur, ok := dhms(strings.Fields(string(t))[2:]); ok {
			p.d.WallTime = &dur
		}
	case bytes.HasPrefix(t, xtbGeomOpt), bytes.HasPrefix(t, xtbGeomLast):
		// "optimized geometry written to: xtbopt.xyz"
		if i := bytes.IndexByte(t, ':'); i >= 0 {
			p.d.GeometryFile = fileName(t[i+1:])
		}
	}
	p.inTotal = false
}

func (p *xtbParser) finish() Digest {
	d := p.d
	if !p.seen && d.Termination == NoSummary && d.LastEnergy == nil {
		return Digest{}
	}
	if d.Termination == NoSummary {
		d.Termination = Unfinished
	}
	if d.Termination != Normal || d.FinalEnergy != d.LastEnergy {
		// an energy printed after the final box (a later step that did not
		// print its own) makes the box's energy not the last word
		d.FinalEnergy = nil
	}
	d.Freqs = p.freq.result()
	return d
}
