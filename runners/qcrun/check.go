package qcrun

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path"
	"strconv"
	"strings"

	"hpcbot/plugins"
)

// MaxCheckBytes is how much of an input Check reads; MaxCheckLine the longest
// line it looks at (a longer one is skipped, not buffered).
const (
	MaxCheckBytes = 64 << 20
	MaxCheckLine  = 64 << 10
)

// Check reads the input at req.Path and refuses what cannot run, or accepts
// it with the resources it asks for (see the package comment).
func (r *Runner) Check(ctx context.Context, req plugins.CheckInputRequest) (plugins.InputResources, error) {
	plan, rule, err := r.PlanRule(ctx, plugins.PlanRequest{FileName: req.FileName, Caption: req.Caption})
	if err != nil {
		return plugins.InputResources{}, err
	}
	lim, err := ruleLimits(rule)
	if err != nil {
		return plugins.InputResources{}, plugins.Errorf(plugins.KindPermanent, "check %s: max_memory: %w", req.FileName, err)
	}
	f, err := os.Open(req.Path)
	if err != nil {
		return plugins.InputResources{}, plugins.Errorf(plugins.KindPermanent, "check %s: %w", req.FileName, err)
	}
	defer f.Close()
	var c checker
	switch {
	case r.name == ORCA:
		c = &orcaInput{}
	case r.name == Gaussian:
		c = &gaussianInput{}
	case r.name == XTB && strings.EqualFold(path.Ext(req.FileName), ".xyz"):
		c = &xyzInput{}
	default:
		c = nopInput{}
	}
	if err := scan(ctx, f, c); err != nil {
		return plugins.InputResources{}, err
	}
	res, ref := c.result(lim)
	if ref != nil {
		return plugins.InputResources{}, ref
	}
	if r.name == XTB {
		n, ok := parallel(plan.Argv)
		if ok && lim.cores > 0 && n > lim.cores {
			return plugins.InputResources{}, &plugins.Refusal{Code: plugins.RefuseCaptionCores,
				Detail: strconv.Itoa(n), Limit: strconv.Itoa(lim.cores)}
		}
		if ok {
			res.CPUsPerTask = n
		}
	}
	return res, nil
}

// checker reads an input line by line (line numbers from 1, without the end
// of line) and then judges it.
type checker interface {
	line(n int, l []byte)
	result(lim limits) (plugins.InputResources, *plugins.Refusal)
}

// scan feeds the input to c after the checks every input gets: not empty, no
// byte order mark, no zero byte. Lines longer than MaxCheckLine are passed
// cut to MaxCheckLine; reading stops after MaxCheckBytes.
func scan(ctx context.Context, f io.Reader, c checker) error {
	br := bufio.NewReaderSize(io.LimitReader(f, MaxCheckBytes), 64<<10)
	head, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(head, []byte{0xEF, 0xBB, 0xBF}):
		return &plugins.Refusal{Code: plugins.RefuseInputEncoding, Detail: "UTF-8 with BOM", Line: 1}
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE}), bytes.HasPrefix(head, []byte{0xFE, 0xFF}):
		return &plugins.Refusal{Code: plugins.RefuseInputEncoding, Detail: "UTF-16", Line: 1}
	case len(head) >= 2 && (head[0] == 0) != (head[1] == 0):
		// UTF-16 without a mark: every other byte of ASCII text is zero.
		return &plugins.Refusal{Code: plugins.RefuseInputEncoding, Detail: "UTF-16", Line: 1}
	}
	blank := true
	var buf []byte
	for n := 1; ; n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return plugins.Errorf(plugins.KindTransient, "check: %w", ctx.Err())
		}
		buf = buf[:0]
		var err error
		for {
			var frag []byte
			frag, err = br.ReadSlice('\n')
			if len(buf) < MaxCheckLine {
				buf = append(buf, frag[:min(len(frag), MaxCheckLine-len(buf))]...)
			}
			if !errors.Is(err, bufio.ErrBufferFull) {
				break
			}
		}
		if len(buf) == 0 && err != nil {
			if err != io.EOF {
				return plugins.Errorf(plugins.KindPermanent, "check: read the input: %w", err)
			}
			break
		}
		l := bytes.TrimRight(buf, "\r\n")
		if bytes.IndexByte(l, 0) >= 0 {
			return &plugins.Refusal{Code: plugins.RefuseInputBinary, Line: n}
		}
		if len(bytes.TrimSpace(l)) > 0 {
			blank = false
		}
		c.line(n, l)
		if err != nil {
			if err != io.EOF {
				return plugins.Errorf(plugins.KindPermanent, "check: read the input: %w", err)
			}
			break
		}
	}
	if blank {
		return &plugins.Refusal{Code: plugins.RefuseInputEmpty}
	}
	return nil
}

