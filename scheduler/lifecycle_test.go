package scheduler

import (
	"archive/zip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"hpcbot/plugins"
	"hpcbot/store"
)

// The whole way of a calculation with the local plugin, the command runner and a
// fake Nextcloud: accepted, staged, submitted, running, succeeded, retrieved,
// delivered as a public link, notified; one message per event.
func TestLifecycleCloud(t *testing.T) {
	b := newBed(t, withCloud("per_calculation"))
	b.start()
	c := b.submit("job.sh", waitScript("echo 42 > result.txt; echo done"), "")

	running := b.waitState(c.ID, store.StateRunning)
	if running.JobID == "" {
		t.Fatalf("running without a job id: %+v", running)
	}
	if got := b.notes.of(c.ID, EventAccepted); len(got) != 1 || got[0].Calc.JobID != running.JobID || got[0].Calc.Cluster != "loc" {
		t.Fatalf("accepted notices: %+v", got)
	}
	b.release(c)
	done := b.waitState(c.ID, store.StateNotified, store.StateError)
	want := []store.State{store.StateReceived, store.StateStaged, store.StateSubmitted, store.StateRunning,
		store.StateSucceeded, store.StateRetrieved, store.StateDelivered, store.StateNotified}
	if got := states(done); !slices.Equal(got, want) {
		t.Fatalf("history %s, want %v", history(done), want)
	}
	if done.ExitCode == nil || *done.ExitCode != 0 {
		t.Fatalf("exit code %v", done.ExitCode)
	}
	fin := b.notes.of(c.ID, EventFinished)
	if len(fin) != 1 {
		t.Fatalf("finished notices: %+v", fin)
	}
	n := fin[0]
	if n.Link == "" || n.Link != done.ShareLink || n.Outcome != store.StateSucceeded || len(n.Files) != 0 || n.Code != "" {
		t.Fatalf("finished notice: %+v", n)
	}
	if !strings.Contains(n.Link, "/s/") {
		t.Fatalf("link %q is not a public share link", n.Link)
	}
	got, err := b.nc.ReadFile("hpc_results/" + c.Folder + "/result.txt")
	if err != nil || string(got) != "42\n" {
		t.Fatalf("result in the cloud: %q, %v", got, err)
	}
	if _, err := b.nc.ReadFile("hpc_results/" + c.Folder + "/" + jobName(c.ID) + ".out"); err != nil {
		t.Fatalf("job output not uploaded: %v", err)
	}
	if shares := b.nc.Shares(); len(shares) != 1 {
		t.Fatalf("shares: %v", shares)
	}
	if r := b.notes.repeated(); len(r) > 0 {
		t.Fatalf("Notify called again for %v", r)
	}
	if n := b.faults["loc"].launched(c.ID); n != 1 {
		t.Fatalf("%d launches", n)
	}
}

// A failed job delivers its outputs too (several files: one zip for the bot),
// with its exit code and the tail of its error output.
func TestFailedJobDeliversOutputs(t *testing.T) {
	b := newBed(t)
	b.start()
	c := b.submit("bad.sh", "echo partial > part.txt\necho 'line one' >&2\necho 'SCF did not converge' >&2\nexit 3\n", "")
	done := b.waitState(c.ID, store.StateNotified, store.StateError)
	if done.State != store.StateNotified || !slices.Contains(states(done), store.StateFailed) {
		t.Fatalf("history %s", history(done))
	}
	if done.ExitCode == nil || *done.ExitCode != 3 {
		t.Fatalf("exit code %v", done.ExitCode)
	}
	fin := b.notes.of(c.ID, EventFinished)
	if len(fin) != 1 {
		t.Fatalf("finished notices %+v", fin)
	}
	n := fin[0]
	if n.Outcome != store.StateFailed || !strings.Contains(n.Tail, "SCF did not converge") || len(n.Files) != 1 {
		t.Fatalf("notice %+v", n)
	}
	if !strings.HasSuffix(n.Files[0], "bad_results.zip") {
		t.Fatalf("files %v", n.Files)
	}
	names := zipNames(t, n.Files[0])
	for _, want := range []string{"part.txt", jobName(c.ID) + ".err", jobName(c.ID) + ".out"} {
		if !slices.Contains(names, want) {
			t.Fatalf("zip has %v, not %s", names, want)
		}
	}
	if slices.Contains(names, "bad.sh") {
		t.Fatalf("zip holds the input: %v", names)
	}
}

