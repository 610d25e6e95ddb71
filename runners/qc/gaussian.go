package qc

import (
	"bytes"
	"strings"
	"time"
)

// Gaussian markers, as Gaussian 09 and 16 print them (the outputs in
// testdata; Gaussian's keywords: https://gaussian.com/opt/,
// https://gaussian.com/freq/; the same strings are read by cclib's Gaussian
// parser, https://github.com/cclib/cclib/blob/master/cclib/parser/gaussianparser.py).
var (
	gaussianBanner  = []byte("Entering Gaussian System") // first line of every output
	gaussianBanner2 = []byte("This is part of the Gaussian(R)")
	gaussianNormal  = []byte("Normal termination of Gaussian")
	gaussianError   = []byte("Error termination")  // "Error termination via Lnk1e in .../l502.exe at ..."
	gaussianLink1   = []byte("Entering Link 1 = ") // each step of a multi-step (--Link1--) job starts here
	gaussianSCF     = []byte("SCF Done:")
	gaussianEUMP2   = []byte("EUMP2 =")
	gaussianStep    = []byte("Step number ")
	gaussianOptDone = []byte("Optimization completed.")
	gaussianOptStop = []byte("Optimization stopped.")
	gaussianHarm    = []byte("Harmonic frequencies (cm**-1)")
	gaussianFreq    = []byte("Frequencies --")
	gaussianElapsed = []byte("Elapsed time:")
)

// gaussianUnread are route keywords (prefixes) of methods whose final
// energy is not the last "SCF Done" or "EUMP2" line (coupled cluster,
// higher MPn, composite and double-hybrid methods, excited states,
// ONIOM, counterpoise...). With one of them in the route this package
// does not name a final energy rather than name the wrong one
// (keywords: https://gaussian.com/keywords/).
var gaussianUnread = []string{
	"ccsd", "ccd", "qci", "mp3", "mp4", "mp5", "cbs", "g1", "g2", "g3", "g4", "w1",
	"cis", "cid", "bd", "td", "eom", "sac", "cas", "gvb", "ovgf", "zindo",
	"oniom", "counterpoise", "external", "b2plyp", "mpw2plyp", "dsd", "pbe0dh", "pbeqidh",
	"b2gp", "dhybrid",
}

type gaussianParser struct {
	d    Digest
	seen bool

	// the current step's route section ("#p b3lyp/sto-3g opt"), which may
	// span several lines between two lines of dashes
	afterDashes bool
	inRoute     bool
	route       []byte
	isOpt       bool // the route asks for an optimization
	unread      bool // the route has a method whose final energy is not read here

	lastUnread bool // LastEnergy came from a step with such a method
	elapsed    time.Duration
	hasElapsed bool
	freq       *freqBlock
}

func newGaussian() *gaussianParser { return &gaussianParser{d: Digest{Program: Gaussian}} }

