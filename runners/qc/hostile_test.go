package qc

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"runtime"
	"strings"
	"testing"
)

// cutBefore is out up to the start of the first line containing s.
func cutBefore(t *testing.T, out []byte, s string) []byte {
	t.Helper()
	i := bytes.Index(out, []byte(s))
	if i < 0 {
		t.Fatalf("%q not in the output", s)
	}
	return out[:bytes.LastIndexByte(out[:i], '\n')+1]
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// The failures below are real outputs cut where the run would have died,
// followed by the program's error lines in the form the program prints
// them (quoted in orca.go and gaussian.go); the package's testdata has no
// real failed ORCA or Gaussian run.
func TestFailures(t *testing.T) {
	orca := readFixture(t, "orca6.0/dvb_sp_dft.out")
	orcaCut := cutBefore(t, orca, "FINAL SINGLE POINT ENERGY")
	gauss := readFixture(t, "gaussian16/dvb_gopt.out")
	gaussCut := cutBefore(t, gauss, " Normal termination of Gaussian")
	for _, tc := range []struct {
		name string
		out  []byte
		line string
	}{
		{"orca error termination", cat(orcaCut, []byte("ORCA finished by error termination in SCF\nCalling Command: mpirun -np 4  /opt/orca/orca_scf_mpi dvb_sp.gbw b dvb_sp\n[file orca_tools/qcmsg.cpp, line 394]: \n  .... aborting the run\n\n")),
			"ORCA finished by error termination in SCF"},
		{"orca aborting only", cat(orcaCut, []byte("[file orca_tools/qcmsg.cpp, line 394]: \n  .... aborting the run\n")),
			".... aborting the run"},
		{"orca input error", cat(orca[:bytes.Index(orca, []byte("INPUT FILE"))], []byte("INPUT ERROR\n\nUNRECOGNIZED OR DUPLICATED KEYWORD(S) IN SIMPLE INPUT LINE\n    DEF2-SVPP\n\n[file orca_tools/qcmsg.cpp, line 394]: \n  .... aborting the run\n")),
			"UNRECOGNIZED OR DUPLICATED KEYWORD(S) IN SIMPLE INPUT LINE"},
		{"orca input error, last line", cat(orca[:bytes.Index(orca, []byte("INPUT FILE"))], []byte("INPUT ERROR\n")),
			"INPUT ERROR"},
		{"orca error then a normal line", cat(orcaCut, []byte("ORCA finished by error termination in SCF\n****ORCA TERMINATED NORMALLY****\n")),
			"ORCA finished by error termination in SCF"},
		{"gaussian error termination", cat(gaussCut, []byte(" Error termination via Lnk1e in /software/Gaussian16/g16/l502.exe at Wed Apr  4 10:19:28 2018.\n Job cpu time:       0 days  0 hours  0 minutes 50.1 seconds.\n")),
			"Error termination via Lnk1e in /software/Gaussian16/g16/l502.exe at Wed Apr  4 10:19:28 2018."},
		{"gaussian link 9999", cat(gaussCut, []byte(" Error termination request processed by link 9999.\n Error termination via Lnk1e in /software/Gaussian16/g16/l9999.exe at Wed Apr  4 10:19:28 2018.\n")),
			"Error termination via Lnk1e in /software/Gaussian16/g16/l9999.exe at Wed Apr  4 10:19:28 2018."},
		{"gaussian invalid UTF-8", cat(gaussCut, []byte(" Error termination via Lnk1e in /opt/g16/l502\xff\xfe\x00\x1b[31m.exe\n")),
			"Error termination via Lnk1e in /opt/g16/l502\uFFFD  [31m.exe"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := parseBytes(t, tc.out, Unknown)
			checkSane(t, d)
			if d.Termination != Failed || d.TerminationLine != tc.line {
				t.Errorf("%v %q, want failed %q", d.Termination, d.TerminationLine, tc.line)
			}
			if d.FinalEnergy != nil {
				t.Errorf("final energy %+v", *d.FinalEnergy)
			}
		})
	}
}