func zipNames(t *testing.T, path string) []string {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var names []string
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatalf("zip entry %s: %v", f.Name, err)
		}
		rc.Close()
		names = append(names, f.Name)
	}
	return names
}

// One result file is sent as it is; results above the upload limit stay on the
// cluster and the user is told where.
func TestFilesWithoutCloud(t *testing.T) {
	b := newBed(t)
	b.cfg.ExtensionsWhitelist = []string{".dat"}
	b.start(WithUploadLimit(1000))
	small := b.submit("small.sh", "echo tiny > r.dat", "")
	big := b.submit("big.sh", "head -c 5000 /dev/zero > big.dat", "")
	for _, c := range []store.Calculation{small, big} {
		b.waitState(c.ID, store.StateNotified)
	}
	// small: r.dat plus the job's (empty) .out and .err; several files → zip.
	ns := b.notes.of(small.ID, EventFinished)[0]
	if len(ns.Files) != 1 || ns.Code != "" {
		t.Fatalf("small: %+v", ns)
	}
	nb := b.notes.of(big.ID, EventFinished)[0]
	if len(nb.Files) != 0 || nb.Code != CodeTooLarge || !strings.HasPrefix(nb.Where, "loc:") || !strings.HasSuffix(nb.Where, big.Folder) {
		t.Fatalf("big: %+v", nb)
	}
}

// Cancel: a calculation waiting at intake ends at once (no job); a queued job
// and a running job are stopped on the cluster and their outputs delivered.
func TestCancel(t *testing.T) {
	b := newBed(t, func(b *bed) { b.addLocal("loc", 1) })
	b.start()
	f := b.faults["loc"]

	// Running job, and a second one queued behind it (max_jobs 1).
	run := b.submit("run.sh", waitScript("echo never"), "")
	b.waitState(run.ID, store.StateRunning)
	queued := b.submit("queued.sh", "echo queued-ran > q.txt", "")
	b.waitState(queued.ID, store.StateSubmitted, store.StatePending)

	// A third that cannot even be staged.
	f.set("stage", errDown)
	early := b.submit("early.sh", "echo never", "")
	until(t, func() string { return "stage attempts" }, func() bool { return f.count("stage") >= 1 })

	for _, c := range []store.Calculation{early, queued, run} {
		if err := b.s.Cancel(context.Background(), c.ID); err != nil {
			t.Fatalf("cancel %d: %v", c.ID, err)
		}
	}
	e := b.waitState(early.ID, store.StateNotified)
	if e.JobID != "" || len(b.notes.of(early.ID, EventCancelled)) != 1 || len(b.notes.of(early.ID, EventFinished)) != 0 {
		t.Fatalf("early: %s, notices %+v", history(e), b.notes.got)
	}
	if f.launched(early.ID) != 0 {
		t.Fatal("a cancelled calculation was submitted")
	}
	for _, c := range []store.Calculation{queued, run} {
		d := b.waitState(c.ID, store.StateNotified)
		fin := b.notes.of(c.ID, EventFinished)
		if len(fin) != 1 || fin[0].Outcome != store.StateCancelled {
			t.Fatalf("calc %d: %s, notices %+v", c.ID, history(d), fin)
		}
	}
	if _, err := os.Stat(filepath.Join(b.remote(queued), "q.txt")); err == nil {
		t.Fatal("the cancelled queued job ran")
	}
	if err := b.s.Cancel(context.Background(), run.ID); !errors.Is(err, ErrFinished) {
		t.Fatalf("cancel of a finished calculation: %v", err)
	}
}

