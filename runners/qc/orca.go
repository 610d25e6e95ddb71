package qc

import (
	"bytes"
	"math"
	"strings"
)

// ORCA markers, as ORCA 5 and 6 print them (ORCA manual:
// https://www.faccts.de/docs/orca/6.0/manual/; the same strings are read by
// cclib's ORCA parser, https://github.com/cclib/cclib/blob/master/cclib/parser/orcaparser.py).
var (
	orcaBanner     = []byte("O   R   C   A")                    // "* O   R   C   A *" box at the top
	orcaVersion    = []byte("Program Version ")                 // "Program Version 6.0.0  -   RELEASE  -"
	orcaNormal     = []byte("****ORCA TERMINATED NORMALLY****") // last line but one of every finished run
	orcaErrorTerm  = []byte("ORCA finished by error termination")
	orcaAborting   = []byte("borting the run") // "Aborting the run" or "[file orca_tools/qcmsg.cpp, line 394]:" then "  .... aborting the run"
	orcaInputError = []byte("INPUT ERROR")     // then the reason on the next line
	orcaFinal      = []byte("FINAL SINGLE POINT ENERGY")
	orcaSCFTotal   = []byte("Total Energy       :")
	orcaMP2Total   = []byte("MP2 TOTAL ENERGY:")
	orcaOptCycle   = []byte("GEOMETRY OPTIMIZATION CYCLE")
	orcaOptDone    = []byte("THE OPTIMIZATION HAS CONVERGED")
	orcaFreqs      = []byte("VIBRATIONAL FREQUENCIES")
	orcaCM         = []byte("cm**-1")
	orcaRunTime    = []byte("TOTAL RUN TIME:")
)

type orcaParser struct {
	d          Digest
	seen       bool
	inputError bool // the line after "INPUT ERROR" is its reason
	// candidates printed since the last FINAL SINGLE POINT ENERGY, to
	// name the method of the final energy when it equals one of them
	scf, mp2   *Energy
	freq       *freqBlock
	inFreq     bool
	freqRows   int // rows of the current block
	freqHeader int // other lines since its title
}

func newORCA() *orcaParser { return &orcaParser{d: Digest{Program: ORCA}} }

func (p *orcaParser) fail(l []byte) {
	if p.d.Termination != Failed {
		p.d.Termination, p.d.TerminationLine = Failed, clean(l)
	}
}

func (p *orcaParser) line(l []byte) {
	t := trimLeft(l)
	if p.inputError {
		if len(bytes.TrimSpace(t)) == 0 {
			return
		}
		p.inputError = false
		if !bytes.HasPrefix(t, []byte("[file ")) {
			p.d.TerminationLine = clean(t)
		}
		return
	}
	if p.inFreq {
		// "     6:      43.87 cm**-1    2-Au" (imaginary: "-98.10 cm**-1 ***imaginary mode***")
		f := strings.Fields(string(t))
		if len(f) >= 3 && strings.HasSuffix(f[0], ":") && f[2] == string(orcaCM) {
			if _, ok := integer(strings.TrimSuffix(f[0], ":")); ok {
				p.freq.add(f[1])
				p.freqRows++
				return
			}
		}
		// the header ("Scaling factor ...", "Point group", "Irrep") comes
		// before the rows; the first other line after them ends the block
		p.freqHeader++
		if p.freqRows == 0 && p.freqHeader <= 8 {
			return
		}
		p.inFreq = false
	}
	switch {
	case bytes.Contains(t, orcaBanner):
		p.seen = true
	case bytes.HasPrefix(t, orcaVersion):
		p.seen = true
		if f := strings.Fields(string(t)); len(f) >= 3 && p.d.Version == "" {
			p.d.Version = clean([]byte(f[2]))
		}
	case bytes.Contains(t, orcaNormal):
		if p.d.Termination != Failed {
			p.d.Termination, p.d.TerminationLine = Normal, clean(t)
		}
	case bytes.HasPrefix(t, orcaErrorTerm):
		p.fail(t)
	case bytes.Contains(t, orcaAborting):
		p.fail(t)
	case bytes.Equal(bytes.TrimSpace(t), orcaInputError):
		if p.d.Termination != Failed {
			p.fail(t)
			p.inputError = true
		}
	case bytes.HasPrefix(t, orcaFinal):
		// "FINAL SINGLE POINT ENERGY      -382.055108392562"
		f := strings.Fields(string(t))
		if len(f) == 5 {
			if e := energy(f[4], ""); e != nil {
				e.Method = p.methodOf(e)
				p.d.LastEnergy = e
			}
		}
		p.scf, p.mp2 = nil, nil
	case bytes.HasPrefix(t, orcaSCFTotal):
		// "Total Energy       :       -382.05510861770381 Eh          -10396.24804 eV"
		if f := strings.Fields(string(t)); len(f) >= 5 && f[4] == "Eh" {
			p.scf = energy(f[3], "SCF")
		}
	case bytes.HasPrefix(t, orcaMP2Total):
		// "MP2 TOTAL ENERGY:      -74.999374598 Eh"
		if f := strings.Fields(string(t)); len(f) >= 5 && f[4] == "Eh" {
			p.mp2 = energy(f[3], "MP2")
		}
	case bytes.Contains(t, orcaOptCycle):
		// "*                GEOMETRY OPTIMIZATION CYCLE   1            *"
		f := strings.Fields(string(t))
		for i, w := range f {
			if w == "CYCLE" && i+1 < len(f) {
				if n, ok := integer(f[i+1]); ok {
					p.d.Opt = &Optimization{Cycles: n}
				}
			}
		}
	case bytes.Contains(t, orcaOptDone):
		if p.d.Opt != nil {
			p.d.Opt.Converged = true
		}
	case bytes.Equal(bytes.TrimSpace(t), orcaFreqs):
		p.freq, p.inFreq, p.freqRows, p.freqHeader = &freqBlock{}, true, 0, 0
	case bytes.HasPrefix(t, orcaRunTime):
		// "TOTAL RUN TIME: 0 days 0 hours 0 minutes 52 seconds 153 msec"
		if dur, ok := dhms(strings.Fields(string(t))[3:]); ok {
			p.d.WallTime = &dur
		}
	}
}

// methodOf names the method of a FINAL SINGLE POINT ENERGY when it is the
// MP2 or SCF total energy printed just before it (to the printed
// precision); with a dispersion correction or another method it matches
// neither and stays unnamed.
func (p *orcaParser) methodOf(final *Energy) string {
	for _, c := range []*Energy{p.mp2, p.scf} {
		if c != nil && sameToPrecision(final, c) {
			return c.Method
		}
	}
	return ""
}

// sameToPrecision reports whether two printed numbers agree to the fewer
// decimals of the two.
func sameToPrecision(a, b *Energy) bool {
	d := min(decimals(a.Text), decimals(b.Text))
	return math.Abs(a.Hartree-b.Hartree) <= 0.5*math.Pow(10, -float64(d))+1e-13
}

func decimals(s string) int {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		n := 0
		for _, c := range s[i+1:] {
			if c < '0' || c > '9' {
				break
			}
			n++
		}
		return n
	}
	return 0
}

func (p *orcaParser) finish() Digest {
	d := p.d
	if !p.seen && d.Termination == NoSummary && d.LastEnergy == nil {
		return Digest{}
	}
	if d.Termination == NoSummary {
		d.Termination = Unfinished
	}
	if d.Termination == Normal && d.LastEnergy != nil {
		d.FinalEnergy = d.LastEnergy
	}
	d.Freqs = p.freq.result()
	return d
}