func TestGaussianSteps(t *testing.T) {
	sp := readFixture(t, "gaussian16/dvb_sp.out")
	opt := readFixture(t, "gaussian16/dvb_gopt.out")
	// a two-step job (--Link1--): the second step decides
	d := parseBytes(t, cat(opt, sp), Unknown)
	if d.Termination != Normal || d.FinalEnergy == nil || d.Opt == nil || !d.Opt.Converged || d.Opt.Cycles != 5 {
		t.Errorf("opt then sp: %+v", d)
	}
	// elapsed times add up: 50.1 s + 2.1 s
	if d.WallTime == nil || d.WallTime.Milliseconds() != 52200 {
		t.Errorf("wall time %v", d.WallTime)
	}
	// the first step ended normally, the second was cut short
	d = parseBytes(t, cat(opt, sp[:len(sp)/2]), Unknown)
	if d.Termination != Unfinished || d.TerminationLine != "" || d.FinalEnergy != nil {
		t.Errorf("opt then half an sp: %v %q %+v", d.Termination, d.TerminationLine, d.FinalEnergy)
	}
	// two optimizations: the second, cut before its first step, has not
	// converged whatever the first did
	d = parseBytes(t, cat(opt, cutBefore(t, opt, " Step number   1 out of")), Unknown)
	if d.Termination != Unfinished || d.Opt == nil || d.Opt.Converged || d.Opt.Cycles != 0 {
		t.Errorf("opt then a cut opt: %v %+v", d.Termination, d.Opt)
	}
	// an optimization that stopped (maximum number of steps)
	cut := cutBefore(t, opt, " Optimization completed.")
	d = parseBytes(t, cat(cut, []byte(" Optimization stopped.\n    -- Number of steps exceeded,  NStep= 100\n")), Unknown)
	if d.Opt == nil || d.Opt.Converged || d.Opt.Cycles != 5 {
		t.Errorf("stopped optimization: %+v", d.Opt)
	}
}

// TestGaussianUnreadMethod: with a method whose final energy is not the
// last SCF Done or EUMP2 line, no final energy is named.
func TestGaussianUnreadMethod(t *testing.T) {
	mp2 := readFixture(t, "gaussian16/water_mp2.log")
	for route, unread := range map[string]bool{
		" #P MP2/STO-3G Density Pop=(Full,NaturalOrbitals)": false,
		" #P CCSD(T)/STO-3G Density Pop=(Full,NaturalOrbit": true,
		" #P UCCSD(T)/STO-3G Density Pop=(Full,NaturalOrbi": true,
		" #P B2PLYPD3/cc-pVDZ Density Pop=(Full,NaturalOrb": true,
		" #P MP2/cc-pVDZ Density Pop=(Full,NaturalOrbitals": false,
		" #P TD(NStates=5)/STO-3G Density Pop=(Full,Natura": true,
		" #P ONIOM(B3LYP/6-31G(d):UFF) Pop=(Full,NaturalOr": true,
	} {
		out := bytes.Replace(mp2, []byte(" #P MP2/STO-3G Density Pop=(Full,NaturalOrbitals)"), []byte(route), 1)
		d := parseBytes(t, out, Unknown)
		if d.Termination != Normal || d.LastEnergy == nil || (d.FinalEnergy == nil) != unread {
			t.Errorf("route %q: %v, final %+v, last %+v", route, d.Termination, d.FinalEnergy, d.LastEnergy)
		}
	}
}

func TestORCAImaginary(t *testing.T) {
	ir := readFixture(t, "orca6.0/dvb_ir.out")
	out := bytes.Replace(ir, []byte("     6:      43.87 cm**-1    2-Au"), []byte("     6:    -243.87 cm**-1 ***imaginary mode***"), 1)
	d := parseBytes(t, out, Unknown)
	if d.Freqs == nil || d.Freqs.Imaginary != 1 || d.Freqs.LowestText != "-243.87" || d.Freqs.Modes != 54 {
		t.Errorf("frequencies %+v", d.Freqs)
	}
	// an unreadable value spoils the block: nothing is said about it
	out = bytes.Replace(ir, []byte("     7:      77.06 cm**-1"), []byte("     7:    ******* cm**-1"), 1)
	if d := parseBytes(t, out, Unknown); d.Freqs != nil {
		t.Errorf("spoiled block reported: %+v", *d.Freqs)
	}
}

