package qc

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// at is a value as printed in a fixture: text must appear on line (1-based)
// of file (the fixture's first file when empty). The test checks that
// first, so every expected value below is tied to the line it comes from.
type at struct {
	file string
	line int
	text string
}

type fixture struct {
	name  string
	files []string // read one after the other (xtb: standard output, then standard error)

	version  at
	term     Termination
	termLine at // the whole TerminationLine (trimmed); zero for none

	final  *at    // the final energy's printed text; nil: none
	method string // its Method
	last   *at    // LastEnergy when there is no final energy

	opt   *Optimization
	optAt at // where the cycle count is printed

	freqs    *Frequencies
	lowestAt at

	wall   time.Duration // 0: not printed
	wallAt at

	geom at
}

// fixtures: every output in testdata, with the values read off the files
// by hand (grep -n); the line numbers are the files' own.
var fixtures = []fixture{
	{
		name: "orca dvb_sp_dft", files: []string{"orca6.0/dvb_sp_dft.out"},
		version: at{line: 54, text: "6.0.0"},
		term:    Normal, termLine: at{line: 3201, text: "****ORCA TERMINATED NORMALLY****"},
		// 3015: FINAL SINGLE POINT ENERGY      -382.055108392562
		// 1486: Total Energy       :       -382.05510839256243 Eh (the SCF total, the same to 12 decimals)
		final: &at{line: 3015, text: "-382.055108392562"}, method: "SCF",
		wall: 7*time.Second + 985*time.Millisecond, wallAt: at{line: 3202, text: "0 days 0 hours 0 minutes 7 seconds 985 msec"},
	},
	{
		name: "orca dvb_gopt", files: []string{"orca6.0/dvb_gopt.out"},
		version: at{line: 54, text: "6.0.0"},
		term:    Normal, termLine: at{line: 7347, text: "****ORCA TERMINATED NORMALLY****"},
		// the last of the four FINAL SINGLE POINT ENERGY lines (3026, 3645, 4271, 7157):
		// the final evaluation at the converged geometry
		final: &at{line: 7157, text: "-382.055133399486"}, method: "SCF",
		// 4392: "***        THE OPTIMIZATION HAS CONVERGED     ***"
		opt: &Optimization{Converged: true, Cycles: 3}, optAt: at{line: 3929, text: "GEOMETRY OPTIMIZATION CYCLE   3"},
		wall: 52*time.Second + 153*time.Millisecond, wallAt: at{line: 7348, text: "0 days 0 hours 0 minutes 52 seconds 153 msec"},
	},
	{
		name: "orca dvb_ir", files: []string{"orca6.0/dvb_ir.out"},
		version: at{line: 54, text: "6.0.1"},
		term:    Normal, termLine: at{line: 2232, text: "****ORCA TERMINATED NORMALLY****"},
		final: &at{line: 1232, text: "-382.055107107616"}, method: "SCF",
		// rows 0-5 (lines 1428-1433) are 0.00: translations and rotations;
		// 54 = 3N-6 vibrations of the 20 atoms; none "***imaginary mode***"
		freqs:    &Frequencies{Modes: 54, Imaginary: 0, Lowest: 43.87, LowestText: "43.87"},
		lowestAt: at{line: 1434, text: "6:      43.87 cm**-1"},
		wall:     50*time.Second + 462*time.Millisecond, wallAt: at{line: 2233, text: "50 seconds 462 msec"},
	},
	{
		name: "orca water_mp2", files: []string{"orca6.0/water_mp2.out"},
		version: at{line: 54, text: "6.0.1"},
		term:    Normal, termLine: at{line: 899, text: "****ORCA TERMINATED NORMALLY****"},
		// 724: MP2 TOTAL ENERGY:      -74.999374598 Eh
		final: &at{line: 730, text: "-74.999374598107"}, method: "MP2",
		wall: 4*time.Second + 991*time.Millisecond, wallAt: at{line: 900, text: "4 seconds 991 msec"},
	},
	{
		name: "gaussian dvb_sp", files: []string{"gaussian16/dvb_sp.out"},
		version: at{line: 77, text: "ES64L-G16RevA.03"},
		term:    Normal, termLine: at{line: 5730, text: "Normal termination of Gaussian 16 at Thu Apr  5 09:06:04 2018."},
		final: &at{line: 3857, text: "-382.308266602"}, method: "RB3LYP",
		wall: 2100 * time.Millisecond, wallAt: at{line: 5728, text: "0 days  0 hours  0 minutes  2.1 seconds."},
	},
	{
		name: "gaussian dvb_gopt", files: []string{"gaussian16/dvb_gopt.out"},
		version: at{line: 77, text: "ES64L-G16RevA.03"},
		term:    Normal, termLine: at{line: 3474, text: "Normal termination of Gaussian 16 at Wed Apr  4 10:19:28 2018."},
		// the last of five SCF Done lines
		final: &at{line: 2785, text: "-382.308266602"}, method: "RB3LYP",
		// 2975: "Optimization completed."
		opt: &Optimization{Converged: true, Cycles: 5}, optAt: at{line: 2846, text: "Step number   5 out of a maximum of  100"},
		wall: 50100 * time.Millisecond, wallAt: at{line: 3472, text: "0 minutes 50.1 seconds."},
	},
	{
		// route "#p b3lyp/sto-3g guess=read freq=hpmodes geom=allcheck" (line 85):
		// its "Step number 1 out of a maximum of 2" (2177) and "Optimization
		// completed." (2296) are the frequency job's stationary-point test,
		// not an optimization
		name: "gaussian dvb_ir", files: []string{"gaussian16/dvb_ir.out"},
		version: at{line: 77, text: "ES64L-G16RevA.03"},
		term:    Normal, termLine: at{line: 2677, text: "Normal termination of Gaussian 16 at Wed Apr  4 10:22:29 2018."},
		final: &at{line: 457, text: "-382.308266602"}, method: "RB3LYP",
		// 54 = 3N-6 for 20 atoms; NImag=0 in the archive (line 2458)
		freqs:    &Frequencies{Modes: 54, Imaginary: 0, Lowest: 53.1981, LowestText: "53.1981"},
		lowestAt: at{line: 1518, text: "Frequencies --     53.1981"},
		wall:     70 * time.Second, wallAt: at{line: 2675, text: "0 days  0 hours  1 minutes 10.0 seconds."},
	},
	{
		name: "gaussian water_mp2", files: []string{"gaussian16/water_mp2.log"},
		version: at{line: 77, text: "ES64L-G16RevA.03"},
		term:    Normal, termLine: at{line: 509, text: "Normal termination of Gaussian 16 at Wed Apr  4 10:14:17 2018."},
		// after "SCF Done:  E(RHF) =  -74.9643287914" (306)
		final: &at{line: 342, text: "-0.75002282127454D+02"}, method: "MP2",
		wall: 1600 * time.Millisecond, wallAt: at{line: 507, text: "1.6 seconds."},
	},
	{
		name: "xtb 6.6.1 dvb_sp", files: []string{"xtb6.6.1/dvb_sp.out"},
		version: at{line: 10, text: "6.6.1"},
		term:    Normal, termLine: at{line: 322, text: "* finished run on 2023/12/11 at 14:02:30.089"},
		final: &at{line: 316, text: "-26.425939358406"}, method: "xtb total",
		wall: 734 * time.Millisecond, wallAt: at{line: 325, text: "0 d,  0 h,  0 min,  0.734 sec"},
	},
	{
		name: "xtb 6.6.1 dvb_opt", files: []string{"xtb6.6.1/dvb_opt.out"},
		version: at{line: 10, text: "6.6.1"},
		term:    Normal, termLine: at{line: 654, text: "* finished run on 2023/12/11 at 14:11:35.816"},
		final: &at{line: 648, text: "-26.438242468348"}, method: "xtb total",
		opt: &Optimization{Converged: true, Cycles: 6}, optAt: at{line: 346, text: "GEOMETRY OPTIMIZATION CONVERGED AFTER 6 ITERATIONS"},
		wall: 1033 * time.Millisecond, wallAt: at{line: 657, text: "0 min,  1.033 sec"},
		geom: at{line: 644, text: "optimized geometry written to: xtbopt.xyz"},
	},
	{
		name: "xtb 6.6.1 dvb_ir", files: []string{"xtb6.6.1/dvb_ir.out"},
		version: at{line: 10, text: "6.6.1"},
		term:    Normal, termLine: at{line: 443, text: "* finished run on 2023/12/11 at 14:13:44.740"},
		final: &at{line: 435, text: "-26.438242468338"}, method: "xtb total",
		// the list is printed twice (216-225, 337-347); six -0.00/0.00 then
		// 54 = 3N-6 modes; line 390: "# imaginary freq.  0"
		freqs:    &Frequencies{Modes: 54, Imaginary: 0, Lowest: 26.15, LowestText: "26.15"},
		lowestAt: at{line: 339, text: "eigval :       26.15"},
		wall:     1597 * time.Millisecond, wallAt: at{line: 446, text: "0 min,  1.597 sec"},
	},
	{
		name: "xtb 6.5.1 water_opt", files: []string{"xtb6.5.1/water_opt.out", "xtb6.5.1/water_opt.err"},
		version: at{line: 10, text: "6.5.1"},
		term:    Normal, termLine: at{file: "xtb6.5.1/water_opt.err", line: 2, text: "normal termination of xtb"},
		final: &at{line: 472, text: "-5.070544374389"}, method: "xtb total",
		opt: &Optimization{Converged: true, Cycles: 4}, optAt: at{line: 286, text: "GEOMETRY OPTIMIZATION CONVERGED AFTER 4 ITERATIONS"},
		wall: 13 * time.Millisecond, wallAt: at{line: 481, text: "0 min,  0.013 sec"},
		geom: at{line: 468, text: "optimized geometry written to: xtbopt.xyz"},
	},
	{
		name: "xtb 6.5.1 water_opt stdout only", files: []string{"xtb6.5.1/water_opt.out"},
		version: at{line: 10, text: "6.5.1"},
		term:    Normal, termLine: at{line: 478, text: "* finished run on 2026/12/03 at 05:25:22.074"},
		final: &at{line: 472, text: "-5.070544374389"}, method: "xtb total",
		opt: &Optimization{Converged: true, Cycles: 4}, optAt: at{line: 286, text: "GEOMETRY OPTIMIZATION CONVERGED AFTER 4 ITERATIONS"},
		wall: 13 * time.Millisecond, wallAt: at{line: 481, text: "0 min,  0.013 sec"},
		geom: at{line: 468, text: "optimized geometry written to: xtbopt.xyz"},
	},
	{
		name: "xtb 6.5.1 water_opt 2>&1", files: []string{"xtb6.5.1/water_opt_2to1.log"},
		version: at{line: 10, text: "6.5.1"},
		// 479: "normal termination of xtb", then 480:
		term: Normal, termLine: at{line: 480, text: "* finished run on 2026/12/03 at 05:25:22.606"},
		final: &at{line: 472, text: "-5.070544374389"}, method: "xtb total",
		opt: &Optimization{Converged: true, Cycles: 4}, optAt: at{line: 286, text: "GEOMETRY OPTIMIZATION CONVERGED AFTER 4 ITERATIONS"},
		wall: 9 * time.Millisecond, wallAt: at{line: 483, text: "0 min,  0.009 sec"},
		geom: at{line: 468, text: "optimized geometry written to: xtbopt.xyz"},
	},
	{
		// normal termination, but the optimization did not converge
		name: "xtb 6.5.1 water_opt_2cycles", files: []string{"xtb6.5.1/water_opt_2cycles.out", "xtb6.5.1/water_opt_2cycles.err"},
		version: at{line: 10, text: "6.5.1"},
		term:    Normal, termLine: at{file: "xtb6.5.1/water_opt_2cycles.err", line: 2, text: "normal termination of xtb"},
		final: &at{line: 439, text: "-5.070542023565"}, method: "xtb total",
		opt: &Optimization{Converged: false, Cycles: 2}, optAt: at{line: 256, text: "FAILED TO CONVERGE GEOMETRY OPTIMIZATION IN 2 ITERATIONS"},
		wall: 13 * time.Millisecond, wallAt: at{line: 448, text: "0 min,  0.013 sec"},
		geom: at{line: 435, text: "optimized geometry written to: xtbopt.xyz"},
	},
	{
		name: "xtb 6.5.1 water_chrg50 (SCC fails)", files: []string{"xtb6.5.1/water_chrg50.out", "xtb6.5.1/water_chrg50.err"},
		version: at{line: 10, text: "6.5.1"},
		// 281: "[ERROR] Program stopped due to fatal error", 282-294: -13- to -1-
		term: Failed, termLine: at{line: 294, text: "-1- mctc_lapack_sygvd: Failed to solve eigenvalue problem"},
		last: &at{line: 174, text: "13.208021393575"},
		opt:  &Optimization{Converged: false, Cycles: 1}, optAt: at{line: 226, text: "CYCLE    1"},
		geom: at{line: 278, text: "last geometry written to: xtblast.xyz"},
	},
	{
		name: "xtb 6.5.1 bad_count", files: []string{"xtb6.5.1/bad_count.out", "xtb6.5.1/bad_count.err"},
		version: at{line: 10, text: "6.5.1"},
		term:    Failed, termLine: at{line: 83, text: "-1- Error: Atom number missmatch in xyz file"},
	},
	{
		name: "xtb 6.5.1 bad_element", files: []string{"xtb6.5.1/bad_element.out", "xtb6.5.1/bad_element.err"},
		version: at{line: 10, text: "6.5.1"},
		term:    Failed, termLine: at{line: 83, text: "-1- Error: Cannot map symbol to atomic number"},
	},
	{
		// a warning block ("-1- hessian_numhess: Hessian on incompletely
		// optimized geometry!", line 344) is not a failure
		name: "xtb 6.5.1 planar_nh3_hess", files: []string{"xtb6.5.1/planar_nh3_hess.out", "xtb6.5.1/planar_nh3_hess.err"},
		version: at{line: 10, text: "6.5.1"},
		term:    Normal, termLine: at{file: "xtb6.5.1/planar_nh3_hess.err", line: 2, text: "normal termination of xtb"},
		final: &at{line: 336, text: "-4.415745616965"}, method: "xtb total",
		// 3N-6 = 6 modes of NH3, one imaginary (line 293: "# imaginary freq.  1")
		freqs:    &Frequencies{Modes: 6, Imaginary: 1, Lowest: -871.24, LowestText: "-871.24"},
		lowestAt: at{line: 207, text: "eigval :     -871.24"},
		wall:     15 * time.Millisecond, wallAt: at{line: 351, text: "0 min,  0.015 sec"},
	},
	{
		// xtb 6.5.1 crashed (stack smashing, SIGABRT) after the frequencies:
		// no termination line, so no final energy
		name: "xtb 6.5.1 linear_hess (crash)", files: []string{"xtb6.5.1/linear_hess.out", "xtb6.5.1/linear_hess.err"},
		version: at{line: 10, text: "6.5.1"},
		term:    Unfinished,
		last:    &at{line: 177, text: "-5.018205857424"},
		// a linear molecule: five zeros, 3N-5 = 4 modes
		freqs:    &Frequencies{Modes: 4, Imaginary: 0, Lowest: 707.6, LowestText: "707.60"},
		lowestAt: at{line: 205, text: "0.00   707.60"},
	},
}

