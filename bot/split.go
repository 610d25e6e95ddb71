package bot

import (
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// tgLen is a text's length as Telegram counts it: UTF-16 code units.
func tgLen(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// splitMessage cuts text into pieces of at most limit characters (UTF-16,
// markup included, so that the count after entity parsing is lower still):
// at line breaks where it can, else at spaces, else between characters,
// never inside an HTML tag or entity. With html, a tag open at a cut is
// closed at the end of the piece and opened again at the start of the next.
// Blank pieces are dropped; nil for a blank text.
func splitMessage(text string, limit int, html bool) []string {
	if strings.TrimSpace(text) == "" {
		return nil
	}
	if tgLen(text) <= limit {
		return []string{text}
	}
	var out []string
	var open []string // opening tags in force, outermost first
	var cur strings.Builder
	curLen := 0 // tgLen(cur.String())
	content := false
	write := func(s string) {
		cur.WriteString(s)
		curLen += tgLen(s)
	}
	start := func() {
		cur.Reset()
		curLen = 0
		for _, t := range open {
			write(t)
		}
		content = false
	}
	flush := func() {
		if content {
			out = append(out, strings.TrimRight(cur.String(), " \n")+closeTags(open))
		}
		start()
	}
	start()
	for _, line := range strings.SplitAfter(text, "\n") {
		for line != "" {
			after := applyTags(open, line, html)
			if curLen+tgLen(line)+tgLen(closeTags(after)) <= limit {
				write(line)
				open = after
				content = content || strings.TrimSpace(line) != ""
				line = ""
				continue
			}
			if content {
				flush()
				continue
			}
			// The line alone is too long: take the longest prefix that
			// fits (after dropping the blank lines before it).
			start()
			n := fitPrefix(curLen, open, line, limit, html)
			write(line[:n])
			open = applyTags(open, line[:n], html)
			content = content || strings.TrimSpace(line[:n]) != ""
			line = strings.TrimLeft(line[n:], " ")
			flush()
		}
	}
	flush()
	return out
}

// fitPrefix returns the byte length of the longest prefix of line, ending at
// an atom boundary (after a space when there is one), that fits in limit
// after curLen characters with its closing tags. It is never 0, so the
// splitting always moves on.
func fitPrefix(curLen int, open []string, line string, limit int, html bool) int {
	tags := append([]string(nil), open...)
	used, best, bestSpace := curLen, 0, 0
	for i := 0; i < len(line); {
		n := atomLen(line[i:], html)
		atom := line[i : i+n]
		tags = applyTags(tags, atom, html)
		used += tgLen(atom)
		if used+tgLen(closeTags(tags)) > limit {
			break
		}
		i += n
		best = i
		if atom == " " {
			bestSpace = i
		}
	}
	switch {
	case bestSpace > 0:
		return bestSpace
	case best > 0:
		return best
	}
	return atomLen(line, html)
}

// atomLen is the byte length of the first unit of s that must not be cut: an
// HTML tag or entity, or one character.
func atomLen(s string, html bool) int {
	if html {
		switch s[0] {
		case '<':
			if j := strings.IndexByte(s, '>'); j > 0 && isTagStart(s[1:j]) {
				return j + 1
			}
		case '&':
			if j := strings.IndexByte(s, ';'); j > 1 && j <= 10 && isEntityName(s[1:j]) {
				return j + 1
			}
		}
	}
	_, n := utf8.DecodeRuneInString(s)
	return n
}

// isTagStart tells whether what follows "<" names a tag ("b", "/b", "a href").
func isTagStart(s string) bool {
	s = strings.TrimPrefix(s, "/")
	return s != "" && (s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z')
}

func isEntityName(s string) bool {
	for _, r := range s {
		if !(r == '#' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// applyTags returns the opening tags in force after s.
func applyTags(open []string, s string, html bool) []string {
	if !html || !strings.Contains(s, "<") {
		return open
	}
	out := append([]string(nil), open...)
	for i := 0; i < len(s); {
		n := atomLen(s[i:], true)
		if atom := s[i : i+n]; len(atom) > 2 && atom[0] == '<' && atom[len(atom)-1] == '>' {
			if atom[1] == '/' {
				if len(out) > 0 && tagName(out[len(out)-1]) == tagName(atom) {
					out = out[:len(out)-1]
				}
			} else {
				out = append(out, atom)
			}
		}
		i += n
	}
	return out
}

// tagName is "b" for "<b>", "</b>" and `<a href="...">`.
func tagName(tag string) string {
	t := strings.TrimPrefix(strings.Trim(tag, "<>"), "/")
	name, _, _ := strings.Cut(t, " ")
	return strings.ToLower(name)
}

func closeTags(open []string) string {
	var b strings.Builder
	for i := len(open) - 1; i >= 0; i-- {
		b.WriteString("</" + tagName(open[i]) + ">")
	}
	return b.String()
}