func TestNoGuess(t *testing.T) {
	sp := readFixture(t, "orca6.0/dvb_sp_dft.out")
	for _, bad := range []string{"NaN", "-Inf", "*****************", "-382.05510839256x", "0x1p-2", "-382"} {
		out := bytes.Replace(sp, []byte("ENERGY      -382.055108392562"), []byte("ENERGY      "+bad), 1)
		d := parseBytes(t, out, Unknown)
		if d.FinalEnergy != nil || d.LastEnergy != nil {
			t.Errorf("%q: final %+v, last %+v", bad, d.FinalEnergy, d.LastEnergy)
		}
		if d.Termination != Normal {
			t.Errorf("%q: %v", bad, d.Termination)
		}
	}
	xtb := readFixture(t, "xtb6.6.1/dvb_opt.out")
	for _, bad := range []string{"../../etc/passwd", "/tmp/x.xyz", "..", "a b.xyz", "x\x01.xyz"} {
		out := bytes.Replace(xtb, []byte("written to: xtbopt.xyz"), []byte("written to: "+bad), 1)
		if d := parseBytes(t, out, Unknown); d.GeometryFile != "" {
			t.Errorf("%q: geometry file %q", bad, d.GeometryFile)
		}
	}
}

func TestHostile(t *testing.T) {
	sp := readFixture(t, "orca6.0/dvb_sp_dft.out")
	want := parseBytes(t, sp, Unknown)
	mid := bytes.Index(sp, []byte("FINAL SINGLE POINT")) // a long line just before the energy
	long := bytes.Repeat([]byte("A"), 10<<20)
	rng := rand.New(rand.NewSource(1))
	garbage := make([]byte, 1<<20)
	rng.Read(garbage)

	for _, tc := range []struct {
		name    string
		out     []byte
		prog    Program
		check   func(t *testing.T, d Digest)
		skipped int
	}{
		{"empty", nil, Unknown, noSummary, 0},
		{"empty, named", nil, ORCA, noSummary, 0},
		{"binary", garbage, Unknown, noSummary, 0},
		{"binary, named", garbage, Gaussian, noSummary, 0},
		{"10 MB line alone", long, Unknown, noSummary, 1},
		{"10 MB line alone, named", long, XTB, noSummary, 1},
		{"10 MB line inside", cat(sp[:mid], long, []byte("\n"), sp[mid:]), Unknown, func(t *testing.T, d Digest) {
			d.SkippedLines = 0
			if !equalDigest(d, want) {
				t.Errorf("%+v, want %+v", d, want)
			}
		}, 1},
		{"10 MB line with the termination marker at its end", cat(sp[:mid], long, []byte("****ORCA TERMINATED NORMALLY****\n")), Unknown, func(t *testing.T, d Digest) {
			if d.Termination != Unfinished {
				t.Errorf("%v", d.Termination)
			}
		}, 1},
		{"garbage after the banner", cat(sp[:4000], garbage), Unknown, func(t *testing.T, d Digest) {
			if d.Program != ORCA || d.Termination != Unfinished {
				t.Errorf("%s %v", d.Program, d.Termination)
			}
		}, -1},
		{"invalid UTF-8 and NULs in every line", bytes.ReplaceAll(sp, []byte("\n"), []byte("\xff\x00\n")), Unknown, func(t *testing.T, d Digest) {
			if d.Termination != Normal || d.FinalEnergy != nil && d.FinalEnergy.Text != "-382.055108392562" {
				t.Errorf("%v %+v", d.Termination, d.FinalEnergy)
			}
		}, 0},
		{"CRLF", bytes.ReplaceAll(sp, []byte("\n"), []byte("\r\n")), Unknown, func(t *testing.T, d Digest) {
			if !equalDigest(d, want) {
				t.Errorf("%+v, want %+v", d, want)
			}
		}, 0},
		{"banner of another program", readFixture(t, "gaussian16/water_mp2.log"), ORCA, func(t *testing.T, d Digest) {
			if d.HasSummary() {
				t.Errorf("a Gaussian output read as ORCA: %+v", d)
			}
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := parseBytes(t, tc.out, tc.prog)
			checkSane(t, d)
			tc.check(t, d)
			if tc.skipped >= 0 && d.SkippedLines != tc.skipped {
				t.Errorf("%d lines skipped, want %d", d.SkippedLines, tc.skipped)
			}
		})
	}
}

