package sshc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
	"hpcbot/plugins/shellquote"
)

// writeTree creates files (relative path → size) with random content below dir.
func writeTree(t testing.TB, dir string, files map[string]int) {
	t.Helper()
	for rel, size := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(f, rand.Reader, int64(size)); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func sum(t testing.TB, p string) [32]byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(data)
}

// remoteDir is a fresh folder name below the login folder, removed at the end.
func remoteDir(t testing.TB, c *Client, prefix string) string {
	dir := "~/sshc-test/" + prefix + "-" + randomSuffix()
	t.Cleanup(func() { _ = c.RemoveAll(context.Background(), dir) })
	return dir
}

func TestTransferTree(t *testing.T) {
	b := sshBed(t)
	c := newClient(t, b.conn(), Options{})
	ctx := ctxFor(t, 5*time.Minute)
	local := t.TempDir()
	files := map[string]int{
		"input.inp":         1234,
		"empty":             0,
		"big.bin":           20 << 20,
		"a/b/c/deep.txt":    77,
		"a/sibling.dat":     32768, // exactly one SFTP packet
		"a/b/odd name .txt": 32769,
	}
	writeTree(t, local, files)
	if err := os.Chmod(filepath.Join(local, "input.inp"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(local, "emptydir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(local, "link")); err != nil {
		t.Fatal(err)
	}
	dir := remoteDir(t, c, "tree") + "/new/parents"
	if err := c.PutDir(ctx, local, dir); err != nil {
		t.Fatalf("PutDir: %v", err)
	}
	// Again: existing files are overwritten, not an error.
	if err := c.PutDir(ctx, local, dir); err != nil {
		t.Fatalf("PutDir again: %v", err)
	}

	list, err := c.List(ctx, dir)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	got := map[string]int{}
	for _, f := range list {
		got[f.Path] = int(f.Size)
		if f.Path == "input.inp" && f.Mode.Perm() != 0o750 {
			t.Errorf("input.inp mode %v, want the local 0750", f.Mode.Perm())
		}
	}
	if len(got) != len(files) {
		t.Errorf("List = %v, want exactly %v (no symlink, no folders)", got, files)
	}
	for rel, size := range files {
		if got[rel] != size {
			t.Errorf("%s: remote size %d, want %d", rel, got[rel], size)
		}
	}

	out := t.TempDir()
	for rel := range files {
		dst := filepath.Join(out, "fetched", filepath.FromSlash(rel))
		if _, err := c.Get(ctx, dir, rel, dst, cluster.NoLimit); err != nil {
			t.Fatalf("Get %s: %v", rel, err)
		}
		if sum(t, dst) != sum(t, filepath.Join(local, filepath.FromSlash(rel))) {
			t.Errorf("%s: checksum differs after the round trip", rel)
		}
	}
	leftovers, _ := filepath.Glob(filepath.Join(out, "fetched", ".*.part-*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
	// The server agrees on the content too.
	r, err := c.Run(ctx, "sha256sum "+shellquote.Quote(strings.TrimPrefix(dir, "~/")+"/big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	want := sum(t, filepath.Join(local, "big.bin"))
	if !strings.HasPrefix(string(r.Stdout), hexString(want[:])) {
		t.Errorf("remote sha256sum %q, want %x", r.Stdout, want)
	}

	if err := c.RemoveAll(ctx, dir); err != nil {
		t.Fatalf("RemoveAll: %v", err)
	}
	if _, err := c.List(ctx, dir); plugins.KindOf(err) != plugins.KindNotFound {
		t.Errorf("List after RemoveAll: %v, want not found", err)
	}
	if err := c.RemoveAll(ctx, dir); err != nil {
		t.Errorf("RemoveAll of a missing folder: %v", err)
	}
	if s := c.Stats(); s.Handshakes != 1 {
		t.Errorf("%d handshakes for one tree's round trip, want 1", s.Handshakes)
	}
}

// A calculation's input goes to a new folder whose parent exists: one mkdir,
// then per file open, write, chmod and close, the chmod sent while the write is
// in flight: five SFTP requests in four round trips (MkdirAll's two stats and a
// round trip of its own for the chmod are gone).
func TestPutDirRequests(t *testing.T) {
	b := sshBed(t)
	c := newClient(t, b.conn(), Options{})
	ctx := ctxFor(t, time.Minute)
	parent := remoteDir(t, c, "requests")
	local := t.TempDir()
	writeTree(t, local, map[string]int{"in.inp": 100})
	if err := os.Chmod(filepath.Join(local, "in.inp"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := c.PutDir(ctx, local, parent+"/first"); err != nil { // the session and the parent
		t.Fatal(err)
	}
	before := c.Stats().SFTPRequests
	if err := c.PutDir(ctx, local, parent+"/calc"); err != nil {
		t.Fatal(err)
	}
	if n := c.Stats().SFTPRequests - before; n != 5 {
		t.Errorf("%d SFTP requests to stage one file in a new folder, want 5", n)
	}
	list, err := c.List(ctx, parent+"/calc")
	if err != nil || len(list) != 1 || list[0].Size != 100 || list[0].Mode.Perm() != 0o640 {
		t.Errorf("staged: %+v, %v", list, err)
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, x := range b {
		out = append(out, digits[x>>4], digits[x&15])
	}
	return string(out)
}

func TestListDoesNotFollowLinks(t *testing.T) {
	b := sshBed(t)
	c := newClient(t, b.conn(), Options{})
	ctx := ctxFor(t, time.Minute)
	dir := remoteDir(t, c, "links")
	if err := c.WriteFile(ctx, dir+"/real/file.txt", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	rel := shellquote.Quote(strings.TrimPrefix(dir, "~/"))
	// A link out of the folder, a link to a folder inside it, a loop, a fifo.
	if r, err := c.Run(ctx, "cd "+rel+" && ln -s / root && ln -s real again && ln -s . loop && ln -s file.txt real/alias && mkfifo fifo"); err != nil || r.ExitCode != 0 {
		t.Fatalf("setup: %v %s", err, r.Stderr)
	}
	list, err := c.List(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	// Links and the fifo are reported (for Fetch to skip and say so), never followed.
	if got, want := listed(list), []string{"again:L", "fifo:p", "loop:L", "real/alias:L", "real/file.txt:-", "root:L"}; !slices.Equal(got, want) {
		t.Errorf("List = %v, want %v", got, want)
	}
	// A link AS the folder is followed: upload_path may be a link to scratch.
	if r, err := c.Run(ctx, "cd "+rel+" && ln -s real top"); err != nil || r.ExitCode != 0 {
		t.Fatalf("setup: %v %s", err, r.Stderr)
	}
	list, err = c.List(ctx, dir+"/top")
	if got, want := listed(list), []string{"alias:L", "file.txt:-"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("List through a linked folder = %v, %v; want %v", got, err, want)
	}
	// RemoveAll removes links, not what they point to.
	if err := c.RemoveAll(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Run(ctx, "test -d / && echo ok"); err != nil || string(r.Stdout) != "ok\n" {
		t.Fatalf("%v %q", err, r.Stdout)
	}
}

// listed gives each listed path with the first letter of its mode (- regular, L link, p fifo).
func listed(list []cluster.RemoteFile) []string {
	var out []string
	for _, f := range list {
		out = append(out, f.Path+":"+f.Mode.String()[:1])
	}
	return out
}

// TestGetRefusesLinksAndCapsSize: Get never follows a link (as the file or as a
// folder on its way), refuses a special file, and stops at its limit, leaving
// nothing behind; what it writes here is 0600 in 0700 folders, whatever the
// remote mode.
func TestGetRefusesLinksAndCapsSize(t *testing.T) {
	b := sshBed(t)
	c := newClient(t, b.conn(), Options{})
	ctx := ctxFor(t, time.Minute)
	dir := remoteDir(t, c, "get")
	if err := c.WriteFile(ctx, dir+"/real/big.out", make([]byte, 3<<20), 0o777); err != nil {
		t.Fatal(err)
	}
	rel := shellquote.Quote(strings.TrimPrefix(dir, "~/"))
	if r, err := c.Run(ctx, "cd "+rel+" && ln -s /etc/passwd passwd.out && ln -s /etc etc && ln -s real inside && mkfifo fifo.out && chmod 777 real"); err != nil || r.ExitCode != 0 {
		t.Fatalf("setup: %v %s", err, r.Stderr)
	}
	out := t.TempDir()
	for _, name := range []string{"passwd.out", "etc/passwd", "inside/big.out", "fifo.out"} {
		dst := filepath.Join(out, filepath.FromSlash(name))
		n, err := c.Get(ctx, dir, name, dst, cluster.NoLimit)
		if !errors.Is(err, cluster.ErrNotRegular) || plugins.KindOf(err) != plugins.KindPermanent {
			t.Errorf("Get %s: %d bytes, %v; want a permanent not-a-regular-file error", name, n, err)
		}
		if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Get %s left %s: %v", name, dst, err)
		}
	}
	dst := filepath.Join(out, "sub", "big.out")
	n, err := c.Get(ctx, dir, "real/big.out", dst, 1<<20)
	if !errors.Is(err, cluster.ErrTooLarge) || plugins.KindOf(err) != plugins.KindPermanent {
		t.Errorf("Get of 3 MiB under a 1 MiB limit: %d bytes, %v; want a permanent too-large error", n, err)
	}
	if n > 1<<20 {
		t.Errorf("Get copied %d bytes under a 1 MiB limit", n)
	}
	if left, _ := filepath.Glob(filepath.Join(out, "sub", "*")); len(left) > 0 {
		t.Errorf("a refused Get left %v", left)
	}
	n, err = c.Get(ctx, dir, "real/big.out", dst, 3<<20)
	if err != nil || n != 3<<20 {
		t.Fatalf("Get at exactly the limit: %d bytes, %v", n, err)
	}
	for p, want := range map[string]fs.FileMode{dst: 0o600, filepath.Dir(dst): 0o700 | fs.ModeDir} {
		if fi, err := os.Stat(p); err != nil || fi.Mode() != want {
			t.Errorf("%s: mode %v (%v), want %v", p, fi.Mode(), err, want)
		}
	}
}

func TestWriteFileAtomic(t *testing.T) {
	b := sshBed(t)
	c := newClient(t, b.conn(), Options{})
	ctx := ctxFor(t, time.Minute)
	dir := remoteDir(t, c, "write")
	p := dir + "/sub/dir/marker"
	for i, content := range []string{"first version\n", "second\n", ""} {
		if err := c.WriteFile(ctx, p, []byte(content), 0o640); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		r, err := c.Run(ctx, "cat "+shellquote.Quote(strings.TrimPrefix(p, "~/"))+" && stat -c %a "+shellquote.Quote(strings.TrimPrefix(p, "~/")))
		if err != nil || string(r.Stdout) != content+"640\n" {
			t.Fatalf("write %d: remote has %q (%v), want %q and mode 640", i, r.Stdout, err, content)
		}
	}
	list, err := c.List(ctx, dir)
	if err != nil || len(list) != 1 {
		t.Errorf("List = %+v, %v: want the file and no temporary file", list, err)
	}
}

func TestTransferErrors(t *testing.T) {
	b := sshBed(t)
	c := newClient(t, b.conn(), Options{})
	ctx := ctxFor(t, time.Minute)
	dir := remoteDir(t, c, "errors")
	if err := c.WriteFile(ctx, dir+"/file", []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
		kind plugins.Kind
	}{
		{"Get of a missing file", func() error {
			_, err := c.Get(ctx, dir, "missing", filepath.Join(t.TempDir(), "x"), cluster.NoLimit)
			return err
		}, plugins.KindNotFound},
		{"List of a missing folder", func() error { _, err := c.List(ctx, dir+"/missing"); return err }, plugins.KindNotFound},
		{"List of a file", func() error { _, err := c.List(ctx, dir+"/file"); return err }, plugins.KindPermanent},
		{"Get of a folder", func() error {
			_, err := c.Get(ctx, path.Dir(dir), path.Base(dir), filepath.Join(t.TempDir(), "x"), cluster.NoLimit)
			return err
		}, plugins.KindPermanent},
		{"PutDir of a missing local folder", func() error { return c.PutDir(ctx, "/nonexistent/hpcbot", dir+"/x") }, plugins.KindPermanent},
		{"PutDir below a file", func() error { return c.PutDir(ctx, t.TempDir(), dir+"/file/below") }, plugins.KindPermanent},
		{"WriteFile where no one may write", func() error { return c.WriteFile(ctx, "/root/hpcbot-no", []byte("x"), 0) }, plugins.KindPermanent},
		{"RemoveAll of the login folder", func() error { return c.RemoveAll(ctx, "~") }, plugins.KindPermanent},
		{"RemoveAll of the login folder by its path", func() error { return c.RemoveAll(ctx, "~/") }, plugins.KindPermanent},
		{"RemoveAll of /", func() error { return c.RemoveAll(ctx, "/") }, plugins.KindPermanent},
		{"RemoveAll of .", func() error { return c.RemoveAll(ctx, ".") }, plugins.KindPermanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil || plugins.KindOf(err) != tt.kind {
				t.Fatalf("got %v (kind %v), want kind %v", err, plugins.KindOf(err), tt.kind)
			}
		})
	}
	if r, err := c.Run(ctx, "ls -d ~ && ls "+shellquote.Quote(strings.TrimPrefix(dir, "~/"))); err != nil || r.ExitCode != 0 {
		t.Fatalf("the refused removals removed something: %v %s", err, r.Stderr)
	}
}

func TestTransferHonoursContext(t *testing.T) {
	b := sshBed(t)
	c := newClient(t, b.conn(), Options{})
	ctx := ctxFor(t, time.Minute)
	local := t.TempDir()
	writeTree(t, local, map[string]int{"big": 8 << 20})
	dir := remoteDir(t, c, "ctx")
	if err := c.PutDir(ctx, local, dir); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	out := filepath.Join(t.TempDir(), "big")
	for name, err := range map[string]error{
		"Get":    func() error { _, err := c.Get(cancelled, dir, "big", out, cluster.NoLimit); return err }(),
		"PutDir": c.PutDir(cancelled, local, dir+"/again"),
	} {
		if !errors.Is(err, context.Canceled) || plugins.KindOf(err) != plugins.KindTransient {
			t.Errorf("%s with a cancelled context: %v, want a transient context error", name, err)
		}
	}
	if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a cancelled Get left %s: %v", out, err)
	}
}

func TestRelativeAndTildePaths(t *testing.T) {
	b := sshBed(t)
	c := newClient(t, b.conn(), Options{})
	ctx := ctxFor(t, time.Minute)
	name := "sshc-rel-" + randomSuffix()
	t.Cleanup(func() { _ = c.RemoveAll(context.Background(), name) })
	if err := c.WriteFile(ctx, name+"/f", []byte("rel"), 0); err != nil {
		t.Fatal(err)
	}
	r, err := c.Run(ctx, "cat \"$HOME\"/"+shellquote.Quote(name)+"/f")
	if err != nil || string(r.Stdout) != "rel" {
		t.Fatalf("relative path did not land in the login folder: %q %v", r.Stdout, err)
	}
	list, err := c.List(ctx, "~/"+name)
	if err != nil || len(list) != 1 || list[0].Path != "f" {
		t.Fatalf("~/ path: %+v %v", list, err)
	}
}
