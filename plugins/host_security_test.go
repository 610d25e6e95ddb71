package plugins

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestFetchRefusesUnsafeNames: a plugin that returns a file name outside the
// results folder gets its whole fetch refused, with a log line that names it.
func TestFetchRefusesUnsafeNames(t *testing.T) {
	h, dir, logs := newTestHost(t, HostOptions{})
	ctx := context.Background()
	s, err := h.Scheduler(ctx, fullCluster("c1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"../../etc/passwd", "/etc/passwd", "out/../../x", ""} {
		result(t, dir, "Fetch", FetchResult{Files: []string{"ok.out", bad}, Bytes: 10})
		res, err := s.Fetch(ctx, FetchRequest{Folder: "f1", LocalDir: "/var/lib/hpcbot/dl/f1"})
		if err == nil {
			t.Fatalf("Fetch returned %q without error; want a refusal", res.Files)
		}
		if KindOf(err) != KindPermanent || !strings.Contains(err.Error(), strconv.Quote(bad)) {
			t.Errorf("Fetch with %q: error %v (kind %v); want a permanent error naming the file", bad, err, KindOf(err))
		}
		if len(res.Files) != 0 {
			t.Errorf("Fetch with %q still returned files %q", bad, res.Files)
		}
		if !strings.Contains(logs.String(), "refusing the whole fetch") {
			t.Errorf("no log line for %q:\n%s", bad, logs.String())
		}
	}
	// A well-behaved result passes unchanged.
	want := FetchResult{Files: []string{"a.out", "sub/b.log"}, Bytes: 3}
	result(t, dir, "Fetch", want)
	got, err := s.Fetch(ctx, FetchRequest{Folder: "f1", LocalDir: "/var/lib/hpcbot/dl/f1"})
	if err != nil {
		t.Fatal(err)
	}
	same(t, "Fetch result", got, want)
}

// environOf reads a process's environment from /proc.
func environOf(t *testing.T, pid int) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		t.Fatalf("read the plugin's environment: %v", err)
	}
	var env []string
	for _, kv := range bytes.Split(b, []byte{0}) {
		if len(kv) > 0 {
			env = append(env, string(kv))
		}
	}
	return env
}

// TestPluginEnvironmentHasNoSecrets: a plugin process gets PATH, HOME and the
// like, never hpcbot's secrets; the variable the cluster's key_passphrase_env
// names reaches its scheduler plugin only.
func TestPluginEnvironmentHasNoSecrets(t *testing.T) {
	if _, err := os.Stat("/proc/self/environ"); err != nil {
		t.Skip("no /proc on this system")
	}
	t.Setenv("HPCBOT_TOKEN", "123456:tok-secret")
	t.Setenv("HPCBOT_CLUSTER_C1_PASSWORD", "pw-secret")
	t.Setenv("HPCBOT_NEXTCLOUD_PASSWORD", "nc-secret")
	t.Setenv("SOME_OTHER_SECRET", "other-secret")
	t.Setenv("HPCBOT_KEY_PASS", "passphrase-for-c1")
	t.Setenv("LANG", "C.UTF-8")
	h, _, _ := newTestHost(t, HostOptions{})
	ctx := context.Background()
	if _, err := h.Scheduler(ctx, fullCluster("c1")); err != nil { // key_passphrase_env = HPCBOT_KEY_PASS
		t.Fatal(err)
	}
	if _, err := h.Runner(ctx, "c1", "fake", nil); err != nil {
		t.Fatal(err)
	}
	st := h.Plugins()
	if len(st) != 2 {
		t.Fatalf("%d plugins running, want 2", len(st))
	}
	for _, p := range st {
		env := environOf(t, p.PID)
		joined := strings.Join(env, "\n")
		for _, secret := range []string{"tok-secret", "pw-secret", "nc-secret", "other-secret"} {
			if strings.Contains(joined, secret) {
				t.Errorf("%s plugin's environment holds %q:\n%s", p.Kind, secret, joined)
			}
		}
		for _, want := range []string{"PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8", EnvHostPID + "=" + strconv.Itoa(os.Getpid())} {
			if !strings.Contains("\n"+joined+"\n", "\n"+want+"\n") {
				t.Errorf("%s plugin's environment lacks %s:\n%s", p.Kind, want, joined)
			}
		}
		hasPass := strings.Contains(joined, "HPCBOT_KEY_PASS=passphrase-for-c1")
		if p.Kind == PluginScheduler && !hasPass {
			t.Errorf("the scheduler plugin lacks its key_passphrase_env variable:\n%s", joined)
		}
		if p.Kind == PluginRunner && hasPass {
			t.Errorf("the runner plugin got the scheduler's key passphrase:\n%s", joined)
		}
	}
}

// TestPluginSocketPrivateAtUmaskZero: even when hpcbot runs with umask 0, a
// plugin's unix socket is in a folder only hpcbot's user can enter.
func TestPluginSocketPrivateAtUmaskZero(t *testing.T) {
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })
	h, _, _ := newTestHost(t, HostOptions{})
	if _, err := h.Scheduler(context.Background(), fullCluster("c1")); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	p := h.procs[0]
	h.mu.Unlock()
	p.mu.Lock()
	addr := p.cur.client.ReattachConfig().Addr
	p.mu.Unlock()
	if addr.Network() != "unix" {
		t.Fatalf("plugin listens on %s %s, want a unix socket", addr.Network(), addr)
	}
	sock := addr.String()
	dir := filepath.Dir(sock)
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 || fi.Mode()&os.ModeSticky != 0 {
		t.Errorf("socket %s is in %s of mode %v; want a private folder (0700)", sock, dir, fi.Mode())
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != os.Getuid() {
		t.Errorf("socket folder %s belongs to uid %d, not ours (%d)", dir, st.Uid, os.Getuid())
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("socket folder %s is still there after Close", dir)
	}
}