type nopInput struct{}

func (nopInput) line(int, []byte) {}
func (nopInput) result(limits) (plugins.InputResources, *plugins.Refusal) {
	return plugins.InputResources{}, nil
}

// setting is a number an input states and the line it stated it on.
type setting struct {
	value int64
	line  int
}

// keep records v from line n when it is larger than what s holds (the
// largest request counts: a multi-step job runs each step in turn).
func (s *setting) keep(v int64, n int) {
	if s.line == 0 || v > s.value {
		s.value, s.line = v, n
	}
}

func tooManyCores(s setting, lim limits) *plugins.Refusal {
	if s.line == 0 || lim.cores <= 0 || s.value <= int64(lim.cores) {
		return nil
	}
	return &plugins.Refusal{Code: plugins.RefuseTooManyCores, Line: s.line,
		Detail: strconv.FormatInt(s.value, 10), Limit: strconv.Itoa(lim.cores)}
}

func tooMuchMemory(mb int64, line int, lim limits) *plugins.Refusal {
	if line == 0 || lim.memoryMB <= 0 || mb <= lim.memoryMB {
		return nil
	}
	return &plugins.Refusal{Code: plugins.RefuseTooMuchMemory, Line: line,
		Detail: strconv.FormatInt(mb, 10), Limit: strconv.FormatInt(lim.memoryMB, 10)}
}

// orcaInput reads ORCA's %pal, ! PALn and %maxcore
// (https://www.faccts.de/docs/orca/6.0/manual/contents/essentialelements/parallel.html).
type orcaInput struct {
	inPal   bool // inside a %pal block that has not ended
	nprocs  setting
	maxcore setting
}

func (o *orcaInput) line(n int, l []byte) {
	text := string(l)
	if i := strings.IndexByte(text, '#'); i >= 0 {
		text = text[:i] // a comment
	}
	words := strings.Fields(strings.NewReplacer("=", " ", ",", " ").Replace(strings.ToLower(text)))
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch {
		case strings.HasPrefix(w, "!") || (i > 0 && strings.HasPrefix(words[0], "!")):
			if v, ok := strings.CutPrefix(strings.TrimPrefix(w, "!"), "pal"); ok {
				if p, err := strconv.ParseInt(v, 10, 32); err == nil && p > 0 {
					o.nprocs.keep(p, n)
				}
			}
		case w == "%pal":
			o.inPal = true
		case w == "%maxcore" && i+1 < len(words):
			if v, err := strconv.ParseInt(words[i+1], 10, 64); err == nil && v > 0 {
				o.maxcore.keep(v, n)
			}
			i++
		case strings.HasPrefix(w, "%"):
			o.inPal = false // another block
		case o.inPal && w == "nprocs" && i+1 < len(words):
			if v, err := strconv.ParseInt(words[i+1], 10, 32); err == nil && v > 0 {
				o.nprocs.keep(v, n)
			}
			i++
		case o.inPal && w == "end":
			o.inPal = false
		}
	}
}

func (o *orcaInput) result(lim limits) (plugins.InputResources, *plugins.Refusal) {
	if ref := tooManyCores(o.nprocs, lim); ref != nil {
		return plugins.InputResources{}, ref
	}
	tasks := max(o.nprocs.value, 1)
	var mem int64
	if o.maxcore.line > 0 {
		mem = o.maxcore.value * tasks
		if ref := tooMuchMemory(mem, o.maxcore.line, lim); ref != nil {
			return plugins.InputResources{}, ref
		}
	}
	return plugins.InputResources{Tasks: int(o.nprocs.value), MemoryMB: mem}, nil
}

// gaussianInput reads Gaussian's Link 0 commands %nprocshared (%nprocs,
// %nproc), %cpu and %mem (https://gaussian.com/link0/).
type gaussianInput struct {
	procs setting
	mem   setting
}

func (g *gaussianInput) line(n int, l []byte) {
	text := strings.TrimSpace(string(l))
	if !strings.HasPrefix(text, "%") {
		return
	}
	key, val, ok := strings.Cut(text[1:], "=")
	if !ok {
		return
	}
	val = strings.TrimSpace(val)
	if i := strings.IndexAny(val, " \t!"); i >= 0 {
		val = val[:i]
	}
	switch strings.ToLower(strings.TrimSpace(key)) {
	case "nprocshared", "nprocs", "nproc":
		if v, err := strconv.ParseInt(val, 10, 32); err == nil && v > 0 {
			g.procs.keep(v, n)
		}
	case "cpu":
		if v, ok := cpuCount(val); ok {
			g.procs.keep(v, n)
		}
	case "mem":
		if v, ok := gaussianMemoryMB(val); ok {
			g.mem.keep(v, n)
		}
	}
}