func readFixture(t testing.TB, files ...string) []byte {
	t.Helper()
	var all []byte
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// checkAt fails unless a's text is on its line of its file.
func checkAt(t *testing.T, fx fixture, what string, a at) {
	t.Helper()
	f := a.file
	if f == "" {
		f = fx.files[0]
	}
	lines := strings.Split(string(readFixture(t, f)), "\n")
	if a.line < 1 || a.line > len(lines) || !strings.Contains(lines[a.line-1], a.text) {
		got := ""
		if a.line >= 1 && a.line <= len(lines) {
			got = lines[a.line-1]
		}
		t.Fatalf("%s: %s line %d is %q, which does not print %q", what, f, a.line, got, a.text)
	}
}

func parseBytes(t testing.TB, b []byte, p Program) Digest {
	t.Helper()
	d, err := Parse(bytes.NewReader(b), p)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestFixtures(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			out := readFixture(t, fx.files...)
			prog := map[string]Program{"orca6.0": ORCA, "gaussian16": Gaussian}[filepath.Dir(fx.files[0])]
			if prog == Unknown {
				prog = XTB
			}
			// detected from the banner, and with the program named: the same
			d := parseBytes(t, out, Unknown)
			if named := parseBytes(t, out, prog); !equalDigest(d, named) {
				t.Errorf("detected %+v, named %+v", d, named)
			}
			if d.Program != prog {
				t.Errorf("program %q, want %q", d.Program, prog)
			}
			checkAt(t, fx, "version", fx.version)
			if d.Version != fx.version.text {
				t.Errorf("version %q, want %q", d.Version, fx.version.text)
			}
			if d.Termination != fx.term {
				t.Errorf("termination %v, want %v", d.Termination, fx.term)
			}
			if fx.termLine.text != "" {
				checkAt(t, fx, "termination line", fx.termLine)
			}
			if d.TerminationLine != fx.termLine.text {
				t.Errorf("termination line %q, want %q", d.TerminationLine, fx.termLine.text)
			}
			checkEnergy(t, fx, "final energy", d.FinalEnergy, fx.final, fx.method)
			if fx.final != nil {
				if d.LastEnergy == nil || *d.LastEnergy != *d.FinalEnergy {
					t.Errorf("last energy %+v, want the final one", d.LastEnergy)
				}
			} else {
				checkEnergy(t, fx, "last energy", d.LastEnergy, fx.last, "xtb total")
			}
			switch {
			case fx.opt == nil && d.Opt != nil:
				t.Errorf("optimization %+v, want none", *d.Opt)
			case fx.opt != nil:
				checkAt(t, fx, "optimization", fx.optAt)
				if d.Opt == nil || *d.Opt != *fx.opt {
					t.Errorf("optimization %+v, want %+v", d.Opt, *fx.opt)
				}
			}
			switch {
			case fx.freqs == nil && d.Freqs != nil:
				t.Errorf("frequencies %+v, want none", *d.Freqs)
			case fx.freqs != nil:
				checkAt(t, fx, "lowest frequency", fx.lowestAt)
				if !strings.Contains(fx.lowestAt.text, fx.freqs.LowestText) {
					t.Fatalf("table: %q is not in %q", fx.freqs.LowestText, fx.lowestAt.text)
				}
				if d.Freqs == nil || *d.Freqs != *fx.freqs {
					t.Errorf("frequencies %+v, want %+v", d.Freqs, *fx.freqs)
				}
			}
			switch {
			case fx.wall == 0 && d.WallTime != nil:
				t.Errorf("wall time %v, want none", *d.WallTime)
			case fx.wall != 0:
				checkAt(t, fx, "wall time", fx.wallAt)
				if d.WallTime == nil || *d.WallTime != fx.wall {
					t.Errorf("wall time %v, want %v", d.WallTime, fx.wall)
				}
			}
			wantGeom := ""
			if fx.geom.text != "" {
				checkAt(t, fx, "geometry file", fx.geom)
				wantGeom = fx.geom.text[strings.LastIndexByte(fx.geom.text, ' ')+1:]
			}
			if d.GeometryFile != wantGeom {
				t.Errorf("geometry file %q, want %q", d.GeometryFile, wantGeom)
			}
			if d.SkippedLines != 0 {
				t.Errorf("%d lines skipped", d.SkippedLines)
			}
		})
	}
}

