package tgtest

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
)

// The HTML parse mode as https://core.telegram.org/bots/api#html-style
// describes it: only the tags below, properly nested; "All <, > and & symbols
// that are not a part of a tag or an HTML entity must be replaced with the
// corresponding HTML entities"; the named entities &lt; &gt; &amp; &quot; and
// numerical ones. Telegram answers a malformed text with 400 "Bad Request:
// can't parse entities: ...". Like Telegram, a lone & or > is taken literally.
var htmlTags = map[string]bool{
	"b": true, "strong": true, "i": true, "em": true, "u": true, "ins": true,
	"s": true, "strike": true, "del": true, "span": true, "tg-spoiler": true,
	"a": true, "tg-emoji": true, "code": true, "pre": true, "blockquote": true,
}

var htmlEntities = map[string]rune{"lt": '<', "gt": '>', "amp": '&', "quot": '"'}

// parseHTML returns the text a user sees, or the reason Telegram would give
// for refusing it.
func parseHTML(s string) (string, error) {
	var out strings.Builder
	var open []string
	for i := 0; i < len(s); {
		switch s[i] {
		case '<':
			j := strings.IndexByte(s[i:], '>')
			if j < 0 {
				return "", fmt.Errorf("Unclosed start tag at byte offset %d", i)
			}
			tag := s[i+1 : i+j]
			if strings.HasPrefix(tag, "/") {
				name := strings.ToLower(strings.TrimSpace(tag[1:]))
				if len(open) == 0 {
					return "", fmt.Errorf("Unexpected end tag at byte offset %d", i)
				}
				if top := open[len(open)-1]; name != top {
					return "", fmt.Errorf("Unmatched end tag at byte offset %d, expected \"</%s>\", found \"</%s>\"", i, top, name)
				}
				open = open[:len(open)-1]
			} else {
				name, _, _ := strings.Cut(tag, " ")
				name = strings.ToLower(name)
				if !htmlTags[name] {
					return "", fmt.Errorf("Unsupported start tag \"%s\" at byte offset %d", name, i)
				}
				open = append(open, name)
			}
			i += j + 1
		case '&':
			if r, n, ok := htmlEntity(s[i:]); ok {
				out.WriteRune(r)
				i += n
				continue
			}
			out.WriteByte('&')
			i++
		default:
			out.WriteByte(s[i])
			i++
		}
	}
	if len(open) > 0 {
		return "", fmt.Errorf("Can't find end tag corresponding to start tag \"%s\"", open[len(open)-1])
	}
	return out.String(), nil
}

// htmlEntity decodes the entity at the start of s.
func htmlEntity(s string) (r rune, n int, ok bool) {
	end := strings.IndexByte(s, ';')
	if end < 2 || end > 12 {
		return 0, 0, false
	}
	name := s[1:end]
	if r, ok := htmlEntities[name]; ok {
		return r, end + 1, true
	}
	if num, found := strings.CutPrefix(name, "#"); found {
		base := 10
		if h, isHex := strings.CutPrefix(num, "x"); isHex {
			num, base = h, 16
		}
		v, err := strconv.ParseInt(num, base, 32)
		if err == nil && v > 0 {
			return rune(v), end + 1, true
		}
	}
	return 0, 0, false
}

// utf16Len is a text's length as Telegram counts it (UTF-16 code units).
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}
