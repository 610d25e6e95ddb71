package qc

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Program names a quantum-chemistry program whose output this package reads.
type Program string

// The programs with a parser. Unknown is the zero value: no parser applies.
const (
	Unknown  Program = ""
	ORCA     Program = "orca"
	Gaussian Program = "gaussian"
	XTB      Program = "xtb"
)

// Termination is how a run ended, as far as its output says.
type Termination int

const (
	// NoSummary: the output is not recognisably the program's (no banner
	// and no marker); nothing in the Digest may be relied on.
	NoSummary Termination = iota
	// Unfinished: the program's output, but it has no termination line: the
	// run was killed, is still running, or the file was cut short.
	Unfinished
	// Normal: the program printed its normal-termination line (and no error
	// termination).
	Normal
	// Failed: the program printed its own error line (Digest.TerminationLine).
	Failed
)

// String gives a stable token for logs and tests (never shown to users as is).
func (t Termination) String() string {
	switch t {
	case Unfinished:
		return "unfinished"
	case Normal:
		return "normal"
	case Failed:
		return "failed"
	}
	return "no_summary"
}

// Energy is an energy in hartree (Eh) as the program printed it.
type Energy struct {
	Hartree float64 // the value in Eh
	Text    string  // the number exactly as printed, e.g. "-382.308266602" or "-0.75002282127454D+02"
	// Method names the level that produced the number when the output makes
	// it clear ("SCF", "RB3LYP", "MP2", "xtb total"); empty otherwise.
	Method string
}

// Optimization is the state of a geometry optimization.
type Optimization struct {
	// Converged is true only when the program said the optimization
	// converged; a run that stopped, failed or was cut short says false.
	Converged bool
	// Cycles is the number of optimization cycles (steps) the output shows
	// (0 when an optimization was requested but no cycle was printed yet).
	Cycles int
}

// Frequencies summarises the last block of harmonic vibrational frequencies.
type Frequencies struct {
	Modes      int     // vibrational modes listed (zero-frequency translations and rotations left out)
	Imaginary  int     // modes printed with a negative (imaginary) frequency
	Lowest     float64 // the lowest listed frequency in cm⁻¹ (negative when imaginary)
	LowestText string  // the lowest frequency as printed
}

// Digest is a short structured summary of one program output. Every field
// is what the output printed; a field the parser was not sure of is left at
// its zero value (nil pointer, empty string).
type Digest struct {
	Program Program
	Version string // as printed: "6.0.0", "6.6.1", "ES64L-G16RevA.03"

	Termination Termination
	// TerminationLine is the program's own line: its normal-termination line
	// or, for Failed, its error line, e.g. "ORCA finished by error
	// termination in SCF" or "Error termination via Lnk1e in .../l502.exe at
	// ...". Sanitised: valid UTF-8, no control characters, at most
	// MaxTextLen bytes.
	TerminationLine string

	// FinalEnergy is the final energy; set only when the run terminated
	// normally and the output names its final energy in a way this package
	// understands.
	FinalEnergy *Energy
	// LastEnergy is the last energy the output printed, whatever happened
	// after it (for a run that did not finish: the last energy seen, never a
	// final one).
	LastEnergy *Energy

	Opt   *Optimization // nil unless the output shows a geometry optimization
	Freqs *Frequencies  // nil unless the output lists vibrational frequencies

	// WallTime is the run's wall-clock time as the program printed it
	// (Gaussian: the sum of its steps' "Elapsed time"); nil when not printed.
	WallTime *time.Duration

	// GeometryFile is the file the program said it wrote the (last or
	// optimized) geometry to, e.g. "xtbopt.xyz"; a plain file name (no
	// directory), empty when the output names none.
	GeometryFile string

	// SkippedLines counts lines longer than MaxLineLen, skipped unread.
	SkippedLines int
}

// HasSummary reports whether the output was recognised at all.
func (d *Digest) HasSummary() bool { return d.Termination != NoSummary }