func checkEnergy(t *testing.T, fx fixture, what string, got *Energy, want *at, method string) {
	t.Helper()
	if want == nil {
		if got != nil {
			t.Errorf("%s %+v, want none", what, *got)
		}
		return
	}
	checkAt(t, fx, what, *want)
	if got == nil {
		t.Errorf("%s missing, want %s", what, want.text)
		return
	}
	if got.Text != want.text || got.Method != method {
		t.Errorf("%s %+v, want %q (%s)", what, *got, want.text, method)
	}
	if v, ok := number(want.text); !ok || v != got.Hartree {
		t.Errorf("%s value %v, want %v", what, got.Hartree, v)
	}
}

func equalDigest(a, b Digest) bool {
	eq := func(x, y any) bool { return x == y }
	ptrEq := func(x, y *Energy) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return eq(a.Program, b.Program) && a.Version == b.Version && a.Termination == b.Termination &&
		a.TerminationLine == b.TerminationLine && ptrEq(a.FinalEnergy, b.FinalEnergy) &&
		ptrEq(a.LastEnergy, b.LastEnergy) && (a.Opt == nil) == (b.Opt == nil) && (a.Opt == nil || *a.Opt == *b.Opt) &&
		(a.Freqs == nil) == (b.Freqs == nil) && (a.Freqs == nil || *a.Freqs == *b.Freqs) &&
		(a.WallTime == nil) == (b.WallTime == nil) && (a.WallTime == nil || *a.WallTime == *b.WallTime) &&
		a.GeometryFile == b.GeometryFile && a.SkippedLines == b.SkippedLines
}