// cpuCount counts the processors of a %cpu list: "0-7", "0,2,4", "0-7,16-23".
func cpuCount(list string) (int64, bool) {
	var n int64
	for part := range strings.SplitSeq(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseInt(lo, 10, 32)
		if err != nil || a < 0 {
			return 0, false
		}
		b := a
		if isRange {
			if b, err = strconv.ParseInt(hi, 10, 32); err != nil || b < a {
				return 0, false
			}
		}
		n += b - a + 1
	}
	return n, n > 0
}

func (g *gaussianInput) result(lim limits) (plugins.InputResources, *plugins.Refusal) {
	if ref := tooManyCores(g.procs, lim); ref != nil {
		return plugins.InputResources{}, ref
	}
	if ref := tooMuchMemory(g.mem.value, g.mem.line, lim); ref != nil {
		return plugins.InputResources{}, ref
	}
	return plugins.InputResources{CPUsPerTask: int(g.procs.value), MemoryMB: g.mem.value}, nil
}

// xyzInput checks an .xyz file: the atom count, a comment line, then that
// many lines "element x y z". A file of several frames (a trajectory) is
// checked up to the second frame's count line.
type xyzInput struct {
	declared  int64
	headerBad bool
	atoms     int64 // atom lines seen after the comment line
	lastLine  int   // the line of the last atom line
	badAtom   int   // the first line that is not an atom line, 0: none
	blankSeen bool  // a blank line after atoms
	extra     int   // a non-blank line after the atoms that is not a next frame
	done      bool  // a next frame began: stop
}

func (x *xyzInput) line(n int, l []byte) {
	if x.done || x.headerBad {
		return
	}
	fields := strings.Fields(string(l))
	switch {
	case n == 1:
		v, err := strconv.ParseInt(strings.TrimSpace(string(l)), 10, 64)
		if err != nil || v <= 0 {
			x.headerBad = true
		}
		x.declared = v
		return
	case n == 2:
		return // the comment line
	}
	if len(fields) == 0 {
		if x.atoms > 0 {
			x.blankSeen = true
		}
		return
	}
	if x.atoms >= x.declared || x.blankSeen {
		// After the declared atoms: a next frame's count, or too many atoms.
		if len(fields) == 1 {
			if _, err := strconv.ParseInt(fields[0], 10, 64); err == nil && x.atoms == x.declared {
				x.done = true
				return
			}
		}
		if x.extra == 0 {
			x.extra = n
		}
		if atomLine(fields) {
			x.atoms++
		}
		return
	}
	if !atomLine(fields) {
		if x.badAtom == 0 {
			x.badAtom = n
		}
		return
	}
	x.atoms++
	x.lastLine = n
}

// atomLine reports whether fields are an element (a symbol or atomic number)
// followed by three numbers, with anything after them.
func atomLine(f []string) bool {
	if len(f) < 4 {
		return false
	}
	for _, w := range f[1:4] {
		if _, err := strconv.ParseFloat(w, 64); err != nil {
			return false
		}
	}
	return true
}

func (x *xyzInput) result(limits) (plugins.InputResources, *plugins.Refusal) {
	switch {
	case x.headerBad:
		return plugins.InputResources{}, &plugins.Refusal{Code: plugins.RefuseXYZHeader, Line: 1}
	case x.badAtom != 0:
		return plugins.InputResources{}, &plugins.Refusal{Code: plugins.RefuseXYZAtom, Line: x.badAtom}
	case x.atoms != x.declared:
		return plugins.InputResources{}, &plugins.Refusal{Code: plugins.RefuseXYZCount, Line: 1,
			Detail: strconv.FormatInt(x.declared, 10), Limit: strconv.FormatInt(x.atoms, 10)}
	case x.extra != 0:
		return plugins.InputResources{}, &plugins.Refusal{Code: plugins.RefuseXYZAtom, Line: x.extra}
	}
	return plugins.InputResources{}, nil
}

// parallel finds xtb's thread count in an argv: -P N, --parallel N, -PN.
func parallel(argv []string) (int, bool) {
	for i, a := range argv {
		var v string
		switch {
		case (a == "-P" || a == "--parallel") && i+1 < len(argv):
			v = argv[i+1]
		case strings.HasPrefix(a, "-P") && len(a) > 2:
			v = a[2:]
		case strings.HasPrefix(a, "--parallel="):
			v = strings.TrimPrefix(a, "--parallel=")
		default:
			continue
		}
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			return n, true
		}
	}
	return 0, false
}