func (p *gaussianParser) line(l []byte) {
	t := trimLeft(l)
	dashes := len(t) > 0 && len(bytes.Trim(t, "-")) == 0
	if p.inRoute {
		if dashes || len(p.route) > 2048 {
			p.inRoute = false
			p.routeDone()
		} else {
			// Gaussian wraps the route at a fixed width without adding a
			// blank: join the pieces as they are (less the leading blank)
			p.route = append(p.route, bytes.TrimPrefix(l, []byte(" "))...)
		}
		p.afterDashes = dashes
		return
	}
	if p.afterDashes && bytes.HasPrefix(t, []byte("#")) {
		p.inRoute, p.route = true, append(p.route[:0], t...)
		p.afterDashes = false
		return
	}
	p.afterDashes = dashes
	if dashes {
		return
	}
	switch {
	case bytes.Contains(t, gaussianBanner), bytes.Contains(t, gaussianBanner2):
		p.seen = true
	case bytes.HasPrefix(t, gaussianLink1):
		// a new step: whatever the previous one said, this one has not
		// finished yet, and its route is still to come
		p.seen = true
		if p.d.Termination == Normal {
			p.d.Termination, p.d.TerminationLine = Unfinished, ""
		}
		p.isOpt, p.unread = false, false
	case bytes.HasPrefix(t, []byte("Gaussian ")) && bytes.Contains(t, []byte(":")):
		// " Gaussian 16:  ES64L-G16RevA.03 25-Dec-2016"
		f := strings.Fields(string(t))
		if len(f) >= 3 && strings.HasSuffix(f[1], ":") {
			if _, ok := integer(strings.TrimSuffix(f[1], ":")); ok && p.d.Version == "" {
				p.seen = true
				p.d.Version = clean([]byte(f[2]))
			}
		}
	case bytes.HasPrefix(t, gaussianNormal):
		if p.d.Termination != Failed {
			p.d.Termination, p.d.TerminationLine = Normal, clean(t)
		}
	case bytes.HasPrefix(t, gaussianError):
		// "Error termination request processed by link 9999." comes before
		// "Error termination via Lnk1e in .../l9999.exe at ...": keep the latter
		if p.d.Termination != Failed || bytes.Contains(t, []byte(" via ")) {
			p.d.Termination, p.d.TerminationLine = Failed, clean(t)
		}
	case bytes.HasPrefix(t, gaussianSCF):
		// "SCF Done:  E(RB3LYP) =  -382.308266602     A.U. after   12 cycles"
		f := strings.Fields(string(t))
		if len(f) >= 5 && f[3] == "=" && strings.HasPrefix(f[2], "E(") && strings.HasSuffix(f[2], ")") {
			if e := energy(f[4], clean([]byte(f[2][2:len(f[2])-1]))); e != nil {
				p.d.LastEnergy, p.lastUnread = e, p.unread
			}
		}
	case bytes.Contains(t, gaussianEUMP2):
		// " E2 =    -0.3795333610D-01 EUMP2 =    -0.75002282127454D+02"
		f := strings.Fields(string(t))
		for i := 0; i+2 < len(f); i++ {
			if f[i] == "EUMP2" && f[i+1] == "=" {
				if e := energy(f[i+2], "MP2"); e != nil {
					p.d.LastEnergy, p.lastUnread = e, p.unread
				}
			}
		}
	case bytes.HasPrefix(t, gaussianStep):
		// " Step number   5 out of a maximum of  100"; a frequency job
		// prints one too (its test for a stationary point): only an
		// optimization's steps count
		if f := strings.Fields(string(t)); p.isOpt && len(f) >= 3 {
			if n, ok := integer(f[2]); ok {
				p.d.Opt = &Optimization{Cycles: n}
			}
		}
	case bytes.HasPrefix(t, gaussianOptDone):
		if p.isOpt && p.d.Opt != nil {
			p.d.Opt.Converged = true
		}
	case bytes.HasPrefix(t, gaussianOptStop):
		if p.isOpt && p.d.Opt != nil {
			p.d.Opt.Converged = false
		}
	case bytes.HasPrefix(t, gaussianHarm):
		p.freq = &freqBlock{}
	case bytes.HasPrefix(t, gaussianFreq):
		// " Frequencies --     53.1981                84.7415               149.4005"
		// (with freq=hpmodes also "Frequencies ---" rows, in a block of
		// their own: the last block wins)
		if p.freq != nil {
			for _, w := range strings.Fields(string(t))[2:] {
				p.freq.add(w)
			}
		}
	case bytes.HasPrefix(t, gaussianElapsed):
		// " Elapsed time:       0 days  0 hours  0 minutes 50.1 seconds."
		if dur, ok := dhms(strings.Fields(string(t))[2:]); ok {
			p.elapsed += dur
			p.hasElapsed = true
		}
	}
}

// routeDone reads the route of the step that starts.
func (p *gaussianParser) routeDone() {
	p.seen = true
	p.isOpt, p.unread = false, false
	for _, w := range strings.FieldsFunc(strings.ToLower(string(p.route)), func(r rune) bool {
		return r == ' ' || r == '/' || r == '#'
	}) {
		if w == "opt" || strings.HasPrefix(w, "opt=") || strings.HasPrefix(w, "opt(") {
			p.isOpt = true
		}
		m := strings.TrimPrefix(strings.TrimPrefix(w, "ro"), "u")
		if m == w {
			m = strings.TrimPrefix(w, "r")
		}
		for _, u := range gaussianUnread {
			if strings.HasPrefix(w, u) || strings.HasPrefix(m, u) {
				p.unread = true
			}
		}
	}
	if p.isOpt {
		// a new optimization: nothing of an earlier step's carries over
		p.d.Opt = &Optimization{}
	}
}

func (p *gaussianParser) finish() Digest {
	d := p.d
	if !p.seen && d.Termination == NoSummary && d.LastEnergy == nil {
		return Digest{}
	}
	if d.Termination == NoSummary {
		d.Termination = Unfinished
	}
	if d.Termination == Normal && d.LastEnergy != nil && !p.lastUnread {
		d.FinalEnergy = d.LastEnergy
	}
	if p.hasElapsed {
		w := p.elapsed
		d.WallTime = &w
	}
	d.Freqs = p.freq.result()
	return d
}
