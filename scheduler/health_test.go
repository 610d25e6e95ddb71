package scheduler

import (
	"testing"

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
	if h = hs[0]; !h.Reachable || !h.DownSince.IsZero() || h.Calcs[store.StateRunning] != 0 {
		t.Fatalf("after the outage %+v", h)
	}
}
