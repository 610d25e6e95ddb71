package shellquote

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrSyntax is wrapped by every error Split returns.
var ErrSyntax = errors.New("caption syntax")

// safe reports whether b may appear in a bare word.
func safe(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("_@%+=:,./-", b) >= 0
}

func allSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if !safe(s[i]) {
			return false
		}
	}
	return true
}

// Quote returns s as one shell word: bare when s is non-empty and made only of
// [A-Za-z0-9_@%+=:,./-], else in single quotes (see the package comment).
// The result is safe in any argument position; for the first word of a command
// use Join, which also guards against reserved words and assignments.
// A NUL byte cannot be passed in an argv; Quote leaves it to the caller to refuse one.
func Quote(s string) string {
	if s != "" && allSafe(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			b.WriteString(`'\''`)
			continue
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('\'')
	return b.String()
}

// reserved are the words sh, bash and dash recognise in command position.
var reserved = map[string]bool{
	"case": true, "coproc": true, "do": true, "done": true, "elif": true, "else": true,
	"esac": true, "fi": true, "for": true, "function": true, "if": true, "in": true,
	"select": true, "then": true, "time": true, "until": true, "while": true,
}

// quoteCommand quotes the first word of a command: like Quote, but a word the
// shell would read as a reserved word or an assignment (NAME=value), or one
// starting with "-" (a command line passed as `sh -c <line>` would start
// with an option), is quoted even though its characters are safe.
func quoteCommand(s string) string {
	q := Quote(s)
	if q != s {
		return q
	}
	if reserved[s] || strings.Contains(s, "=") || strings.HasPrefix(s, "-") {
		return "'" + s + "'"
	}
	return s
}

// Join quotes every word of argv and joins them with spaces, so that a POSIX
// shell (sh, bash, dash) runs argv[0] with exactly argv[1:] as its arguments.
// An empty argv gives the empty string.
//
// One name cannot be run by bash however it is quoted: a first word starting
// with "%" (bash takes it as a job spec). Callers validate program names.
func Join(argv []string) string {
	var b strings.Builder
	for i, w := range argv {
		if i == 0 {
			b.WriteString(quoteCommand(w))
			continue
		}
		b.WriteByte(' ')
		b.WriteString(Quote(w))
	}
	return b.String()
}

func isSeparator(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r'
}

// Forbidden reports whether r may not appear in a word: control characters
// (C0, DEL, C1) and invisible format characters (Unicode category Cf:
// zero-width, bidi controls), which would make a text read differently from
// what it is. Other user-supplied text that is shown to people (names,
// organizations) is checked with it too.
func Forbidden(r rune) bool {
	return unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r)
}

// Split splits s into words the way a POSIX shell splits a simple command,
// without any expansion (see the package comment for the exact rules).
// A string of only separators gives no words and no error.
func Split(s string) ([]string, error) {
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("%w: not valid UTF-8", ErrSyntax)
	}
	var (
		words  []string
		cur    strings.Builder
		inWord bool // cur holds a word, possibly empty ('' or "")
	)
	flush := func() {
		if inWord {
			words = append(words, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	bad := func(r rune, pos int) error {
		return fmt.Errorf("%w: control character %U at byte %d", ErrSyntax, r, pos)
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case isSeparator(r):
			flush()
			i += size
		case Forbidden(r):
			return nil, bad(r, i)
		case r == '\\':
			if i+1 >= len(s) {
				return nil, fmt.Errorf("%w: backslash at the end", ErrSyntax)
			}
			n, nsize := utf8.DecodeRuneInString(s[i+1:])
			switch {
			case n == '\n':
				// line continuation: removed, the word goes on
			case n == '\r' && strings.HasPrefix(s[i+2:], "\n"):
				nsize = 2 // a CRLF continuation
			case Forbidden(n):
				return nil, bad(n, i+1)
			default:
				cur.WriteRune(n)
				inWord = true
			}
			i += 1 + nsize
		case r == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("%w: unbalanced single quote at byte %d", ErrSyntax, i)
			}
			body := s[i+1 : i+1+end]
			for j, q := range body {
				if Forbidden(q) {
					return nil, bad(q, i+1+j)
				}
			}
			cur.WriteString(body)
			inWord = true
			i += end + 2
		case r == '"':
			start := i
			i++
			closed := false
			for i < len(s) {
				q, qsize := utf8.DecodeRuneInString(s[i:])
				if q == '"' {
					closed = true
					i++
					break
				}
				if Forbidden(q) {
					return nil, bad(q, i)
				}
				if q == '\\' && i+1 < len(s) && strings.IndexByte("\\\"$`", s[i+1]) >= 0 {
					cur.WriteByte(s[i+1])
					i += 2
					continue
				}
				cur.WriteRune(q)
				i += qsize
			}
			if !closed {
				return nil, fmt.Errorf("%w: unbalanced double quote at byte %d", ErrSyntax, start)
			}
			inWord = true
		default:
			cur.WriteRune(r)
			inWord = true
			i += size
		}
	}
	flush()
	return words, nil
}