// TestDetectLimit: the banner is looked for in the first DetectLimit
// bytes only (after a few warnings of the job's environment, say).
func TestDetectLimit(t *testing.T) {
	mp2 := readFixture(t, "gaussian16/water_mp2.log")
	warning := []byte("warning: the MPI library could not bind the process to a core\n")
	near := bytes.Repeat(warning, (DetectLimit-len(warning))/len(warning))
	if d := parseBytes(t, cat(near, mp2), Unknown); d.Program != Gaussian || d.Termination != Normal {
		t.Errorf("banner within the limit: %s %v", d.Program, d.Termination)
	}
	far := bytes.Repeat(warning, DetectLimit/len(warning)+1)
	noSummary(t, parseBytes(t, cat(far, mp2), Unknown))
	// a program named: no limit
	if d := parseBytes(t, cat(far, mp2), Gaussian); d.Termination != Normal {
		t.Errorf("named: %v", d.Termination)
	}
}

func noSummary(t *testing.T, d Digest) {
	t.Helper()
	if d.HasSummary() || d.Program != Unknown {
		t.Errorf("want no summary, got %+v", d)
	}
}

type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

func TestReadError(t *testing.T) {
	sp := readFixture(t, "orca6.0/dvb_sp_dft.out")
	boom := errors.New("connection reset")
	d, err := Parse(&failingReader{bytes.NewReader(sp[:len(sp)/2]), boom}, Unknown)
	if !errors.Is(err, boom) || d.Program != ORCA || d.Termination != Unfinished {
		t.Errorf("%v, %+v", err, d)
	}
}

// synthetic is an ORCA output of about size bytes made on the fly: the
// head of a real output, its SCF iterations repeated, and its real end.
// Nothing of it is ever held whole.
type synthetic struct {
	parts [][]byte
	body  []byte
	left  int64 // body bytes still to give
	cur   []byte
	stage int
}

func newSynthetic(t testing.TB, size int64, body []byte) *synthetic {
	sp := readFixture(t, "orca6.0/dvb_sp_dft.out")
	i := bytes.Index(sp, []byte("FINAL SINGLE POINT ENERGY"))
	head := sp[:bytes.Index(sp, []byte("----------------------------------------D-I-I-S"))]
	return &synthetic{parts: [][]byte{head, nil, sp[bytes.LastIndexByte(sp[:i], '\n')+1:]}, body: body, left: size}
}

func (s *synthetic) Read(p []byte) (int, error) {
	for len(s.cur) == 0 {
		switch {
		case s.stage == 1 && s.left > 0:
			s.cur = s.body
			s.left -= int64(len(s.body))
			continue
		case s.stage >= len(s.parts):
			return 0, io.EOF
		}
		s.cur = s.parts[s.stage]
		s.stage++
	}
	n := copy(p, s.cur)
	s.cur = s.cur[n:]
	return n, nil
}

// scfRows: lines of an SCF iteration table, none of them a marker.
func scfRows(t testing.TB) []byte {
	sp := readFixture(t, "orca6.0/dvb_sp_dft.out")
	i := bytes.Index(sp, []byte("    1    -382.0551222939103582"))
	j := bytes.Index(sp, []byte("                 **** Energy Check signals convergence ****"))
	return sp[i:j]
}

// TestMemoryBounded: 64 MB of output go through without the allocations
// growing with it (io.ReadAll or a growing line buffer would allocate the
// whole output at least once).
func TestMemoryBounded(t *testing.T) {
	const size = 64 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d, err := Parse(newSynthetic(t, size, scfRows(t)), Unknown)
	runtime.ReadMemStats(&after)
	if err != nil || d.Termination != Normal || d.FinalEnergy == nil || d.FinalEnergy.Text != "-382.055108392562" {
		t.Fatalf("%v %+v", err, d)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2<<20 {
		t.Errorf("%d bytes allocated for a %d-byte output", alloc, size)
	}
}

func TestSyntheticIsBig(t *testing.T) {
	n, err := io.Copy(io.Discard, newSynthetic(t, 8<<20, scfRows(t)))
	if err != nil || n < 8<<20 || n > 9<<20 {
		t.Fatalf("%d bytes, %v", n, err)
	}
	if !strings.Contains(string(scfRows(t)), "-382.0551") {
		t.Fatal("no SCF rows")
	}
}
