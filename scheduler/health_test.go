package scheduler

import (
	"testing"
	"time"

	"hpcbot/plugins"
	"hpcbot/store"
)

// Health reports polls, submissions, calculations by state, the drain and an
// outage with its start.
func TestHealth(t *testing.T) {
	b := newBed(t)
	s := b.start(WithPluginRestarts(func(cluster string) int { return map[string]int{"loc": 2}[cluster] }))
	c := b.submit("a.sh", waitScript("echo a > a.out"), "")
	b.waitState(c.ID, store.StateRunning)
	var h ClusterHealth
	until(t, func() string { return "a poll" }, func() bool {
		hs, err := s.Health()
		if err != nil {
			t.Fatal(err)
		}
		h = hs[0]
		return !h.LastPoll.IsZero()
	})
	if h.Label != "loc" || !h.Reachable || h.Submissions != 1 || h.Calcs[store.StateRunning] != 1 || h.PluginRestarts != 2 ||
		h.LastPollError != "" || h.Drain.Drained || !h.DownSince.IsZero() {
		t.Fatalf("health %+v", h)
	}
	if _, final := h.Calcs[store.StateNotified]; final {
		t.Fatalf("final states counted: %v", h.Calcs)
	}
	b.faults["loc"].set("poll", errDown)
	until(t, func() string { return "an outage" }, func() bool {
		hs, _ := s.Health()
		h = hs[0]
		return !h.Reachable
	})
	if h.DownSince.IsZero() || h.LastPollError == "" {
		t.Fatalf("outage %+v", h)
	}
	b.faults["loc"].set("poll", nil)
	b.release(c)
	b.waitState(c.ID, store.StateNotified)
	hs, _ := s.Health()
	if h = hs[0]; !h.Reachable || !h.DownSince.IsZero() || h.Calcs[store.StateRunning] != 0 || h.Deliveries != 1 {
		t.Fatalf("after the outage %+v", h)
	}
}

// The traffic log sums across plugin restarts and windows by sample time.
func TestTrafficLog(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var l trafficLog
	st := func(h, c, a int64) plugins.TransportStats {
		return plugins.TransportStats{Handshakes: h, Commands: c, AuthFailures: a}
	}
	l.add(t0, st(1, 5, 0))
	l.add(t0.Add(2*time.Hour), st(2, 20, 1))
	l.add(t0.Add(3*time.Hour), st(1, 3, 0)) // restarted: counts from 0 again
	now := t0.Add(3 * time.Hour)
	if got := l.since(now.Add(-time.Hour)); got != st(1, 3, 0) {
		t.Errorf("last hour %+v", got)
	}
	if got := l.since(now.Add(-24 * time.Hour)); got != st(3, 23, 1) {
		t.Errorf("since the start %+v", got)
	}
	l.add(t0.Add(26*time.Hour), st(2, 4, 0))
	if len(l.samples) != 3 || !l.samples[0].at.Equal(t0.Add(2*time.Hour)) { // the day's start and after
		t.Errorf("pruned to %+v", l.samples)
	}
	if got := l.since(t0.Add(2 * time.Hour)); got != st(2, 4, 0) {
		t.Errorf("last day %+v", got)
	}
}