// TestTruncated: a copy of every fixture cut short (a run killed, a file
// fetched while written) never digests to a normal termination or a final
// energy: cut at 60 %, just before the line of the final energy, and just
// before the termination line.
func TestTruncated(t *testing.T) {
	for _, fx := range fixtures {
		out := readFixture(t, fx.files...)
		cuts := map[string]int{"60%": len(out) * 6 / 10}
		if fx.final != nil {
			cuts["before final energy"] = offsetOf(t, fx, *fx.final)
		}
		if fx.term == Normal {
			// before the first of the termination lines (xtb has one on
			// each stream)
			n := offsetOf(t, fx, fx.termLine)
			for _, marker := range []string{"* finished run on", "normal termination of xtb"} {
				if i := bytes.Index(out, []byte(marker)); i >= 0 {
					n = min(n, bytes.LastIndexByte(out[:i], '\n')+1)
				}
			}
			cuts["before termination"] = n
		}
		for name, n := range cuts {
			t.Run(fx.name+"/"+name, func(t *testing.T) {
				d := parseBytes(t, out[:n], Unknown)
				if d.Termination == Normal || d.FinalEnergy != nil {
					t.Fatalf("cut at byte %d of %d: %v %q, final energy %+v", n, len(out), d.Termination, d.TerminationLine, d.FinalEnergy)
				}
				if fx.term == Failed && d.Termination == Failed {
					return // cut after the error block
				}
				if d.Termination != Unfinished || d.Program == Unknown {
					t.Errorf("cut at byte %d: %v (%s), want unfinished", n, d.Termination, d.Program)
				}
			})
		}
	}
}

