package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"hpcbot/store"
)

// A drained cluster is closed for maintenance: the bot submits nothing new to it
// (its received calculations fail over to the next cluster with a matching
// runner when failover allows, the rest wait in the store), while the jobs it
// already has are polled, fetched and delivered as usual. An admin drains and
// undrains it (/drain, /undrain); `drained = true` in its [[clusters]] entry
// drains it when the configuration says so.

// drainKeyFormat is the store's kv key of a cluster's maintenance state.
const drainKeyFormat = "cluster/%s/drain"

// drainRecord is a cluster's maintenance state as stored. Config is the value of
// `drained` in the configuration when the record was written: when the
// configuration changes, it wins; otherwise the admin's last word does, so an
// /undrain survives a restart of a cluster configured drained and the reverse.
type drainRecord struct {
	Drained bool      `json:"drained"`
	Reason  string    `json:"reason,omitempty"`
	By      string    `json:"by,omitempty"`
	Since   time.Time `json:"since"`
	Config  bool      `json:"config"`
}

// DrainState is a cluster's maintenance state, for /clusters.
type DrainState struct {
	Drained bool
	Reason  string // the admin's words; may be empty
	By      string // who drained it ("configuration" for drained = true)
	Since   time.Time
}

// ErrUnknownCluster: no cluster of that label is configured.
var ErrUnknownCluster = errors.New("no such cluster")

// loadDrains reads every cluster's maintenance state, applying a changed
// `drained` key of the configuration.
func (s *Scheduler) loadDrains() error {
	for _, c := range s.clusters {
		key := fmt.Sprintf(drainKeyFormat, c.label())
		v, ok, err := s.st.Value(key)
		if err != nil {
			return fmt.Errorf("cluster %s: read maintenance state: %w", c.label(), err)
		}
		var rec drainRecord
		if ok {
			if err := json.Unmarshal([]byte(v), &rec); err != nil {
				s.log.Error("unreadable maintenance state; using the configuration", "cluster", c.label(), "err", err)
				ok = false
			}
		}
		if !ok || rec.Config != c.cfg.Drained {
			rec = drainRecord{Drained: c.cfg.Drained, Config: c.cfg.Drained, Since: s.now()}
			if rec.Drained {
				rec.By = "configuration"
			}
			if err := s.saveDrain(c, rec); err != nil {
				return err
			}
		}
		c.drain = rec
	}
	return nil
}

func (s *Scheduler) saveDrain(c *clusterState, rec drainRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := s.st.SetValue(fmt.Sprintf(drainKeyFormat, c.label()), string(b)); err != nil {
		return fmt.Errorf("cluster %s: record maintenance state: %w", c.label(), err)
	}
	return nil
}

// Drain closes cluster label for new submissions (reason: the admin's words,
// shown to users whose calculations wait; by: who did it). Draining a drained
// cluster updates its reason. Its waiting calculations fail over or wait.
func (s *Scheduler) Drain(label, reason, by string) error {
	return s.setDrain(label, true, reason, by)
}

// Undrain opens cluster label again; what waited for it is submitted at once.
func (s *Scheduler) Undrain(label string) error {
	return s.setDrain(label, false, "", "")
}

func (s *Scheduler) setDrain(label string, drained bool, reason, by string) error {
	c := s.byLabel[label]
	if c == nil {
		return fmt.Errorf("%w: %q", ErrUnknownCluster, label)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rec := drainRecord{Drained: drained, Reason: reason, By: by, Since: s.now(), Config: c.cfg.Drained}
	if drained && c.drain.Drained {
		rec.Since = c.drain.Since // a new reason does not restart the drain
	}
	if err := s.saveDrain(c, rec); err != nil {
		return err
	}
	c.drain = rec
	s.log.Warn("cluster maintenance", "cluster", label, "drained", drained, "reason", reason, "by", by)
	kick(c.kick)
	return nil
}

// DrainState reports cluster label's maintenance state.
func (s *Scheduler) DrainState(label string) (DrainState, error) {
	c := s.byLabel[label]
	if c == nil {
		return DrainState{}, fmt.Errorf("%w: %q", ErrUnknownCluster, label)
	}
	return c.drainState(), nil
}

func (c *clusterState) drainState() DrainState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return DrainState{Drained: c.drain.Drained, Reason: c.drain.Reason, By: c.drain.By, Since: c.drain.Since}
}

// holdDrained handles the intake calculations of a drained cluster: a received
// one fails over when its rule allows and another cluster takes it; every other
// waits, and its user is told once why and that it will be submitted when the
// cluster is back.
func (s *Scheduler) holdDrained(ctx context.Context, c *clusterState, d DrainState) {
	calcs, err := s.intakeCalcs(c)
	if err != nil {
		s.log.Error("read calculations", "cluster", c.label(), "err", err)
		return
	}
	for _, calc := range calcs {
		if ctx.Err() != nil {
			return
		}
		s.woken.Delete(calc.ID)
		s.safely(calc.ID, func() { s.holdOne(ctx, c, calc.ID, d) })
	}
}

func (s *Scheduler) holdOne(ctx context.Context, c *clusterState, id uint64, d DrainState) {
	if !s.claim(id) {
		return
	}
	defer s.release(id)
	calc, err := s.st.Calc(id)
	if err != nil || calc.Cluster != c.label() || (calc.State != store.StateReceived && calc.State != store.StateStaged) {
		return
	}
	if calc.State == store.StateReceived && calc.Progress.Cancel != store.CancelNone {
		s.cancelBeforeJob(calc)
		return
	}
	cause := fmt.Errorf("cluster %s is drained for maintenance: %s", c.label(), d.Reason)
	if calc.State == store.StateReceived && s.failover(ctx, c, calc, cause) {
		return
	}
	if !calc.Progress.Drained.IsZero() && calc.WaitNotified {
		return
	}
	now := s.now()
	calc, err = s.st.UpdateCalc(id, func(_ *store.Tx, x *store.Calculation) error {
		if x.State != calc.State || x.Cluster != c.label() {
			return errStale
		}
		if x.WaitingSince.IsZero() || x.Progress.Drained.IsZero() {
			x.WaitingSince, x.WaitNotified = now, false
		}
		x.Progress.Drained = d.Since.UTC()
		return nil
	})
	if err != nil {
		if !errors.Is(err, errStale) {
			s.log.Error("record drained wait", "calc", id, "err", err)
		}
		return
	}
	s.log.Info("held: cluster drained", "calc", id, "cluster", c.label())
	if !calc.WaitNotified {
		// Reason carries the admin's words alone: the bot shows them to the user.
		s.tellWaiting(ctx, calc, CodeClusterDrained, errors.New(d.Reason))
	}
}

// undrained ends the drained wait of calc before its intake goes on: the wait
// starts again now, so that give_up_after counts from the end of the
// maintenance, and the user, who was told it waits, hears that it goes on.
func (s *Scheduler) undrained(calc store.Calculation) store.Calculation {
	if calc.Progress.Drained.IsZero() {
		return calc
	}
	now := s.now()
	c, err := s.st.UpdateCalc(calc.ID, func(_ *store.Tx, x *store.Calculation) error {
		if x.State != calc.State {
			return errStale
		}
		x.Progress.Drained = time.Time{}
		if !x.WaitingSince.IsZero() {
			x.WaitingSince = now
		}
		return nil
	})
	if err != nil {
		if !errors.Is(err, errStale) {
			s.log.Error("record end of drained wait", "calc", calc.ID, "err", err)
		}
		return calc
	}
	return c
}
