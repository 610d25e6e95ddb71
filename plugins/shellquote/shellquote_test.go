package shellquote

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// shells returns the POSIX shells present on this machine; /bin/sh must exist.
func shells(t testing.TB) []string {
	t.Helper()
	var found []string
	for _, sh := range []string{"/bin/sh", "/bin/bash", "/bin/dash"} {
		if _, err := os.Stat(sh); err == nil {
			found = append(found, sh)
		}
	}
	if len(found) == 0 || found[0] != "/bin/sh" {
		t.Fatalf("no /bin/sh on this machine")
	}
	return found
}

// runScript runs script with sh -c and returns the NUL-separated words it printed.
func runScript(t testing.TB, sh, script string, env []string) []string {
	t.Helper()
	cmd := exec.Command(sh, "-c", script)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s -c %q: %v (stderr %q)", sh, script, err, stderr.String())
	}
	out := stdout.String()
	if !strings.HasSuffix(out, "\x00") {
		t.Fatalf("%s -c %q printed %q, want NUL-terminated words (stderr %q)", sh, script, out, stderr.String())
	}
	return strings.Split(strings.TrimSuffix(out, "\x00"), "\x00")
}

// printed runs printf '%s\0' with argv quoted by Join, under shell sh.
func printed(t testing.TB, sh string, argv []string) []string {
	t.Helper()
	return runScript(t, sh, "printf '%s\\0' "+Join(argv), []string{"PATH=/usr/bin:/bin", "LC_ALL=C"})
}

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "''"},
		{"abc", "abc"},
		{"-p8", "-p8"},
		{"mol.inp", "mol.inp"},
		{"/opt/orca/orca_submit", "/opt/orca/orca_submit"},
		{"a=b,c:d@e%f+g", "a=b,c:d@e%f+g"},
		{"it's", `'it'\''s'`},
		{"'", `''\'''`},
		{"a b", "'a b'"},
		{"$(id)", "'$(id)'"},
		{"`id`", "'`id`'"},
		{"; rm -rf ~", "'; rm -rf ~'"},
		{"a\nb", "'a\nb'"},
		{"*", "'*'"},
		{"~", "'~'"},
		{"{}", "'{}'"},
		{"héllo", "'héllo'"},
		{`back\slash`, `'back\slash'`},
	}
	for _, tt := range tests {
		if got := Quote(tt.in); got != tt.want {
			t.Errorf("Quote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestJoin(t *testing.T) {
	tests := []struct {
		argv []string
		want string
	}{
		{nil, ""},
		{[]string{"orca_submit", "mol.inp", "-p8"}, "orca_submit mol.inp -p8"},
		{[]string{"if", "then"}, "'if' then"},
		{[]string{"a=b", "a=b"}, "'a=b' a=b"},
		{[]string{"time"}, "'time'"},
		{[]string{"-x", "-x"}, "'-x' -x"},
		{[]string{"x", "", "it's"}, `x '' 'it'\''s'`},
	}
	for _, tt := range tests {
		if got := Join(tt.argv); got != tt.want {
			t.Errorf("Join(%q) = %s, want %s", tt.argv, got, tt.want)
		}
	}
}

// hostile are words that would do harm if a shell saw them unquoted.
var hostile = []string{
	"", " ", "'", `"`, `\`, `'\''`, "; rm -rf ~", "$(id)", "`id`", "${HOME}", "$HOME", "~", "~root",
	"*", "?", "[a]", "{a,b}", "a|b", "a&&b", "a||b", "a>b", "<b", "(x)", "#comment", "!", "!!",
	"a\nb", "a\rb", "\t", "-n", "-e", "--", "%s", `\n`, "%1", "a=b", "if", "héllo", "日本語", "\x01\x7f",
	"\xff\xfe", "-p8; reboot", "'{}'",
}

func TestJoinShells(t *testing.T) {
	for _, sh := range shells(t) {
		for _, w := range hostile {
			argv := []string{w, "x" + w + "y", w}
			if got := printed(t, sh, argv); !slices.Equal(got, argv) {
				t.Errorf("%s: Join(%q) printed %q", sh, argv, got)
			}
		}
		if got := printed(t, sh, hostile); !slices.Equal(got, hostile) {
			t.Errorf("%s: all hostile words at once printed %q", sh, got)
		}
	}
}

// TestJoinCommandPosition runs programs whose names the shell would otherwise
// read as reserved words or assignments. (A name starting with "%" cannot be
// run by bash at all, quoted or not: bash takes it as a job spec. Runners
// refuse such program names.)
func TestJoinCommandPosition(t *testing.T) {
	dir := t.TempDir()
	names := []string{"if", "time", "a=b", "done", "it's", "sp ace", "-dash", "{}"}
	for _, name := range names {
		script := "#!/bin/sh\nprintf '%s\\0' \"$@\"\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"PATH=" + dir + ":/usr/bin:/bin", "LC_ALL=C"}
	for _, sh := range shells(t) {
		for _, name := range names {
			argv := []string{name, "arg 1", "$x", ""}
			if got := runScript(t, sh, Join(argv), env); !slices.Equal(got, argv[1:]) {
				t.Errorf("%s: Join(%q) = %s ran with %q", sh, argv, Join(argv), got)
			}
		}
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  \t\n ", nil},
		{"orca_submit {} -p8", []string{"orca_submit", "{}", "-p8"}},
		{"  a   b  ", []string{"a", "b"}},
		{"a\nb\r\nc", []string{"a", "b", "c"}},
		{"'a b' c", []string{"a b", "c"}},
		{`"a b" c`, []string{"a b", "c"}},
		{`a'b'"c"d`, []string{"abcd"}},
		{`'' ""`, []string{"", ""}},
		{`a ''`, []string{"a", ""}},
		{`it\'s`, []string{"it's"}},
		{`"it's"`, []string{"it's"}},
		{`'it'\''s'`, []string{"it's"}},
		{`a\ b`, []string{"a b"}},
		{`\\`, []string{`\`}},
		{"a\\\nb", []string{"ab"}},
		{"a\\\r\nb", []string{"ab"}},
		{`"\\ \" \$ \` + "`" + ` \a \n"`, []string{`\ " $ ` + "` \\a \\n"}},
		{`'\n\\'`, []string{`\n\\`}},
		{"$(id) `id` ${HOME} ~ * ?", []string{"$(id)", "`id`", "${HOME}", "~", "*", "?"}},
		{"a;b a|b a&&b #c", []string{"a;b", "a|b", "a&&b", "#c"}},
		{"'; rm -rf ~'", []string{"; rm -rf ~"}},
		{"-p8; reboot", []string{"-p8;", "reboot"}},
		{"'{}'", []string{"{}"}},
		{"héllo 日本語", []string{"héllo", "日本語"}},
		{"\u00a0", []string{"\u00a0"}}, // no-break space is not a shell separator
	}
	for _, tt := range tests {
		got, err := Split(tt.in)
		if err != nil {
			t.Errorf("Split(%q): %v", tt.in, err)
			continue
		}
		if !slices.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
			t.Errorf("Split(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSplitRefuses(t *testing.T) {
	for _, in := range []string{
		"'a", `"a`, `a'b`, `"a\"`, `a\`, "a\x00b", "a\x1bb", "a\x7fb", "'a\x00'", "\"a\x00\"",
		"'a\nb'", "\"a\nb\"", "a\\\x00", "\xff", "a\u200bb", "a\u202eb", "'\u200d'", "a\u0085b",
	} {
		words, err := Split(in)
		if err == nil {
			t.Errorf("Split(%q) = %q, want an error", in, words)
			continue
		}
		if !errors.Is(err, ErrSyntax) {
			t.Errorf("Split(%q) error %v does not wrap ErrSyntax", in, err)
		}
	}
}

// TestSplitLikeShell compares Split with what the shells themselves make of
// captions that contain no character a shell would expand or interpret.
func TestSplitLikeShell(t *testing.T) {
	for _, in := range []string{
		`a b`, `'a b' "c d"`, `it\'s`, `"\\ \" \a"`, `'\'`, `a'b'"c"\d`, `'' ""`, `x\ y`, `-p8 --gfn2 "{}"`,
		`"it's" 'say "hi"'`, "tab\tsep",
	} {
		compareWithShells(t, in)
	}
}

// compareWithShells checks that sh, bash and dash split in exactly as Split does.
// in must not contain characters the shell would expand ($ ` * ? [ ~ { ! ...),
// newlines or carriage returns; the caller filters.
func compareWithShells(t testing.TB, in string) {
	t.Helper()
	words, err := Split(in)
	if err != nil {
		t.Fatalf("Split(%q): %v", in, err)
	}
	for _, sh := range shells(t) {
		// a leading "x" word keeps printf's output NUL-terminated when there are no words
		got := runScript(t, sh, "printf '%s\\0' x "+in, []string{"PATH=/usr/bin:/bin", "LC_ALL=C"})
		if !slices.Equal(got[1:], words) {
			t.Errorf("%s splits %q into %q, Split into %q", sh, in, got[1:], words)
		}
	}
}

// shellSpecial are characters a shell expands or treats as operators (Split
// does not), and the separators the shell treats differently (\r, \n).
const shellSpecial = "$`*?[]~{}!#;|&<>()\n\r="

func FuzzJoin(f *testing.F) {
	for _, w := range hostile {
		f.Add(w)
	}
	f.Add("orca_submit\x00mol.inp\x00-p8")
	f.Add("a\x00\x00b")
	shs := shells(f)
	f.Fuzz(func(t *testing.T, s string) {
		// NUL cannot be in an argv: use it to cut the input into words.
		argv := strings.Split(s, "\x00")
		for _, sh := range shs {
			if got := printed(t, sh, argv); !slices.Equal(got, argv) {
				t.Fatalf("%s: Join(%q) = %s printed %q", sh, argv, Join(argv), got)
			}
		}
	})
}

func FuzzSplit(f *testing.F) {
	for _, s := range []string{
		"orca_submit {} -p8", "; rm -rf ~", "$(id)", "`id`", "a|b", "a && b", "a\nb", `'it'\''s'`,
		`"a\"b"`, "héllo", "'{}'", "-p8; reboot", `a\`, "'a", "\x00", "a\\\nb", `"\$x"`,
	} {
		f.Add(s)
	}
	shs := shells(f)
	f.Fuzz(func(t *testing.T, s string) {
		words, err := Split(s)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("Split(%q) error %v does not wrap ErrSyntax", s, err)
			}
			return
		}
		again, err := Split(Join(words))
		if err != nil {
			t.Fatalf("Split(Join(%q)) = Split(%s): %v", words, Join(words), err)
		}
		if !slices.Equal(again, words) {
			t.Fatalf("Split(Join(%q)) = %q", words, again)
		}
		for _, w := range words {
			if strings.ContainsRune(w, 0) {
				t.Fatalf("Split(%q) gave a word with NUL: %q", s, w)
			}
		}
		// where no shell expansion is involved, the shells agree with Split
		if !strings.ContainsAny(s, shellSpecial) && len(words) > 0 {
			for _, sh := range shs {
				got := runScript(t, sh, "printf '%s\\0' x "+s, []string{"PATH=/usr/bin:/bin", "LC_ALL=C"})
				if !slices.Equal(got[1:], words) {
					t.Fatalf("%s splits %q into %q, Split into %q", sh, s, got[1:], words)
				}
			}
		}
	})
}
