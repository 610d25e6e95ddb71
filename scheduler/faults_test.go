package scheduler

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"hpcbot/plugins"
	"hpcbot/scheduler/nextcloud"
	"hpcbot/scheduler/nextcloud/nctest"
	"hpcbot/store"
)

// Two clusters, the first unreachable: a calculation routed to it fails over to
// the second at intake, and the second keeps working while the first is down.
func TestFailoverAndIndependentClusters(t *testing.T) {
	b := newBed(t, withClusters("first", "second"))
	b.start()
	// A job running on the first cluster before it goes down.
	early := b.submit("early.sh", waitScript("echo early > e.txt"), "")
	b.waitState(early.ID, store.StateRunning)
	if early.Cluster != "first" {
		t.Fatalf("routed to %s", early.Cluster)
	}

	down := b.faults["first"]
	down.set("stage", errDown)
	down.set("poll", errDown)
	late := b.submit("late.sh", "echo late > l.txt", "")
	if late.Cluster != "first" {
		t.Fatalf("routed to %s", late.Cluster)
	}
	d := b.waitState(late.ID, store.StateNotified)
	if d.Cluster != "second" || d.Progress.FailoverFrom != "first" {
		t.Fatalf("no failover: %+v", d)
	}
	if !strings.Contains(history(d), "after failover from first") {
		t.Fatalf("history does not record the failover: %s", history(d))
	}
	events, err := b.st.Events(d.Created, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(events, func(e store.Event) bool { return e.Action == actionFailover && e.Subject == d.Subject() }) {
		t.Fatalf("no failover event in %+v", events)
	}
	// Meanwhile the first cluster's job was never given up nor finished.
	if e, _ := b.st.Calc(early.ID); e.State != store.StateRunning {
		t.Fatalf("early: %s", history(e))
	}
	// A new calculation goes straight to the healthy cluster's worker after failing over.
	third := b.submit("third.sh", "echo 3 > t.txt", "")
	if d := b.waitState(third.ID, store.StateNotified); d.Cluster != "second" {
		t.Fatalf("third on %s", d.Cluster)
	}
	// The first comes back; its job is finished and delivered.
	down.set("stage", nil)
	down.set("poll", nil)
	// Its owner was told once that the cluster cannot be reached, and that it went on.
	until(t, func() string { return "waiting notice for the running job" }, func() bool { return len(b.notes.of(early.ID, EventWaiting)) == 1 })
	if w := b.notes.of(early.ID, EventWaiting)[0]; w.Code != CodeClusterUnreachable {
		t.Fatalf("waiting %+v", w)
	}
	b.release(early)
	b.waitState(early.ID, store.StateNotified)
	if len(b.notes.of(early.ID, EventResumed)) != 1 || len(b.notes.of(early.ID, EventWaiting)) != 1 {
		t.Fatalf("notices of the job on the failed cluster: %+v", b.notes.got)
	}
	if b.faults["second"].launched(d.ID) != 1 || down.launched(d.ID) != 0 {
		t.Fatal("launch counts wrong after failover")
	}
}

// Failover can be switched off per runner rule.
func TestNoFailoverWhenForbidden(t *testing.T) {
	b := newBed(t, withClusters("first", "second"))
	no := false
	b.cfg.Clusters[0].Failover = &no
	b.start()
	b.faults["first"].set("stage", errDown)
	c := b.submit("x.sh", "echo", "")
	until(t, func() string { return "waiting notice" }, func() bool { return len(b.notes.of(c.ID, EventWaiting)) == 1 })
	if got, _ := b.st.Calc(c.ID); got.Cluster != "first" || got.State != store.StateReceived {
		t.Fatalf("moved although failover = false: %+v", got)
	}
}

// WebDAV answering 500 makes the delivery fail, not the calculation: it waits
// in delivery_failed (told once as cloud_unavailable, with how the job ended),
// is retried, then delivered.
func TestCloud500ThenOK(t *testing.T) {
	b := newBed(t, withCloud("per_calculation"))
	b.nc.FailNext(4, http.StatusInternalServerError)
	b.start()
	c := b.submit("c.sh", "echo r > r.txt", "")
	d := b.waitState(c.ID, store.StateNotified, store.StateError)
	if d.State != store.StateNotified || d.ShareLink == "" {
		t.Fatalf("%s %q", history(d), d.Error)
	}
	w := b.notes.of(c.ID, EventDeliveryFailed)
	if len(w) != 1 || w[0].Code != CodeCloudUnavailable || !strings.Contains(w[0].Reason, "500") || w[0].Outcome != store.StateSucceeded {
		t.Fatalf("delivery failed notices %+v", w)
	}
	if !strings.Contains(history(d), string(store.StateDeliveryFailed)) {
		t.Fatalf("never in delivery_failed: %s", history(d))
	}
}

// A full Nextcloud account (507) holds the results in delivery_failed, retried
// with backoff (never an error: the results are there); once an admin makes
// room, the next try delivers them.
func TestCloudFullIsRetried(t *testing.T) {
	b := newBed(t, withCloud("per_calculation"))
	b.nc.SetQuota(1)
	b.start()
	c := b.submit("q.sh", "echo result-bigger-than-quota > r.txt", "")
	var d store.Calculation
	until(t, func() string { return "retries of a full cloud: " + history(d) }, func() bool {
		d, _ = b.st.Calc(c.ID)
		return d.State == store.StateDeliveryFailed && d.Attempts >= 3 && !d.Progress.DeliveryHeld
	})
	df := b.notes.of(c.ID, EventDeliveryFailed)
	if len(df) != 1 || df[0].Code != CodeCloudUnavailable || !strings.Contains(df[0].Reason, "507") {
		t.Fatalf("delivery failed notices %+v, calc %s", df, history(d))
	}
	b.nc.SetQuota(0)
	d = b.waitState(c.ID, store.StateNotified, store.StateError)
	if d.State != store.StateNotified || d.ShareLink == "" || len(b.notes.of(c.ID, EventError)) != 0 {
		t.Fatalf("%s %q", history(d), d.Error)
	}
}

// per_user: one public share of the user's folder, links into it per calculation.
func TestCloudPerUserShare(t *testing.T) {
	b := newBed(t, withCloud("per_user"))
	b.start()
	c1 := b.submit("a.sh", "echo a > a.txt", "")
	c2 := b.submit("b.sh", "echo b > b.txt", "")
	d1 := b.waitState(c1.ID, store.StateNotified)
	d2 := b.waitState(c2.ID, store.StateNotified)
	if shares := b.nc.Shares(); len(shares) != 1 {
		t.Fatalf("shares %v", shares)
	}
	for _, d := range []store.Calculation{d1, d2} {
		if !strings.Contains(d.ShareLink, "path=%2F"+d.Folder) {
			t.Fatalf("link %q does not lead into %s", d.ShareLink, d.Folder)
		}
		if _, err := b.nc.ReadFile(fmt.Sprintf("hpc_results/user_%d/%s/%s.out", b.user.ID, d.Folder, jobName(d.ID))); err != nil {
			t.Fatal(err)
		}
	}
}

// A nearly full disk: results that do not fit are skipped with a reason, and
// the rest is delivered.
func TestDiskNearlyFull(t *testing.T) {
	b := newBed(t)
	b.start(WithDiskReserve(1000), WithFreeSpace(func(string) (int64, error) { return 1000 + 2048, nil }))
	c := b.submit("d.sh", "echo small > a.txt\nhead -c 100000 /dev/zero > b.txt\n", "")
	b.waitState(c.ID, store.StateNotified)
	n := b.notes.of(c.ID, EventFinished)[0]
	if !slices.Contains(n.Skipped, store.SkippedFile{Path: "b.txt", Code: plugins.SkipLimitReached}) {
		t.Fatalf("skipped %v", n.Skipped)
	}
	if len(n.Files) != 1 {
		t.Fatalf("files %v", n.Files)
	}
}

// A full disk: fetching waits (fetch_failed, told once) until there is room.
func TestDiskFullWaits(t *testing.T) {
	b := newBed(t)
	var free atomic.Int64
	b.start(WithDiskReserve(1000), WithFreeSpace(func(string) (int64, error) { return free.Load(), nil }))
	c := b.submit("f.sh", "echo r > r.txt", "")
	until(t, func() string { return "waiting notice" }, func() bool { return len(b.notes.of(c.ID, EventWaiting)) == 1 })
	w := b.notes.of(c.ID, EventWaiting)[0]
	if w.Code != CodeFetchFailed || !strings.Contains(w.Reason, "disk is full") {
		t.Fatalf("waiting %+v", w)
	}
	if got, _ := b.st.Calc(c.ID); !got.State.Ended() {
		t.Fatalf("state %s", got.State)
	}
	free.Store(1 << 30)
	b.waitState(c.ID, store.StateNotified)
}

// ENOSPC while fetching (the disk filled up during the copy) waits too.
func TestFetchENOSPC(t *testing.T) {
	b := newBed(t)
	f := b.faults["loc"]
	f.set("fetch", &plugins.Error{Kind: plugins.KindTransient, Msg: "get r.txt", Err: &os.PathError{Op: "write", Path: "r.txt", Err: syscall.ENOSPC}})
	b.start()
	c := b.submit("e.sh", "echo r > r.txt", "")
	until(t, func() string { return "waiting notice" }, func() bool { return len(b.notes.of(c.ID, EventWaiting)) == 1 })
	if w := b.notes.of(c.ID, EventWaiting)[0]; w.Code != CodeFetchFailed {
		t.Fatalf("waiting %+v", w)
	}
	f.set("fetch", nil)
	b.waitState(c.ID, store.StateNotified)
}

// Fetch that is refused permanently ends in error with fetch_failed.
func TestFetchPermanent(t *testing.T) {
	b := newBed(t)
	b.faults["loc"].set("fetch", plugins.Errorf(plugins.KindNotFound, "list /x: no such folder"))
	b.start()
	c := b.submit("n.sh", "echo", "")
	b.waitError(c.ID)
	if e := b.notes.of(c.ID, EventError); len(e) != 1 || e[0].Code != CodeFetchFailed {
		t.Fatalf("%+v", e)
	}
}

// cleanup = true removes the remote folder after the user was told.
func TestCleanupAfterDelivery(t *testing.T) {
	b := newBed(t)
	b.cfg.Clusters[0].Cleanup = true
	b.start()
	c := b.submit("k.sh", "echo r > r.txt", "")
	b.waitState(c.ID, store.StateNotified)
	until(t, func() string { return "remote folder still there" }, func() bool {
		_, err := os.Stat(b.remote(c))
		return os.IsNotExist(err)
	})
}

// Housekeeping removes local folders of calculations that ended before the
// retention, and nothing outside download_path.
func TestHousekeepingRetention(t *testing.T) {
	b := newBed(t)
	b.cfg.Retention = 24 * time.Hour
	b.start()
	c := b.submit("old.sh", "echo r > r.txt", "")
	d := b.waitState(c.ID, store.StateNotified)
	b.stop()
	outside := filepath.Join(t.TempDir(), "keep")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	later := d.History[len(d.History)-1].At.Add(48 * time.Hour)
	s, err := New(b.cfg, b.st, b.scheds, b.runners, b.notes, testLogger(t), WithClock(func() time.Time { return later }))
	if err != nil {
		t.Fatal(err)
	}
	if !s.ownFolder(d.LocalDir) || s.ownFolder(outside) || s.ownFolder(s.downloadPath) {
		t.Fatal("ownFolder")
	}
	s.housekeep(context.Background())
	if _, err := os.Stat(d.LocalDir); !os.IsNotExist(err) {
		t.Fatalf("old folder kept: %v", err)
	}
	if _, err := os.Stat(outside); err != nil {
		t.Fatal(err)
	}
}

// A chunked upload cut off by a restart resumes from the stored progress: the
// chunks already on the server are not sent again.
func TestChunkedUploadResumesAfterRestart(t *testing.T) {
	b := newBed(t, withCloud("per_calculation"))
	b.cfg.ExtensionsWhitelist = []string{".dat"}
	nc, err := nextcloud.New(nextcloud.Options{URL: b.nc.URL, User: b.nc.User, Password: b.nc.Password,
		BasePath: "hpc_results", ChunkThreshold: 6 << 20, ChunkSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	b.opts = append(b.opts, WithNextcloud(nc), WithStopGrace(0))
	// The second chunk hangs: the run is stopped while it is in flight.
	b.nc.Inject(nctest.Fault{Method: http.MethodPut, PathPrefix: "/remote.php/dav/uploads/", Skip: 1, Hang: true})
	b.start()
	c := b.submit("big.sh", "head -c 12000000 /dev/urandom > big.dat", "")
	select {
	case <-b.nc.Hung():
	case <-time.After(waitLimit):
		t.Fatal("no chunk hung")
	}
	b.stop()
	mid, _ := b.st.Calc(c.ID)
	state, err := nextcloud.DecodeUploadState(mid.Progress.Upload)
	if err != nil || mid.State != store.StateRetrieved || state["big.dat"].ChunksDone != 1 {
		t.Fatalf("after the stop: %s, upload state %+v (%v)", history(mid), state, err)
	}
	b.nc.ReleaseAll()
	b.start()
	d := b.waitState(c.ID, store.StateNotified)
	if d.Progress.Upload != nil {
		t.Fatalf("upload state left behind: %s", d.Progress.Upload)
	}
	chunk1 := 0
	for _, r := range b.nc.Requests() {
		if r.Method == http.MethodPut && strings.HasSuffix(r.Path, "/00001") {
			chunk1++
		}
	}
	if chunk1 != 1 {
		t.Fatalf("chunk 1 sent %d times", chunk1)
	}
	local, err := os.ReadFile(filepath.Join(d.LocalDir, "big.dat"))
	if err != nil {
		t.Fatal(err)
	}
	remote, err := b.nc.ReadFile("hpc_results/" + d.Folder + "/big.dat")
	if err != nil || !bytes.Equal(local, remote) {
		t.Fatalf("uploaded file differs (%d vs %d bytes): %v", len(remote), len(local), err)
	}
}

// Polls failing past give_up_after end the running calculation in error.
func TestPollGiveUp(t *testing.T) {
	b := newBed(t)
	b.cfg.GiveUpAfter = 200 * time.Millisecond
	b.start()
	c := b.submit("p.sh", waitScript("echo"), "")
	b.waitState(c.ID, store.StateRunning)
	b.faults["loc"].set("poll", errDown)
	d := b.waitError(c.ID)
	if e := b.notes.of(c.ID, EventError); len(e) != 1 || e[0].Code != CodeGaveUp || !strings.Contains(e[0].Reason, "poll loc") {
		t.Fatalf("%+v, %s", e, history(d))
	}
	b.faults["loc"].set("poll", nil)
	b.release(c)
}

// A cluster whose transfers hang holds at most half the delivery workers:
// another cluster's results are still delivered.
func TestSlowFetchDoesNotBlockOtherCluster(t *testing.T) {
	b := newBed(t, withClusters("slow", "fast"))
	b.opts = append(b.opts, WithDeliveryWorkers(2))
	b.start()
	release := b.faults["slow"].hold("fetch")
	defer release()
	var stuck []store.Calculation
	for i := range 3 {
		stuck = append(stuck, b.submit(fmt.Sprintf("s%d.sh", i), "echo s > s.txt", ""))
	}
	until(t, func() string { return "fetch from the slow cluster" }, func() bool { return b.faults["slow"].count("fetch") >= 1 })
	b.faults["slow"].set("stage", errDown) // new work fails over to the fast cluster
	fast := b.submit("f.sh", "echo f > f.txt", "")
	if d := b.waitState(fast.ID, store.StateNotified); d.Cluster != "fast" {
		t.Fatalf("on %s", d.Cluster)
	}
	release()
	for _, c := range stuck {
		b.waitState(c.ID, store.StateNotified)
	}
}
