package cluster

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"hpcbot/plugins"
)

// changing is a LocalTransport whose folder changes right after List: what a
// job still running (or a hostile one) can do between Fetch's listing and copy.
type changing struct {
	LocalTransport
	afterList func()
}

func (c *changing) List(ctx context.Context, dir string) ([]RemoteFile, error) {
	files, err := c.LocalTransport.List(ctx, dir)
	c.afterList()
	return files, err
}

func writeFiles(t *testing.T, dir string, files map[string]string, perm fs.FileMode) {
	t.Helper()
	for rel, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), perm); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, perm); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFetchLinksGrowthAndModes: Fetch does not follow links (present at listing
// or swapped in after it), does not copy a file that grew past the limits
// after the listing, says why for each (skipped list and log), and makes what it
// copies 0600 in 0700 folders whatever the remote modes.
func TestFetchLinksGrowthAndModes(t *testing.T) {
	upload := filepath.Join(t.TempDir(), "up")
	folder := filepath.Join(upload, "calc")
	secret := filepath.Join(t.TempDir(), "secret.out")
	writeFiles(t, filepath.Dir(secret), map[string]string{"secret.out": "the bot's secret"}, 0o600)
	writeFiles(t, folder, map[string]string{
		"a.out":       "12345",
		"grow.out":    "12",
		"swap.out":    "1234",
		"sub/c.out":   "123",
		"sub/d.out":   "1",
		"world.out":   "w",
		"grow2.log":   "1",
		"insub/e.out": "e",
	}, 0o777)
	if err := os.Symlink(secret, filepath.Join(folder, "link.out")); err != nil {
		t.Fatal(err)
	}
	tr := &changing{afterList: func() {
		// swap.out becomes a link to the secret; sub becomes a link to the secret's folder;
		// grow.out grows past MaxSize, grow2.log past what MaxTotal leaves.
		must := func(err error) {
			if err != nil {
				t.Fatal(err)
			}
		}
		must(os.Remove(filepath.Join(folder, "swap.out")))
		must(os.Symlink(secret, filepath.Join(folder, "swap.out")))
		must(os.Rename(filepath.Join(folder, "sub"), filepath.Join(folder, "sub.old")))
		must(os.Symlink(filepath.Dir(secret), filepath.Join(folder, "sub")))
		must(os.WriteFile(filepath.Join(folder, "grow.out"), bytes.Repeat([]byte("x"), 100), 0o777))
		must(os.WriteFile(filepath.Join(folder, "grow2.log"), bytes.Repeat([]byte("y"), 50), 0o777))
	}}
	var logs strings.Builder
	s := New(&scripted{}, func(plugins.Cluster) (Transport, error) { return tr, nil },
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err := s.Configure(ctxT(t), plugins.Cluster{Label: "t", UploadPath: upload}); err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(t.TempDir(), "dl", "calc")
	if err := os.MkdirAll(local, 0o755); err != nil { // it held the input
		t.Fatal(err)
	}
	res, err := s.Fetch(ctxT(t), plugins.FetchRequest{Folder: "calc", LocalDir: local, MaxSize: 10, MaxTotal: 40})
	if err != nil {
		t.Fatal(err)
	}
	wantFiles := []string{"a.out", "insub/e.out", "world.out"}
	if !slices.Equal(res.Files, wantFiles) || res.Bytes != 7 {
		t.Errorf("fetched %q (%d bytes), want %q (7)", res.Files, res.Bytes, wantFiles)
	}
	wantSkipped := []string{
		"grow.out: " + plugins.SkipGrew,
		"grow2.log: " + plugins.SkipGrew,
		"link.out: " + plugins.SkipLink,
		"sub/c.out: " + plugins.SkipSpecialFile,
		"sub/d.out: " + plugins.SkipSpecialFile,
		"swap.out: " + plugins.SkipSpecialFile,
	}
	var skipped []string
	for _, sk := range res.Skipped {
		skipped = append(skipped, sk.Path+": "+sk.Code)
	}
	if !slices.Equal(skipped, wantSkipped) {
		t.Errorf("skipped %q,\nwant %q", skipped, wantSkipped)
	}
	for _, want := range []string{"path=swap.out", "path=grow.out"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no log line with %s:\n%s", want, logs.String())
		}
	}
	err = filepath.WalkDir(filepath.Dir(local), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if data, _ := os.ReadFile(p); strings.Contains(string(data), "secret") {
			t.Errorf("%s holds the secret", p)
		}
		switch {
		case p == filepath.Dir(local):
		case d.IsDir() && info.Mode().Perm() != LocalDirMode:
			t.Errorf("folder %s: mode %v, want %v", p, info.Mode().Perm(), LocalDirMode)
		case !d.IsDir() && info.Mode() != LocalFileMode:
			t.Errorf("file %s: mode %v, want %v", p, info.Mode(), LocalFileMode)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"grow.out", "grow2.log", "swap.out", "sub"} {
		if _, err := os.Lstat(filepath.Join(local, f)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists locally: %v", f, err)
		}
	}
}
