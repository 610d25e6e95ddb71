package scheduler

import (
	"context"
	"time"

	"hpcbot/plugins"
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
	Deliveries     uint64 // results delivered since the start
	PluginRestarts int    // restarts of its plugin processes since the start
	// Traffic to the cluster (SSH handshakes, remote commands, refused logins)
	// in the last hour and day, or since the start when that is shorter;
	// TrafficKnown is false when the plugin does not count it.
	TrafficKnown            bool
	TrafficHour, TrafficDay plugins.TransportStats
}

// trafficStatsTimeout bounds asking a plugin for its counts (a local call).
const trafficStatsTimeout = 5 * time.Second

// trafficLog keeps samples of a cluster's traffic counts, taken at every poll
// tick, summed across plugin restarts (a restarted process counts from 0), for
// a day and a little more.
type trafficLog struct {
	last    plugins.TransportStats // the process's counts at the last sample
	base    plugins.TransportStats // the counts of processes before a restart
	samples []trafficSample
}

type trafficSample struct {
	at    time.Time
	total plugins.TransportStats
}

func addStats(a, b plugins.TransportStats) plugins.TransportStats {
	return plugins.TransportStats{Handshakes: a.Handshakes + b.Handshakes, Commands: a.Commands + b.Commands,
		AuthFailures: a.AuthFailures + b.AuthFailures}
}

func subStats(a, b plugins.TransportStats) plugins.TransportStats {
	return plugins.TransportStats{Handshakes: a.Handshakes - b.Handshakes, Commands: a.Commands - b.Commands,
		AuthFailures: a.AuthFailures - b.AuthFailures}
}

// add records the process's counts v at time at.
func (l *trafficLog) add(at time.Time, v plugins.TransportStats) {
	if v.Handshakes < l.last.Handshakes || v.Commands < l.last.Commands || v.AuthFailures < l.last.AuthFailures {
		l.base = addStats(l.base, l.last) // the process restarted
	}
	l.last = v
	l.samples = append(l.samples, trafficSample{at: at, total: addStats(l.base, v)})
	// Keep the newest sample older than a day: the start of the day's window.
	cut := 0
	for cut+1 < len(l.samples) && !l.samples[cut+1].at.After(at.Add(-24*time.Hour)) {
		cut++
	}
	l.samples = l.samples[cut:]
}

// since is the traffic from the newest sample at or before t to the last; with
// none that old, all of it (the counts start with the plugin).
func (l *trafficLog) since(t time.Time) plugins.TransportStats {
	if len(l.samples) == 0 {
		return plugins.TransportStats{}
	}
	var from trafficSample
	for _, s := range l.samples {
		if s.at.After(t) {
			break
		}
		from = s
	}
	return subStats(l.samples[len(l.samples)-1].total, from.total)
}

// sampleTraffic asks the cluster's plugin for its counts (no call to the
// cluster itself) and records them.
func (s *Scheduler) sampleTraffic(ctx context.Context, c *clusterState) {
	sr, ok := c.sched.(plugins.StatsReporter)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, trafficStatsTimeout)
	defer cancel()
	v, err := sr.TransportStats(ctx)
	if err != nil {
		return // an old plugin without Stats, or a restart in progress
	}
	c.mu.Lock()
	c.traffic.add(time.Now(), v)
	c.mu.Unlock()
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
		h.Submissions, h.Deliveries = c.submissions, c.deliveries
		if n := len(c.traffic.samples); n > 0 {
			now := c.traffic.samples[n-1].at
			h.TrafficKnown = true
			h.TrafficHour, h.TrafficDay = c.traffic.since(now.Add(-time.Hour)), c.traffic.since(now.Add(-24*time.Hour))
		}
		c.mu.Unlock()
		if s.pluginRestarts != nil {
			h.PluginRestarts = s.pluginRestarts(c.label())
		}
		out = append(out, h)
	}
	return out, nil
}
