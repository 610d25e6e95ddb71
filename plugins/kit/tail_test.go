package kit

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTailText(t *testing.T) {
	for _, tc := range []struct {
		name      string
		data      string
		whole     bool
		lines     int
		bytes     int
		want      string
		truncated bool
	}{
		{"whole file", "a\nb\n", true, 30, 1000, "a\nb", false},
		{"no final newline", "a\nb", true, 30, 1000, "a\nb", false},
		{"empty", "", true, 30, 1000, "", false},
		{"partial first line dropped", "tial line\nb\nc\n", false, 30, 1000, "b\nc", true},
		{"only a partial line", "xyz", false, 30, 1000, "xyz", true},
		{"last lines", "1\n2\n3\n4\n5\n", true, 2, 1000, "4\n5", true},
		{"byte cap drops whole lines", "aaaa\nbbbb\ncccc\n", true, 30, 10, "bbbb\ncccc", true},
		{"one line over the byte cap", "0123456789abcdef", true, 30, 4, "cdef", true},
		{"invalid UTF-8", "ok \xff\xfe end\n", true, 30, 1000, "ok \uFFFD end", false},
		{"cut inside a character", "\xbc\xd0\xb9 конец", false, 30, 1000, "й конец", true},
		{"colour escapes", "\x1b[1;31mError\x1b[0m: bad\n", true, 30, 1000, "Error: bad", false},
		{"title escape", "\x1b]0;pwned\x07visible\n", true, 30, 1000, "visible", false},
		{"controls and bidi", "a\x00b\rc\x7fd\u202ee\u2066f\tg\n", true, 30, 1000, "abcde" + "f\tg", false},
		{"carriage-return progress", "10%\r20%\r\n", true, 30, 1000, "10%20%", false},
		{"caps above the maximum", strings.Repeat("x\n", 500), true, 1000, 1 << 20, strings.TrimSuffix(strings.Repeat("x\n", MaxTailLines), "\n"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, cut := TailText([]byte(tc.data), tc.whole, tc.lines, tc.bytes)
			if got != tc.want || cut != tc.truncated {
				t.Errorf("TailText(%q) = %q, %v; want %q, %v", tc.data, got, cut, tc.want, tc.truncated)
			}
		})
	}
}

// TestTailTextBounds: whatever the input, the text is valid UTF-8 within the
// caps and holds no control character but newline and tab.
func TestTailTextBounds(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 4000; i++ {
		b.WriteByte(byte(i * 7919 % 256))
	}
	data := b.String()
	for _, caps := range [][2]int{{30, 16 << 10}, {100, 100}, {1, 7}, {5, 3}} {
		got, _ := TailText([]byte(data), false, caps[0], caps[1])
		if !utf8.ValidString(got) || len(got) > caps[1] || strings.Count(got, "\n") >= caps[0] {
			t.Errorf("caps %v: %d bytes, %d newlines, valid %v", caps, len(got), strings.Count(got, "\n"), utf8.ValidString(got))
		}
		for _, r := range got {
			if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f || r >= 0x80 && r < 0xa0 {
				t.Fatalf("caps %v: control character %U in %q", caps, r, got)
			}
		}
	}
}
