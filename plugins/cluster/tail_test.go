package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hpcbot/plugins"
)

func TestTail(t *testing.T) {
	s, tr, upload, _ := newScheduler(t, &scripted{})
	// A job name a shell would run: every word of the command is quoted.
	hostile := "x'; touch pwned; echo '$(touch pwned2)`touch pwned3`"
	mkdirs(t, upload, "big", "odd", "empty", "none", "link", "errs")
	write := func(folder, name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(upload, folder, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// 2 MiB of output, far above the byte cap.
	var big strings.Builder
	for i := 0; big.Len() < 2<<20; i++ {
		fmt.Fprintf(&big, "iteration %06d energy -76.%09d\n", i, i)
	}
	write("big", "job.out", big.String())
	write("big", "job.err", "warning: something\n")
	write("odd", hostile+".out", "start\n\x1b[31mred\x1b[0m \xff\xfe bytes\x00 and \u202egnp.exe\nend\n")
	write("empty", "job.out", "")
	write("empty", "job.err", "only on stderr\n")
	write("errs", "job.out", "progress\n")
	write("errs", "job.err", "Segmentation fault\n")
	if err := os.Symlink("/etc/passwd", filepath.Join(upload, "link", "job.out")); err != nil {
		t.Fatal(err)
	}

	tail := func(folder, name string, lines int, preferError bool) (plugins.TailResult, error) {
		return s.Tail(ctxT(t), plugins.TailRequest{CalcID: 1, JobID: "1", Folder: folder, JobName: name,
			MaxLines: lines, MaxBytes: 16 << 10, PreferError: preferError})
	}

	t.Run("larger than the byte cap", func(t *testing.T) {
		before := tr.runs.Load()
		res, err := tail("big", "job", 30, false)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(res.Text, "\n")
		all := strings.Split(strings.TrimSuffix(big.String(), "\n"), "\n")
		if len(lines) != 30 || res.Text != strings.Join(all[len(all)-30:], "\n") {
			t.Errorf("got %d lines ending %q, want the file's last 30", len(lines), lines[len(lines)-1])
		}
		if !res.Truncated || res.Stream != plugins.StreamOutput {
			t.Errorf("truncated %v, stream %q", res.Truncated, res.Stream)
		}
		if n := tr.runs.Load() - before; n != 1 {
			t.Errorf("%d remote commands, want 1", n)
		}
		if out := tr.lastOut.Load(); out > 16<<10+tailSlack+64 {
			t.Errorf("the command printed %d bytes of a %d-byte file: it must read only the end", out, big.Len())
		}
	})

	t.Run("hostile name and contents", func(t *testing.T) {
		res, err := tail("odd", hostile, 30, false)
		if err != nil {
			t.Fatal(err)
		}
		if want := "start\nred \uFFFD bytes and gnp.exe\nend"; res.Text != want || res.Truncated {
			t.Errorf("got %q (truncated %v), want %q", res.Text, res.Truncated, want)
		}
		for _, f := range []string{"pwned", "pwned2", "pwned3"} {
			if _, err := os.Stat(filepath.Join(upload, "odd", f)); err == nil {
				t.Errorf("the job name ran a command: %s exists", f)
			}
			if _, err := os.Stat(filepath.Join("/", f)); err == nil {
				t.Errorf("the job name ran a command: /%s exists", f)
			}
		}
	})

	t.Run("stream choice", func(t *testing.T) {
		for _, tc := range []struct {
			folder      string
			preferError bool
			want        string
			stream      string
		}{
			{"errs", false, "progress", plugins.StreamOutput},         // running or succeeded: the output
			{"errs", true, "Segmentation fault", plugins.StreamError}, // failed: the error stream
			{"empty", false, "only on stderr", plugins.StreamError},   // empty output: the error stream
			{"big", true, "warning: something", plugins.StreamError},  // failed with something on stderr
			{"empty", true, "only on stderr", plugins.StreamError},    //
		} {
			res, err := tail(tc.folder, "job", 30, tc.preferError)
			if err != nil || res.Text != tc.want || res.Stream != tc.stream {
				t.Errorf("%s (prefer error %v): %q from %q, %v; want %q from %q", tc.folder, tc.preferError, res.Text, res.Stream, err, tc.want, tc.stream)
			}
		}
	})

	t.Run("missing", func(t *testing.T) {
		for _, tc := range []struct{ folder, what string }{
			{"none", "no output yet"},
			{"link", "no output yet"}, // a link is never read
			{"gone", "folder gone"},
		} {
			_, err := tail(tc.folder, "job", 30, false)
			var pe *plugins.Error
			if !errors.As(err, &pe) || pe.Kind != plugins.KindNotFound {
				t.Errorf("%s: %v, want kind not found", tc.what, err)
			}
		}
		if _, err := tail("../etc", "job", 30, false); plugins.KindOf(err) != plugins.KindPermanent {
			t.Errorf("a folder outside upload_path: %v, want a permanent error", err)
		}
	})
}

// exitTransport runs nothing: every command "exits" with code and prints
// stdout and stderr, as a cluster that answers but whose command failed.
type exitTransport struct {
	LocalTransport
	code           int
	stdout, stderr string
}

func (e *exitTransport) Run(ctx context.Context, cmd string) (RunResult, error) {
	return RunResult{ExitCode: e.code, Stdout: []byte(e.stdout), Stderr: []byte(e.stderr)}, nil
}

// TestTailFileTroubleIsNotTransient: a tail command that ran but failed (the
// user's job made its output unreadable, the file vanished) or printed
// something else is about the file, not the connection: a transient error
// would make the host count the cluster as unreachable on every Log press.
func TestTailFileTroubleIsNotTransient(t *testing.T) {
	for _, tr := range []*exitTransport{
		{code: 1, stderr: "tail: cannot open 'job.out' for reading: Permission denied"},
		{code: 0, stdout: "no mark here\n"},
	} {
		upload := filepath.Join(t.TempDir(), "up")
		s := New(&scripted{}, func(plugins.Cluster) (Transport, error) { return tr, nil }, WithLogger(slog.New(slog.DiscardHandler)))
		if err := s.Configure(ctxT(t), plugins.Cluster{Label: "t", UploadPath: upload}); err != nil {
			t.Fatal(err)
		}
		_, err := s.Tail(ctxT(t), plugins.TailRequest{CalcID: 1, JobID: "1", Folder: "f", JobName: "job", MaxLines: 30, MaxBytes: 16 << 10})
		if err == nil || plugins.IsTransient(err) || plugins.KindOf(err) == plugins.KindAuth {
			t.Errorf("exit %d, stdout %q: %v (kind %v), want a permanent error", tr.code, tr.stdout, err, plugins.KindOf(err))
		}
	}
}
