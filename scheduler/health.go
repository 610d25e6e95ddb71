package scheduler

import (
	"time"

	"hpcbot/store"
)

// ClusterHealth is what /clusters and the metrics endpoint show of a cluster.
type ClusterHealth struct {
	Label string
	// Reachable: the last call to the cluster's plugin answered (or none failed
	// yet). DownSince is the first failure of the current outage.
	Reachable bool
	DownSince time.Time
	AuthError string // the cluster refuses the bot's login
	// The last poll: when it ended, how long it took, its error ("" when it answered).
	LastPoll         time.Time
	LastPollDuration time.Duration
	LastPollError    string
	Drain            DrainState
	// Calcs counts the cluster's calculations in each state that is not final
	// (received … delivered).
	Calcs          map[store.State]int
	Submissions    uint64 // jobs submitted since the start
	PluginRestarts int    // restarts of its plugin processes since the start
}

// polled records the end of a poll that began at began.
func (c *clusterState) polled(began time.Time, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastPoll = time.Now()
	c.lastPollDur = c.lastPoll.Sub(began)
	c.lastPollErr = ""
	if err != nil {
		c.lastPollErr = err.Error()
	}
}

// Health reports every cluster's health, in configuration order.
func (s *Scheduler) Health() ([]ClusterHealth, error) {
	var states []store.State
	for _, st := range store.States {
		if !st.Final() {
			states = append(states, st)
		}
	}
	calcs, err := s.st.CalcsByState(states...)
	if err != nil {
		return nil, err
	}
	out := make([]ClusterHealth, 0, len(s.clusters))
	for _, c := range s.clusters {
		h := ClusterHealth{Label: c.label(), Drain: c.drainState(), Calcs: map[store.State]int{}}
		for _, st := range states {
			h.Calcs[st] = 0
		}
		for _, calc := range calcs {
			if calc.Cluster == c.label() {
				h.Calcs[calc.State]++
			}
		}
		c.mu.Lock()
		h.Reachable = c.authErr == "" && !c.failing && c.downSince.IsZero()
		h.DownSince = c.failSince
		if !c.downSince.IsZero() && (h.DownSince.IsZero() || c.downSince.Before(h.DownSince)) {
			h.DownSince = c.downSince
		}
		h.AuthError = c.authErr
		h.LastPoll, h.LastPollDuration, h.LastPollError = c.lastPoll, c.lastPollDur, c.lastPollErr
		h.Submissions = c.submissions
		c.mu.Unlock()
		if s.pluginRestarts != nil {
			h.PluginRestarts = s.pluginRestarts(c.label())
		}
		out = append(out, h)
	}
	return out, nil
}
