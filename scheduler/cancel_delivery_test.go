package scheduler

import (
	"archive/zip"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"hpcbot/store"
)

// A cancelled calculation delivers only the files that exist and are not
// empty; with none there is no delivery and no zip (issue 10 item 2).
func TestCancelledDeliversOnlyNonEmptyFiles(t *testing.T) {
	b := newBed(t)
	b.start()
	// Empty outputs only (the job printed nothing before it was stopped).
	none := b.submit("none.sh", ": > empty.txt\n"+waitScript("echo never"), "")
	// One result with content, one empty, and some job output.
	some := b.submit("some.sh", "echo partial > partial.txt\n: > empty.txt\necho started\n"+waitScript("echo never"), "")
	for _, c := range []store.Calculation{none, some} {
		b.waitState(c.ID, store.StateRunning)
		until(t, func() string { return "the job's first files" }, func() bool {
			_, err := os.Stat(filepath.Join(b.remote(c), "empty.txt"))
			return err == nil
		})
		if err := b.s.Cancel(context.Background(), c.ID); err != nil {
			t.Fatalf("cancel %d: %v", c.ID, err)
		}
	}

	d := b.waitState(none.ID, store.StateNotified)
	fin := b.notes.of(none.ID, EventFinished)
	if len(fin) != 1 || fin[0].Outcome != store.StateCancelled {
		t.Fatalf("none: %s, notices %+v", history(d), fin)
	}
	if len(fin[0].Files) != 0 {
		t.Fatalf("a cancelled calculation with only empty outputs delivers %q", fin[0].Files)
	}
	if zips, _ := filepath.Glob(filepath.Join(d.LocalDir, "*.zip")); len(zips) != 0 {
		t.Fatalf("an empty zip was made: %q", zips)
	}

	d = b.waitState(some.ID, store.StateNotified)
	fin = b.notes.of(some.ID, EventFinished)
	if len(fin) != 1 || len(fin[0].Files) != 1 {
		t.Fatalf("some: %s, notices %+v", history(d), fin)
	}
	zr, err := zip.OpenReader(fin[0].Files[0])
	if err != nil {
		t.Fatalf("the delivered file is not a zip: %v", err)
	}
	defer zr.Close()
	var names []string
	for _, f := range zr.File {
		names = append(names, filepath.Base(f.Name))
		if f.UncompressedSize64 == 0 {
			t.Errorf("an empty file in the zip: %s", f.Name)
		}
	}
	slices.Sort(names)
	if want := []string{jobName(some.ID) + ".out", "partial.txt"}; !slices.Equal(names, want) {
		t.Fatalf("zip holds %s, want %s", strings.Join(names, ", "), strings.Join(want, ", "))
	}
}