// offsetOf is the offset, in the fixture's files read one after the
// other, of the start of a's line.
func offsetOf(t *testing.T, fx fixture, a at) int {
	t.Helper()
	checkAt(t, fx, "cut", a)
	file := a.file
	if file == "" {
		file = fx.files[0]
	}
	off := 0
	for _, f := range fx.files {
		b := readFixture(t, f)
		if f == file {
			for i := 1; i < a.line; i++ {
				off += bytes.IndexByte(b, '\n') + 1
				b = b[bytes.IndexByte(b, '\n')+1:]
			}
			return off
		}
		off += len(b)
	}
	t.Fatalf("%s is not one of %v", file, fx.files)
	return 0
}

// TestTruncatedKeepsLastEnergy: a run cut after some energies keeps the
// last one as LastEnergy, not as final.
func TestTruncatedKeepsLastEnergy(t *testing.T) {
	out := readFixture(t, "orca6.0/dvb_gopt.out")
	fx := fixture{files: []string{"orca6.0/dvb_gopt.out"}}
	d := parseBytes(t, out[:offsetOf(t, fx, at{line: 7157, text: "FINAL SINGLE POINT ENERGY      -382.055133399486"})], Unknown)
	// 4271: FINAL SINGLE POINT ENERGY      -382.055133025246 (cycle 3)
	if d.LastEnergy == nil || d.LastEnergy.Text != "-382.055133025246" || d.FinalEnergy != nil {
		t.Errorf("last %+v, final %+v", d.LastEnergy, d.FinalEnergy)
	}
	// the optimization had converged (4392) before the cut
	if d.Opt == nil || !d.Opt.Converged || d.Opt.Cycles != 3 {
		t.Errorf("opt %+v", d.Opt)
	}
}

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		line string
		want Program
	}{
		{"                                 * O   R   C   A *", ORCA},
		{" Entering Gaussian System, Link 0=g16_main", Gaussian},
		{" This is part of the Gaussian(R) 16 program.  It is based on", Gaussian},
		{"     |                           x T B                           |     ", XTB},
		{"   * xtb version 6.6.1 (8d0f1dd) compiled by 'conda@1efc2f54142f' on 2023-08-01", XTB},
		{"ORCA", Unknown},
		{"", Unknown},
	} {
		if got := Detect([]byte(tc.line)); got != tc.want {
			t.Errorf("Detect(%q) = %q, want %q", tc.line, got, tc.want)
		}
	}
	for name, want := range map[string]Program{"orca": ORCA, " ORCA ": ORCA, "g16": Gaussian, "Gaussian": Gaussian, "g09": Gaussian, "xtb": XTB, "psi4": Unknown, "": Unknown} {
		got, ok := ProgramFromName(name)
		if got != want || ok != (want != Unknown) {
			t.Errorf("ProgramFromName(%q) = %q, %v", name, got, ok)
		}
	}
}

