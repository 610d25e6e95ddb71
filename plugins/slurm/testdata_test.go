package slurm

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"hpcbot/plugins/cluster"
)

// A capture is one command's real result, kept in testdata/<name>.txt as
// sections "-- cmd --", "-- rc --", "-- stdout --", "-- stderr --" (the
// command as built by the dialect, its exit code and its output, verbatim).
type capture struct {
	Cmd string
	R   cluster.RunResult
}

var sections = []string{"cmd", "rc", "stdout", "stderr"}

func writeCapture(t *testing.T, name string, c capture) {
	t.Helper()
	var b bytes.Buffer
	for _, s := range sections {
		fmt.Fprintf(&b, "-- %s --\n", s)
		var body []byte
		switch s {
		case "cmd":
			body = []byte(c.Cmd)
		case "rc":
			body = []byte(strconv.Itoa(c.R.ExitCode))
		case "stdout":
			body = c.R.Stdout
		case "stderr":
			body = c.R.Stderr
		}
		b.Write(body)
		if len(body) > 0 && body[len(body)-1] != '\n' {
			// Record a missing final newline, so reading gives back the exact bytes.
			b.WriteString("\n-- nonewline --\n")
		}
	}
	if err := os.WriteFile(filepath.Join("testdata", name+".txt"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readCapture(t testing.TB, name string) capture {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	parts := map[string]*bytes.Buffer{}
	var cur *bytes.Buffer
	for line := range bytes.Lines(data) {
		l := strings.TrimRight(string(line), "\n")
		if strings.HasPrefix(l, "-- ") && strings.HasSuffix(l, " --") {
			name := strings.TrimSuffix(strings.TrimPrefix(l, "-- "), " --")
			if name == "nonewline" {
				if cur != nil && cur.Len() > 0 {
					cur.Truncate(cur.Len() - 1)
				}
				continue
			}
			cur = &bytes.Buffer{}
			parts[name] = cur
			continue
		}
		if cur == nil {
			t.Fatalf("testdata/%s.txt: text before the first section", name)
		}
		cur.Write(line)
	}
	get := func(s string) []byte {
		if p, ok := parts[s]; ok {
			return p.Bytes()
		}
		t.Fatalf("testdata/%s.txt: no %q section", name, s)
		return nil
	}
	rc, err := strconv.Atoi(strings.TrimSpace(string(get("rc"))))
	if err != nil {
		t.Fatalf("testdata/%s.txt: rc: %v", name, err)
	}
	return capture{Cmd: string(get("cmd")), R: cluster.RunResult{Stdout: get("stdout"), Stderr: get("stderr"), ExitCode: rc}}
}

func TestCaptureRoundTrip(t *testing.T) {
	dir := t.TempDir()
	wd, _ := os.Getwd()
	if err := os.Mkdir(filepath.Join(dir, "testdata"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	for _, c := range []capture{
		{Cmd: "x", R: cluster.RunResult{Stdout: []byte("a\nb\n"), Stderr: []byte("no newline"), ExitCode: 3}},
		{Cmd: "", R: cluster.RunResult{}},
		{Cmd: "multi\nline", R: cluster.RunResult{Stdout: []byte("\n\n")}},
	} {
		writeCapture(t, "c", c)
		got := readCapture(t, "c")
		if got.Cmd != c.Cmd || !bytes.Equal(got.R.Stdout, c.R.Stdout) || !bytes.Equal(got.R.Stderr, c.R.Stderr) || got.R.ExitCode != c.R.ExitCode {
			t.Errorf("round trip of %+v gave %+v", c, got)
		}
	}
}