const (
	// MaxLineLen is the longest line read; longer lines are skipped whole
	// (never buffered), and counted in Digest.SkippedLines.
	MaxLineLen = 16 << 10
	// MaxTextLen caps every text field of a Digest, in bytes.
	MaxTextLen = 256
	// DetectLimit is how far into an output, in bytes, Parse looks for a
	// banner when no program is given; beyond it the output has no summary.
	DetectLimit = 1 << 20
)

// ProgramFromName maps a program or command name, as an administrator
// would write it ("orca", "g16", "Gaussian", "xtb"), to a Program.
func ProgramFromName(name string) (Program, bool) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "orca":
		return ORCA, true
	case "gaussian", "g16", "g09", "g03":
		return Gaussian, true
	case "xtb":
		return XTB, true
	}
	return Unknown, false
}

// Detect tells which program printed a banner line, or Unknown.
func Detect(line []byte) Program {
	switch {
	case bytes.Contains(line, orcaBanner):
		return ORCA
	case bytes.Contains(line, gaussianBanner), bytes.Contains(line, gaussianBanner2):
		return Gaussian
	case bytes.Contains(line, xtbBanner), bytes.Contains(line, xtbVersion):
		return XTB
	}
	return Unknown
}

// parser is one program's line-by-line reader. line is given each line
// without its end of line; the slice is only valid during the call.
type parser interface {
	line(l []byte)
	finish() Digest
}

func newParser(p Program) parser {
	switch p {
	case ORCA:
		return newORCA()
	case Gaussian:
		return newGaussian()
	case XTB:
		return newXTB()
	}
	return nil
}

// Parse reads a program's output to its end and returns its Digest. prog
// chooses the parser; with Unknown the parser is chosen by the first banner
// line within DetectLimit bytes (an output without one has no summary).
// With a program given, an output in which that program's parser
// recognises nothing (no banner, no marker) also has no summary.
//
// Parse streams: it holds one line (at most MaxLineLen bytes) and a few
// numbers at a time, whatever the size of the output. The error is only
// a read error other than io.EOF; the Digest then covers what was read.
func Parse(r io.Reader, prog Program) (Digest, error) {
	lr := newLineReader(r)
	p := newParser(prog)
	for {
		l, err := lr.next()
		if err != nil {
			var d Digest
			if p != nil {
				d = p.finish()
			}
			d.SkippedLines = lr.skipped
			if errors.Is(err, io.EOF) {
				return d, nil
			}
			return d, err
		}
		if p == nil {
			if lr.read > DetectLimit {
				return Digest{SkippedLines: lr.skipped}, nil
			}
			if p = newParser(Detect(l)); p == nil {
				continue
			}
		}
		p.line(l)
	}
}

// lineReader yields lines of at most MaxLineLen bytes from a bufio.Reader,
// skipping longer ones without buffering them.
type lineReader struct {
	br      *bufio.Reader
	read    int64
	skipped int
	eof     error
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, MaxLineLen)}
}

func (lr *lineReader) next() ([]byte, error) {
	if lr.eof != nil {
		return nil, lr.eof
	}
	for {
		l, err := lr.br.ReadSlice('\n')
		lr.read += int64(len(l))
		if errors.Is(err, bufio.ErrBufferFull) {
			lr.skipped++
			for errors.Is(err, bufio.ErrBufferFull) {
				l, err = lr.br.ReadSlice('\n')
				lr.read += int64(len(l))
			}
			if err != nil {
				lr.eof = err
				return nil, err
			}
			continue
		}
		if err != nil {
			lr.eof = err
			if len(l) == 0 {
				return nil, err
			}
		}
		l = bytes.TrimSuffix(l, []byte("\n"))
		l = bytes.TrimSuffix(l, []byte("\r"))
		return l, nil
	}
}