// checkSane is what every Digest of any input must satisfy.
func checkSane(t testing.TB, d Digest) {
	t.Helper()
	for _, s := range []string{d.Version, d.TerminationLine, d.GeometryFile} {
		if !utf8.ValidString(s) || len(s) > MaxTextLen {
			t.Fatalf("bad text %q", s)
		}
		for _, r := range s {
			if r < ' ' || r == 0x7f {
				t.Fatalf("control character in %q", s)
			}
		}
	}
	if strings.ContainsAny(d.GeometryFile, "/\\") || d.GeometryFile == ".." {
		t.Fatalf("geometry file %q", d.GeometryFile)
	}
	if d.FinalEnergy != nil && d.Termination != Normal {
		t.Fatalf("final energy %+v for a %v run", *d.FinalEnergy, d.Termination)
	}
	for _, e := range []*Energy{d.FinalEnergy, d.LastEnergy} {
		if e != nil {
			if v, ok := number(e.Text); !ok || v != e.Hartree || !utf8.ValidString(e.Method) || len(e.Method) > MaxTextLen {
				t.Fatalf("energy %+v", *e)
			}
		}
	}
	if d.Freqs != nil {
		if v, ok := number(d.Freqs.LowestText); !ok || v != d.Freqs.Lowest || d.Freqs.Imaginary > d.Freqs.Modes {
			t.Fatalf("frequencies %+v", *d.Freqs)
		}
	}
	if d.Termination == NoSummary && (d.Program != Unknown || d.LastEnergy != nil || d.Opt != nil || d.Freqs != nil) {
		t.Fatalf("no summary but %+v", d)
	}
}

func TestFixturesSane(t *testing.T) {
	for _, fx := range fixtures {
		checkSane(t, parseBytes(t, readFixture(t, fx.files...), Unknown))
	}
}
