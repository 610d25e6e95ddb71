package scheduler

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"hpcbot/plugins"
	"hpcbot/store"
)

// hookPoll answers every job with state, after running hook (which plays
// whatever happens while the poll is on the wire).
type hookPoll struct {
	plugins.Scheduler
	state plugins.State
	hook  func()
}

func (h *hookPoll) Poll(_ context.Context, jobs []plugins.JobRef) ([]plugins.JobStatus, error) {
	if h.hook != nil {
		h.hook()
	}
	out := make([]plugins.JobStatus, len(jobs))
	for i, j := range jobs {
		out[i] = plugins.JobStatus{JobID: j.JobID, State: h.state, Raw: string(h.state)}
	}
	return out, nil
}

// pollWorld is a scheduler with n running jobs on cluster loc, polled by hand.
func pollWorld(t *testing.T, n int, poll plugins.Scheduler) (*Scheduler, *store.Store, []uint64) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "hpcbot.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	u, err := st.CreateUser(store.User{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	for i := range n {
		c, err := st.CreateCalculation(store.Calculation{UserID: u.ID, InputName: "in.sh", Folder: fmt.Sprintf("f%d", i),
			Cluster: "loc", Argv: []string{"sh", "in.sh"}, Launch: plugins.LaunchBatch}, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		for _, to := range []store.State{store.StateStaged, store.StateSubmitted, store.StateRunning} {
			if _, err := st.Transition(c.ID, to, "", func(_ *store.Tx, c *store.Calculation) error {
				c.JobID, c.RawState = fmt.Sprint(1000+c.ID), "R"
				c.Progress.Accepted = true
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		ids = append(ids, c.ID)
	}
	cfg := Config{DownloadPath: t.TempDir(), FetchTime: FetchTime{Min: time.Hour, Max: time.Hour},
		Clusters: []ClusterConfig{{Cluster: plugins.Cluster{Label: "loc", Scheduler: "local", UploadPath: "/x"}, Runners: shRules}}}
	s, err := New(cfg, st, map[string]plugins.Scheduler{"loc": poll}, map[string][]plugins.Runner{"loc": {newShRunner(t, "loc")}}, newNotifier(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return s, st, ids
}

// lastStep returns calc id's state and its last history entry.
func lastStep(t *testing.T, st *store.Store, id uint64) (store.State, store.Transition) {
	t.Helper()
	c, err := st.Calc(id)
	if err != nil {
		t.Fatal(err)
	}
	return c.State, c.History[len(c.History)-1]
}

// TestPollCycleOneTransaction: the answers of one poll cycle are recorded in one
// store transaction, so every job that moved carries the same transition time
// (the store stamps a transaction's changes with one clock reading; separate
// transactions, each with its own fsync, read the clock apart).
func TestPollCycleOneTransaction(t *testing.T) {
	s, st, ids := pollWorld(t, 5, &hookPoll{state: plugins.StateSucceeded})
	s.pollPass(context.Background(), s.byLabel["loc"])
	var at time.Time
	for i, id := range ids {
		state, last := lastStep(t, st, id)
		if state != store.StateSucceeded || !strings.HasPrefix(last.Note, "job ") {
			t.Fatalf("calc %d: %s, last step %+v; want succeeded by the poll", id, state, last)
		}
		if i == 0 {
			at = last.At
		} else if !last.At.Equal(at) {
			t.Errorf("calc %d moved at %v, calc %d at %v: not one transaction", id, last.At, ids[0], at)
		}
	}
}

// TestPollCycleRollbackRecordsTheOthers: when the cycle's transaction fails
// (here a job is cancelled while the poll is on the wire, so its change is
// stale), nothing of it is kept, and each change is made again on its own: the
// other jobs' answers are recorded, the cancelled job stays cancelled.
func TestPollCycleRollbackRecordsTheOthers(t *testing.T) {
	poll := &hookPoll{state: plugins.StateSucceeded}
	s, st, ids := pollWorld(t, 3, poll)
	poll.hook = func() {
		if _, err := st.Transition(ids[1], store.StateCancelled, "cancelled by the user", nil); err != nil {
			t.Error(err)
		}
	}
	s.pollPass(context.Background(), s.byLabel["loc"])
	for i, id := range ids {
		state, last := lastStep(t, st, id)
		want, note := store.StateSucceeded, "job "
		if i == 1 {
			want, note = store.StateCancelled, "cancelled by the user"
		}
		if state != want || !strings.HasPrefix(last.Note, note) {
			t.Errorf("calc %d: %s, last step %q; want %s, %q", id, state, last.Note, want, note)
		}
	}
}

// scriptPoll answers every job with one status.
type scriptPoll struct {
	plugins.Scheduler
	mu sync.Mutex
	js plugins.JobStatus
}

func (p *scriptPoll) set(js plugins.JobStatus) { p.mu.Lock(); p.js = js; p.mu.Unlock() }

func (p *scriptPoll) Poll(_ context.Context, jobs []plugins.JobRef) ([]plugins.JobStatus, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]plugins.JobStatus, len(jobs))
	for i, j := range jobs {
		out[i] = p.js
		out[i].JobID = j.JobID
	}
	return out, nil
}

// watcher is a Notifier that counts Changed calls.
type watcher struct {
	*notifier
	mu      sync.Mutex
	changes map[uint64]int
}

func (w *watcher) Changed(id uint64) { w.mu.Lock(); w.changes[id]++; w.mu.Unlock() }

func (w *watcher) take() map[uint64]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.changes
	w.changes = map[uint64]int{}
	return c
}

// TestPollRecordsPendingReason: the scheduler's pending reason is recorded in
// Progress.Reason when it changes, and so is the job's node in
// Progress.Node; a Watcher hears of each recorded change; an answer that
// changes nothing writes nothing and tells nothing; the reason is dropped once
// the job runs, both once it ended.
func TestPollRecordsPendingReason(t *testing.T) {
	poll := &scriptPoll{}
	s, st, ids := pollWorld(t, 2, poll)
	w := &watcher{notifier: newNotifier(), changes: map[uint64]int{}}
	s.notifier = w
	for _, id := range ids { // back to the queue: submitted, as after a requeue
		if _, err := st.UpdateCalc(id, func(_ *store.Tx, c *store.Calculation) error { c.RawState = "PD"; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	c := s.byLabel["loc"]
	step := func(js plugins.JobStatus, wantReason string, wantChanges int) {
		t.Helper()
		poll.set(js)
		s.pollPass(context.Background(), c)
		got := w.take()
		for _, id := range ids {
			calc, err := st.Calc(id)
			if err != nil {
				t.Fatal(err)
			}
			if calc.Progress.Reason != wantReason || got[id] != wantChanges {
				t.Fatalf("after %+v: calc %d has reason %q and %d changes told; want %q and %d",
					js, id, calc.Progress.Reason, got[id], wantReason, wantChanges)
			}
		}
	}
	step(plugins.JobStatus{State: plugins.StateRunning, Raw: "PD", Reason: "Priority"}, "Priority", 1)
	step(plugins.JobStatus{State: plugins.StateRunning, Raw: "PD", Reason: "Priority"}, "Priority", 0)
	step(plugins.JobStatus{State: plugins.StateRunning, Raw: "PD", Reason: "Resources"}, "Resources", 1)
	step(plugins.JobStatus{State: plugins.StateRunning, Raw: "R"}, "", 1)
	step(plugins.JobStatus{State: plugins.StateRunning, Raw: "R"}, "", 0)
	node := func(want string) {
		t.Helper()
		for _, id := range ids {
			if c, err := st.Calc(id); err != nil || c.Progress.Node != want {
				t.Fatalf("calc %d: node %q (%v), want %q", id, c.Progress.Node, err, want)
			}
		}
	}
	step(plugins.JobStatus{State: plugins.StateRunning, Raw: "R", Node: "node07"}, "", 1)
	node("node07")
	step(plugins.JobStatus{State: plugins.StateRunning, Raw: "R", Node: "node07"}, "", 0)
	step(plugins.JobStatus{State: plugins.StateSucceeded, Raw: "CD", Reason: "done", Node: "node07"}, "", 1)
	node("")
}
