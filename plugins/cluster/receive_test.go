package cluster

import (
	"io"
	"path/filepath"
	"strings"
	"testing"

	"hpcbot/plugins"
)

// TestZeroLimitCopiesNothing: a limit of 0 lets only an empty file through;
// NoLimit is the only "no limit". (0 once meant unlimited, so a file listed
// empty with no room left could be copied whole however large it had grown.)
func TestZeroLimitCopiesNothing(t *testing.T) {
	dir := t.TempDir()
	fill := func(w io.Writer) error {
		_, err := io.Copy(w, strings.NewReader(strings.Repeat("x", 1<<20)))
		return err
	}
	if n, err := ReceiveFile(filepath.Join(dir, "a"), 0, fill); err == nil || n != 0 {
		t.Errorf("limit 0: copied %d bytes, err %v; want nothing and ErrTooLarge", n, err)
	}
	if n, err := ReceiveFile(filepath.Join(dir, "b"), NoLimit, fill); err != nil || n != 1<<20 {
		t.Errorf("NoLimit: copied %d bytes, err %v", n, err)
	}
	if got := fetchLimit(plugins.FetchRequest{MaxTotal: 100}, RemoteFile{Size: 0}, 0); got != 0 {
		t.Errorf("an empty listed file with no room left: limit %d, want 0", got)
	}
	if got := fetchLimit(plugins.FetchRequest{}, RemoteFile{Size: 5}, 0); got != NoLimit {
		t.Errorf("no limits configured: %d, want NoLimit", got)
	}
}
