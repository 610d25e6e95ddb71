package cluster

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"hpcbot/internal/testbed"
	"hpcbot/plugins"
)

// runAsAccount is the test bed's user (scripts/testbed.sh creates it), for
// run_as tests: an account that is not ours. Switching to it needs root, or
// sudo for the sudo mode.
func runAsAccount(t *testing.T, sudo bool) *account {
	t.Helper()
	name := os.Getenv(testbed.EnvUser)
	if name == "" {
		name = "hpctest"
	}
	_, err := user.Lookup(name)
	testbed.Require(t, "run_as account "+name+" (scripts/testbed.sh start creates it)", err == nil)
	testbed.Require(t, "root, to switch to another user", os.Geteuid() == 0)
	if sudo {
		_, err := exec.LookPath("sudo")
		testbed.Require(t, "sudo (scripts/testbed.sh start installs it)", err == nil)
	}
	acc, err := lookupAccount(name)
	if err != nil {
		t.Fatal(err)
	}
	acc.sudo = sudo
	return acc
}

// accountDir is a fresh folder owned by the account, as an operator makes upload_path.
func accountDir(t *testing.T, acc *account) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hpcbot-runas-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, int(acc.uid), int(acc.gid)); err != nil {
		t.Fatal(err)
	}
	return dir
}

func ownerOf(t *testing.T, p string) uint32 {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Uid
}