// clean makes printed text safe to keep: valid UTF-8, no control
// characters, surrounding blanks trimmed, at most MaxTextLen bytes.
func clean(b []byte) string {
	s := strings.ToValidUTF8(string(bytes.TrimSpace(b)), "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if len(s) > MaxTextLen {
		cut := MaxTextLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return strings.TrimSpace(s)
}

// number parses a printed decimal number: an optional minus, digits, a
// point and digits, with an optional exponent "D+02" or "E-05" (Fortran
// writes D). Anything else (NaN, Inf, "******", hex) is refused, so that a
// garbled field never becomes a number.
func number(s string) (float64, bool) {
	if len(s) == 0 || len(s) > 40 {
		return 0, false
	}
	i := 0
	if s[0] == '-' || s[0] == '+' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if digits() == 0 || i >= len(s) || s[i] != '.' {
		return 0, false
	}
	i++
	if digits() == 0 {
		return 0, false
	}
	mant := s[:i]
	exp := ""
	if i < len(s) {
		if s[i] != 'D' && s[i] != 'E' && s[i] != 'd' && s[i] != 'e' {
			return 0, false
		}
		i++
		start := i
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			i++
		}
		if digits() == 0 || i != len(s) {
			return 0, false
		}
		exp = "e" + s[start:]
	}
	v, err := strconv.ParseFloat(mant+exp, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, false
	}
	return v, true
}

// integer parses a printed non-negative integer of at most 9 digits.
func integer(s string) (int, bool) {
	if len(s) == 0 || len(s) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// energy makes an Energy of a printed number, or nil when it is not one.
func energy(text, method string) *Energy {
	v, ok := number(text)
	if !ok {
		return nil
	}
	return &Energy{Hartree: v, Text: text, Method: method}
}

// fileName keeps a printed file name only when it is a plain name in the
// working directory (no directory part, no "..", no control characters).
func fileName(b []byte) string {
	s := clean(b)
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\\ \uFFFD") || path.Base(s) != s {
		return ""
	}
	return s
}

// freqBlock collects one block of frequencies; any unreadable value
// spoils the block, which is then not reported.
type freqBlock struct {
	f       Frequencies
	spoiled bool
}

func (fb *freqBlock) add(tok string) {
	v, ok := number(tok)
	if !ok {
		fb.spoiled = true
		return
	}
	if v == 0 { // translations and rotations, printed as 0.00 or -0.00
		return
	}
	if fb.f.Modes == 0 || v < fb.f.Lowest {
		fb.f.Lowest, fb.f.LowestText = v, tok
	}
	fb.f.Modes++
	if v < 0 {
		fb.f.Imaginary++
	}
}

func (fb *freqBlock) result() *Frequencies {
	if fb == nil || fb.spoiled || fb.f.Modes == 0 {
		return nil
	}
	f := fb.f
	return &f
}

// trimLeft drops leading blanks without allocating.
func trimLeft(l []byte) []byte { return bytes.TrimLeft(l, " \t") }

// dhms adds "<n> <unit>" pairs printed by ORCA and Gaussian ("0 days 0
// hours 0 minutes 52 seconds 153 msec", "0 days  0 hours  1 minutes 10.0
// seconds.") and xtb ("0 d,  0 h,  0 min,  1.033 sec") into a duration.
func dhms(fields []string) (time.Duration, bool) {
	var total float64
	n := 0
	for i := 0; i+1 < len(fields); i += 2 {
		v, ok := number(fields[i])
		if !ok {
			iv, ok2 := integer(fields[i])
			if !ok2 {
				return 0, false
			}
			v = float64(iv)
		}
		var unit float64
		switch strings.TrimRight(fields[i+1], ",.") {
		case "days", "d":
			unit = 86400
		case "hours", "h":
			unit = 3600
		case "minutes", "min":
			unit = 60
		case "seconds", "sec":
			unit = 1
		case "msec":
			unit = 0.001
		default:
			return 0, false
		}
		total += v * unit
		n++
	}
	if n == 0 || total > 1e9 {
		return 0, false
	}
	return time.Duration(math.Round(total*1e3)) * time.Millisecond, true
}
