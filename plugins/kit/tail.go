package kit

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Caps of a Tail: hpcbot never asks for more, and a plugin that answers with
// more is cut to them again on hpcbot's side.
const (
	MaxTailLines = 100
	MaxTailBytes = 16 << 10
)

// The streams a Tail reads (TailResult.Stream).
const (
	StreamOutput = "output" // the job's standard output
	StreamError  = "error"  // the job's standard error
)

// TailRequest asks for the end of a job's standard output or error.
type TailRequest struct {
	CalcID  uint64
	JobID   string
	Folder  string // the calculation folder under upload_path, as in SubmitRequest
	JobName string // as in SubmitRequest: the output files are named after it
	// MaxLines and MaxBytes bound the answer (at most MaxTailLines and
	// MaxTailBytes; 0 or more than the cap means the cap).
	MaxLines int
	MaxBytes int
	// PreferError: the job failed, so its error stream is what tells why. The
	// plugin shows it when it is not empty and the output otherwise; without
	// PreferError it shows the output when it is not empty and the error
	// stream otherwise (a program that reports its progress on stderr).
	PreferError bool
}

// TailResult is the end of one stream of a job.
type TailResult struct {
	Text      string // TailText's result: whole lines, valid UTF-8, no control characters but \n and \t
	Stream    string // StreamOutput or StreamError
	Truncated bool   // the file holds more than Text
}

// Tailer is implemented by a Scheduler that can show the end of a job's
// output. One that does not answers Unimplemented, and hpcbot tells the user
// that the cluster does not show logs.
type Tailer interface {
	Tail(ctx context.Context, req TailRequest) (TailResult, error)
}

// TailCaps returns req's caps clamped to (0, MaxTailLines] and (0, MaxTailBytes].
func TailCaps(maxLines, maxBytes int) (int, int) {
	if maxLines <= 0 || maxLines > MaxTailLines {
		maxLines = MaxTailLines
	}
	if maxBytes <= 0 || maxBytes > MaxTailBytes {
		maxBytes = MaxTailBytes
	}
	return maxLines, maxBytes
}

// ansiSequence matches the terminal escape sequences programs colour their
// output with (CSI "ESC [ ... m", OSC "ESC ] ... BEL"): they are removed
// whole rather than leaving "[31m" behind once ESC itself is dropped.
var ansiSequence = regexp.MustCompile("\x1b\\[[0-9:;<=>?]*[ -/]*[@-~]|\x1b\\][^\x07\x1b]*(?:\x07|\x1b\\\\)?|\x1b[@-Z\\\\-_]")

// TailText turns the last bytes of a file into what a chat may show: at most
// maxLines lines and maxBytes bytes of valid UTF-8 (invalid bytes become
// U+FFFD), with terminal escape sequences and every control character other
// than newline and tab removed (also bidirectional overrides, which would
// reorder the text around them). whole says data is the entire file; when it
// is not, the first, partial line is dropped (unless it is the only one).
// truncated reports that the file holds more than text.
func TailText(data []byte, whole bool, maxLines, maxBytes int) (text string, truncated bool) {
	maxLines, maxBytes = TailCaps(maxLines, maxBytes)
	truncated = !whole
	if !whole {
		if i := bytes.IndexByte(data, '\n'); i >= 0 && i < len(data)-1 {
			data = data[i+1:]
		} else {
			// One long line: start at a character boundary.
			for n := 0; n < utf8.UTFMax && len(data) > 0 && !utf8.RuneStart(data[0]); n++ {
				data = data[1:]
			}
		}
	}
	s := ansiSequence.ReplaceAllString(strings.ToValidUTF8(string(data), "\uFFFD"), "")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case unicode.IsControl(r), r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069':
			return -1
		}
		return r
	}, s)
	s = strings.TrimSuffix(s, "\n")
	lines := strings.Split(s, "\n")
	if len(lines) > maxLines {
		lines, truncated = lines[len(lines)-maxLines:], true
	}
	size := len(lines) - 1
	for _, l := range lines {
		size += len(l)
	}
	for size > maxBytes && len(lines) > 1 {
		size -= len(lines[0]) + 1
		lines, truncated = lines[1:], true
	}
	s = strings.Join(lines, "\n")
	if len(s) > maxBytes {
		cut := len(s) - maxBytes
		for cut < len(s) && !utf8.RuneStart(s[cut]) {
			cut++
		}
		s, truncated = s[cut:], true
	}
	return s, truncated
}
