package detached_test

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"hpcbot/internal/testbed"
	"hpcbot/plugins"
)

// TestLocalRunAs: with run_as, a calculation of the local plugin runs as that
// account (queued under max_jobs, cancelled, fetched) and cannot read hpcbot's
// files; nothing of hpcbot's environment reaches it.
func TestLocalRunAs(t *testing.T) {
	name := os.Getenv(testbed.EnvUser)
	if name == "" {
		name = "hpctest"
	}
	u, err := user.Lookup(name)
	testbed.Require(t, "run_as account "+name+" (scripts/testbed.sh start creates it)", err == nil)
	testbed.Require(t, "root, to switch to another user", os.Geteuid() == 0)
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	upload, err := os.MkdirTemp("", "hpcbot-runas-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(upload) })
	if err := os.Chown(upload, uid, gid); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "hpcbot.db")
	if err := os.WriteFile(secret, []byte("the store"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HPCBOT_TOKEN", "123:tok-secret")

	b := &bed{t: t, upload: filepath.Join(upload, "calcs"), clock: &fakeClock{now: time.Unix(1_800_000_000, 0)}}
	b.c = plugins.Cluster{Label: "loc", Scheduler: "local", UploadPath: b.upload, MaxJobs: 1, RunAs: name}
	b.s = b.restart()
	b.stage("who", map[string]string{"in.inp": "x"})
	job := b.submit("who", "sh", "-c", "id -un >who.out; env >env.out; cat "+secret+" >steal.out 2>&1; exit 0")
	if st := b.waitFinal(job); st.State != plugins.StateSucceeded {
		t.Fatalf("status %+v", st)
	}
	local := filepath.Join(t.TempDir(), "res")
	res, err := b.s.Fetch(ctxT(t), plugins.FetchRequest{Folder: "who", LocalDir: local})
	if err != nil {
		t.Fatal(err)
	}
	read := func(f string) string {
		data, err := os.ReadFile(filepath.Join(local, f))
		if err != nil {
			t.Fatalf("%v (fetched %q)", err, res.Files)
		}
		return string(data)
	}
	if who := strings.TrimSpace(read("who.out")); who != name {
		t.Errorf("the job ran as %q, want %q", who, name)
	}
	if env := read("env.out"); strings.Contains(env, "HPCBOT_") || !strings.Contains(env, "HOME="+u.HomeDir+"\n") {
		t.Errorf("job environment:\n%s", env)
	}
	if steal := read("steal.out"); strings.Contains(steal, "the store") || !strings.Contains(steal, "Permission denied") {
		t.Errorf("the job's attempt on hpcbot's store: %q", steal)
	}

	// Queued behind a running job, then cancelled while running: both as the account.
	b.stage("slow", map[string]string{"x": ""})
	b.stage("next", map[string]string{"x": ""})
	slow := b.submit("slow", "sh", "-c", "sleep 60")
	next := b.submit("next", "sh", "-c", "id -un >who.out")
	b.waitFor(slow, "running", func(s plugins.JobStatus) bool { return s.State == plugins.StateRunning })
	if st := b.poll(next)[0]; st.State != plugins.StatePending {
		t.Errorf("second job with max_jobs 1: %+v, want pending", st)
	}
	if err := b.s.Cancel(ctxT(t), slow); err != nil {
		t.Fatal(err)
	}
	if st := b.waitFinal(slow); st.State != plugins.StateCancelled {
		t.Errorf("cancelled job: %+v", st)
	}
	if st := b.waitFinal(next); st.State != plugins.StateSucceeded {
		t.Errorf("queued job: %+v", st)
	}
	if data, err := os.ReadFile(b.path("next", "who.out")); err != nil || strings.TrimSpace(string(data)) != name {
		t.Errorf("queued job ran as %q (%v), want %q", data, err, name)
	}
	if err := b.s.Cleanup(ctxT(t), "who"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b.path("who", "")); !os.IsNotExist(err) {
		t.Errorf("folder still there after cleanup: %v", err)
	}
}