// A Submit racing with Cancel must not leave a running job.
func TestCancelDuringSubmit(t *testing.T) {
	b := newBed(t)
	b.start()
	f := b.faults["loc"]
	release := f.hold("submit")
	defer release()
	c := b.submit("race.sh", waitScript("echo ran > ran.txt"), "")
	until(t, func() string { return "submit call" }, func() bool { return f.count("submit") == 1 })
	if err := b.s.Cancel(context.Background(), c.ID); err != nil {
		t.Fatal(err)
	}
	release()
	d := b.waitState(c.ID, store.StateNotified)
	if !slices.Contains(states(d), store.StateCancelled) {
		t.Fatalf("history %s", history(d))
	}
	if f.count("cancel") == 0 {
		t.Fatal("the job submitted during the cancel was never cancelled")
	}
	b.waitJobGone(d)
	b.release(d)
	if _, err := os.Stat(filepath.Join(b.remote(c), "ran.txt")); err == nil {
		t.Fatal("job ran after cancel")
	}
}

// An unreachable cluster: the calculation waits (the user is told once), goes on
// when the cluster is back (resumed), and is delivered.
func TestUnreachableThenBack(t *testing.T) {
	b := newBed(t)
	b.start()
	f := b.faults["loc"]
	f.set("stage", errDown)
	c := b.submit("w.sh", "echo ok > ok.txt", "")
	until(t, func() string { return "retries" }, func() bool { return f.count("stage") >= 4 })
	w := b.notes.of(c.ID, EventWaiting)
	if len(w) != 1 || w[0].Code != CodeClusterUnreachable || w[0].Since.IsZero() || !strings.Contains(w[0].Reason, "connection refused") {
		t.Fatalf("waiting notices %+v", w)
	}
	mid, _ := b.st.Calc(c.ID)
	if mid.State != store.StateReceived || mid.Attempts < 3 || !mid.WaitNotified {
		t.Fatalf("while waiting: %+v", mid)
	}
	f.set("stage", nil)
	d := b.waitState(c.ID, store.StateNotified)
	if d.Attempts != 0 || !d.WaitingSince.IsZero() {
		t.Fatalf("bookkeeping not cleared: %+v", d)
	}
	if len(b.notes.of(c.ID, EventResumed)) != 1 || len(b.notes.of(c.ID, EventWaiting)) != 1 {
		t.Fatalf("notices %+v", b.notes.got)
	}
	if r := b.notes.repeated(); len(r) > 0 {
		t.Fatalf("Notify repeated: %v", r)
	}
}

// Past give_up_after a waiting calculation ends in error, told once.
func TestGiveUp(t *testing.T) {
	b := newBed(t)
	b.cfg.GiveUpAfter = 150 * time.Millisecond
	b.start()
	b.faults["loc"].set("stage", errDown)
	c := b.submit("g.sh", "echo", "")
	d := b.waitError(c.ID)
	errs := b.notes.of(c.ID, EventError)
	if len(errs) != 1 || errs[0].Code != CodeGaveUp || !strings.Contains(errs[0].Reason, "cluster unreachable since") {
		t.Fatalf("error notices %+v (calc %+v)", errs, d)
	}
	if len(b.notes.of(c.ID, EventWaiting)) != 1 {
		t.Fatalf("waiting notices %+v", b.notes.of(c.ID, EventWaiting))
	}
}