// TestLocalTransportRunAs: with run_as, commands run as the account with its
// HOME and none of hpcbot's secrets, cannot read hpcbot's files, and every file
// operation in upload_path is the account's; Get still refuses links and special
// files and stops at its limit, and what it writes here is hpcbot's, 0600.
func TestLocalTransportRunAs(t *testing.T) {
	for _, mode := range []string{"setuid", "sudo"} {
		t.Run(mode, func(t *testing.T) {
			acc := runAsAccount(t, mode == "sudo")
			t.Setenv("HPCBOT_TOKEN", "123:tok-secret")
			tr := &LocalTransport{as: acc}
			ctx := ctxT(t)
			secret := filepath.Join(t.TempDir(), "hpcbot.db") // like the store: hpcbot's, 0600 in a 0700 folder
			if err := os.WriteFile(secret, []byte("the store"), 0o600); err != nil {
				t.Fatal(err)
			}

			r, err := tr.Run(ctx, "id -un; echo \"HOME=$HOME\"; env; cat "+secret+" && echo READ-THE-SECRET")
			if err != nil {
				t.Fatal(err)
			}
			out := string(r.Stdout)
			if first, _, _ := strings.Cut(out, "\n"); first != acc.name {
				t.Errorf("commands run as %q, want %q", first, acc.name)
			}
			if !strings.Contains(out, "HOME="+acc.home+"\n") {
				t.Errorf("HOME is not the account's %s:\n%s", acc.home, out)
			}
			if strings.Contains(out, "HPCBOT_") || strings.Contains(out, "tok-secret") {
				t.Errorf("hpcbot's environment reached the command:\n%s", out)
			}
			if strings.Contains(out, "READ-THE-SECRET") || strings.Contains(out, "the store") {
				t.Errorf("the account read hpcbot's file:\n%s", out)
			}

			upload := accountDir(t, acc)
			remote := filepath.Join(upload, "calc")
			local := t.TempDir()
			writeFiles(t, local, map[string]string{"a.inp": "input", "sub/b.dat": "bb"}, 0o644)
			if err := tr.PutDir(ctx, local, remote); err != nil {
				t.Fatalf("PutDir: %v", err)
			}
			if err := tr.PutDir(ctx, local, remote); err != nil {
				t.Fatalf("PutDir again: %v", err)
			}
			if err := tr.WriteFile(ctx, filepath.Join(remote, "new", "s.sh"), []byte("#!/bin/sh\n"), 0o750); err != nil {
				t.Fatalf("WriteFile: %v", err)
			}
			for _, p := range []string{remote, filepath.Join(remote, "a.inp"), filepath.Join(remote, "sub", "b.dat"), filepath.Join(remote, "new", "s.sh")} {
				if uid := ownerOf(t, p); uid != acc.uid {
					t.Errorf("%s belongs to uid %d, want the account's %d", p, uid, acc.uid)
				}
			}
			if fi, err := os.Stat(filepath.Join(remote, "new", "s.sh")); err != nil || fi.Mode().Perm() != 0o750 {
				t.Errorf("s.sh: %v, %v; want mode 0750", fi, err)
			}
			// The job makes a link to hpcbot's file, a fifo and a big file.
			r, err = tr.Run(ctx, "cd "+remote+" && ln -s "+secret+" link.out && mkfifo fifo.out && head -c 3000000 /dev/zero >big.out && mkdir deep && ln -s "+filepath.Dir(secret)+" deep/up")
			if err != nil || r.ExitCode != 0 {
				t.Fatalf("setup: %v %s", err, r.Stderr)
			}
			files, err := tr.List(ctx, remote)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			var got []string
			for _, f := range files {
				got = append(got, f.Path+":"+f.Mode.String()[:1])
			}
			slices.Sort(got)
			if want := []string{"a.inp:-", "big.out:-", "deep/up:L", "fifo.out:p", "link.out:L", "new/s.sh:-", "sub/b.dat:-"}; !slices.Equal(got, want) {
				t.Errorf("List = %v, want %v", got, want)
			}

			dl := filepath.Join(t.TempDir(), "dl")
			for _, rel := range []string{"link.out", "fifo.out", "deep/up/hpcbot.db"} {
				n, err := tr.Get(ctx, remote, rel, filepath.Join(dl, rel), NoLimit)
				if !errors.Is(err, ErrNotRegular) {
					t.Errorf("Get %s: %d bytes, %v; want a not-a-regular-file error", rel, n, err)
				}
			}
			n, err := tr.Get(ctx, remote, "big.out", filepath.Join(dl, "big.out"), 1<<20)
			if !errors.Is(err, ErrTooLarge) || plugins.KindOf(err) != plugins.KindPermanent || n > 1<<20 {
				t.Errorf("Get of 3 MB under 1 MiB: %d bytes, %v; want a permanent too-large error", n, err)
			}
			if _, err := tr.Get(ctx, remote, "missing.out", filepath.Join(dl, "m"), NoLimit); plugins.KindOf(err) != plugins.KindNotFound {
				t.Errorf("Get of a missing file: %v, want not found", err)
			}
			n, err = tr.Get(ctx, remote, "sub/b.dat", filepath.Join(dl, "sub", "b.dat"), 2)
			if err != nil || n != 2 {
				t.Fatalf("Get sub/b.dat: %d, %v", n, err)
			}
			if data, _ := os.ReadFile(filepath.Join(dl, "sub", "b.dat")); string(data) != "bb" {
				t.Errorf("fetched %q", data)
			}
			var left []string
			filepath.WalkDir(dl, func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					left = append(left, p)
				}
				return nil
			})
			if want := []string{filepath.Join(dl, "sub", "b.dat")}; !slices.Equal(left, want) {
				t.Errorf("download folder holds %v; want only %v (refused files leave nothing)", left, want)
			}
			if fi, err := os.Stat(filepath.Join(dl, "sub", "b.dat")); err != nil || fi.Mode() != LocalFileMode || ownerOf(t, filepath.Join(dl, "sub", "b.dat")) != uint32(os.Geteuid()) {
				t.Errorf("fetched file: %v, %v; want hpcbot's, %v", fi.Mode(), err, LocalFileMode)
			}

			if err := tr.RemoveAll(ctx, remote); err != nil {
				t.Fatalf("RemoveAll: %v", err)
			}
			if _, err := tr.List(ctx, remote); plugins.KindOf(err) != plugins.KindNotFound {
				t.Errorf("List after RemoveAll: %v, want not found", err)
			}
			if _, err := os.Stat(secret); err != nil {
				t.Errorf("RemoveAll reached through the link: %v", err)
			}
		})
	}
}

// TestNewLocalTransportRunAs: run_as must name an existing account other than
// root and hpcbot's own user.
func TestNewLocalTransportRunAs(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"root", "0", me.Username, "hpcbot-no-such-user"} {
		if _, err := NewLocalTransport(plugins.Cluster{RunAs: name}); plugins.KindOf(err) != plugins.KindPermanent {
			t.Errorf("run_as %q: %v, want a permanent error", name, err)
		}
	}
	if tr, err := NewLocalTransport(plugins.Cluster{}); err != nil || tr.(*LocalTransport).as != nil {
		t.Errorf("no run_as: %v, %v; want hpcbot's own user", tr, err)
	}
}