// A refused login is permanent: error at once, the cluster marked not usable.
func TestAuthErrorIsPermanent(t *testing.T) {
	b := newBed(t)
	b.start()
	f := b.faults["loc"]
	f.set("stage", errAuth)
	c := b.submit("a.sh", "echo", "")
	d := b.waitError(c.ID)
	if f.count("stage") != 1 || d.Attempts != 0 {
		t.Fatalf("retried a refused login: %d stage calls, %+v", f.count("stage"), d)
	}
	errs := b.notes.of(c.ID, EventError)
	if len(errs) != 1 || errs[0].Code != CodeAuthFailed || !strings.Contains(errs[0].Reason, "unable to authenticate") {
		t.Fatalf("error notices %+v", errs)
	}
	info := b.s.Clusters()
	if len(info) != 1 || info[0].Usable || info[0].Reason == "" || len(info[0].Programs) != 1 {
		t.Fatalf("clusters %+v", info)
	}
}

// A job whose end the cluster cannot tell is never called succeeded.
func TestOutcomeUnknown(t *testing.T) {
	b := newBed(t)
	f := b.faults["loc"]
	f.pollHook = func(st []plugins.JobStatus) []plugins.JobStatus {
		for i := range st {
			if st[i].State.Final() {
				st[i] = plugins.JobStatus{JobID: st[i].JobID, State: plugins.StateUnknown, Raw: "gone"}
			}
		}
		return st
	}
	b.start()
	c := b.submit("u.sh", "echo fine > f.txt", "")
	d := b.waitState(c.ID, store.StateNotified)
	n := b.notes.of(c.ID, EventFinished)[0]
	if n.Outcome != store.StateFailed || n.Code != CodeOutcomeUnknown || d.ExitCode != nil {
		t.Fatalf("notice %+v, calc %s", n, history(d))
	}
}

// A panic in a worker is recovered and the worker goes on.
func TestWorkerPanicRecovered(t *testing.T) {
	b := newBed(t)
	b.faults["loc"].panics = 1
	b.start()
	c := b.submit("p.sh", "echo ok > ok.txt", "")
	b.waitState(c.ID, store.StateNotified)
}

// Graceful stop: a step hanging on the cluster is abandoned, Run returns, and
// the next Run redoes the step.
func TestStopAbandonsHangingStep(t *testing.T) {
	b := newBed(t)
	b.opts = append(b.opts, WithStopGrace(50*time.Millisecond))
	b.start()
	f := b.faults["loc"]
	release := f.hold("stage")
	c := b.submit("h.sh", "echo ok > ok.txt", "")
	until(t, func() string { return "stage call" }, func() bool { return f.count("stage") == 1 })
	b.stop()
	if got, _ := b.st.Calc(c.ID); got.State != store.StateReceived || got.Attempts != 0 || len(b.notes.of(c.ID, EventWaiting)) != 0 {
		t.Fatalf("after stop: %+v", got)
	}
	release()
	b.start()
	b.waitState(c.ID, store.StateNotified)
}

// An admin's retry (error → received) runs the calculation again; the new
// round's messages have keys of their own, so the bot does not drop them.
func TestAdminRetry(t *testing.T) {
	b := newBed(t)
	b.start()
	f := b.faults["loc"]
	f.set("stage", errAuth)
	c := b.submit("r.sh", "echo r > r.txt", "")
	b.waitError(c.ID)
	f.set("stage", nil)
	if _, err := b.st.Transition(c.ID, store.StateReceived, "admin retry", nil); err != nil {
		t.Fatal(err)
	}
	b.s.Wake(c.ID)
	d := b.waitState(c.ID, store.StateNotified)
	fin := b.notes.of(c.ID, EventFinished)
	if len(fin) != 1 || fin[0].Key != notifyKey(d, EventFinished) || !strings.HasSuffix(fin[0].Key, "/r2") {
		t.Fatalf("finished %+v", fin)
	}
	if acc := b.notes.of(c.ID, EventAccepted); len(acc) != 1 || !strings.HasSuffix(acc[0].Key, "/r2") {
		t.Fatalf("accepted %+v", acc)
	}
	if d.Progress.ErrorCode != "" || d.Progress.ErrorNotified {
		t.Fatalf("last round's bookkeeping kept: %+v", d.Progress)
	}
}
