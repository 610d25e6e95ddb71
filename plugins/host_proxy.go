package plugins

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
)

// schedulerProxy is the Scheduler the Host hands out: every call goes to the
// plugin's current process with a deadline (see Host.deadline), and a call that
// meets a dead or restarting process gets a transient error, never a hang.
type schedulerProxy struct{ p *proc }

var _ Scheduler = (*schedulerProxy)(nil)

func schedOf(raw any) *schedulerClient { return raw.(*schedulerClient) }

// Configure reconfigures the plugin; the new cluster is also what later restarts get.
func (s *schedulerProxy) Configure(ctx context.Context, c Cluster) error {
	err := s.p.call(ctx, "Configure", false, func(ctx context.Context, raw any) error {
		return schedOf(raw).Configure(ctx, c)
	})
	if err == nil {
		s.p.mu.Lock()
		s.p.config = c
		s.p.mu.Unlock()
	}
	return err
}

func (s *schedulerProxy) Check(ctx context.Context) (res CheckResult, err error) {
	err = s.p.call(ctx, "Check", false, func(ctx context.Context, raw any) (err error) {
		res, err = schedOf(raw).Check(ctx)
		return err
	})
	return res, err
}

func (s *schedulerProxy) Stage(ctx context.Context, req StageRequest) error {
	return s.p.call(ctx, "Stage", true, func(ctx context.Context, raw any) error {
		return schedOf(raw).Stage(ctx, req)
	})
}

func (s *schedulerProxy) Submit(ctx context.Context, req SubmitRequest) (res SubmitResult, err error) {
	err = s.p.call(ctx, "Submit", false, func(ctx context.Context, raw any) (err error) {
		res, err = schedOf(raw).Submit(ctx, req)
		return err
	})
	return res, err
}

func (s *schedulerProxy) Poll(ctx context.Context, jobs []JobRef) (res []JobStatus, err error) {
	err = s.p.call(ctx, "Poll", false, func(ctx context.Context, raw any) (err error) {
		res, err = schedOf(raw).Poll(ctx, jobs)
		return err
	})
	return res, err
}

func (s *schedulerProxy) Cancel(ctx context.Context, job JobRef) error {
	return s.p.call(ctx, "Cancel", false, func(ctx context.Context, raw any) error {
		return schedOf(raw).Cancel(ctx, job)
	})
}

// Fetch refuses the whole result when the plugin names a file outside LocalDir
// (an absolute path, or one with ".."): the core would otherwise read, send or
// upload whatever that name points at.
func (s *schedulerProxy) Fetch(ctx context.Context, req FetchRequest) (res FetchResult, err error) {
	err = s.p.call(ctx, "Fetch", true, func(ctx context.Context, raw any) (err error) {
		res, err = schedOf(raw).Fetch(ctx, req)
		return err
	})
	if err != nil {
		return res, err
	}
	for _, f := range res.Files {
		if !filepath.IsLocal(filepath.FromSlash(f)) {
			s.p.log.Error("plugin's fetch result names a file outside the results folder; refusing the whole fetch",
				"folder", req.Folder, "path", f)
			return FetchResult{}, &Error{Kind: KindPermanent, Msg: fmt.Sprintf(
				"%s plugin %q of cluster %s returned the unsafe file name %q (outside the results folder); nothing was taken",
				s.p.kind, s.p.name, s.p.cluster, f)}
		}
	}
	return res, nil
}

func (s *schedulerProxy) Cleanup(ctx context.Context, folder string) error {
	return s.p.call(ctx, "Cleanup", false, func(ctx context.Context, raw any) error {
		return schedOf(raw).Cleanup(ctx, folder)
	})
}

var _ StatsReporter = (*schedulerProxy)(nil)

// TransportStats asks the current process; its counts start again at a restart.
func (s *schedulerProxy) TransportStats(ctx context.Context) (res TransportStats, err error) {
	err = s.p.call(ctx, "Stats", false, func(ctx context.Context, raw any) (err error) {
		res, err = schedOf(raw).TransportStats(ctx)
		return err
	})
	return res, err
}

var _ Tailer = (*schedulerProxy)(nil)

// Tail asks the current process for the end of a job's output; a plugin
// without Tail gives an error wrapping ErrNotSupported.
func (s *schedulerProxy) Tail(ctx context.Context, req TailRequest) (res TailResult, err error) {
	err = s.p.call(ctx, "Tail", false, func(ctx context.Context, raw any) (err error) {
		res, err = schedOf(raw).Tail(ctx, req)
		return err
	})
	return res, err
}

// runnerProxy is the Runner the Host hands out, with the same guarantees. For
// a built-in runner (shared), every call names the proxy's cluster, whose
// instance in the process answers it.
type runnerProxy struct {
	p       *proc
	cluster string
	shared  bool
}

var _ FullRunner = (*runnerProxy)(nil)

func runnerOf(raw any) *runnerClient { return raw.(*runnerClient) }

// scope names the cluster in the call's metadata when the process is shared.
func (r *runnerProxy) scope(ctx context.Context) context.Context {
	if !r.shared {
		return ctx
	}
	return forCluster(ctx, r.cluster)
}

// Configure reconfigures the runner; the new rules are also what later
// restarts get. A shared process's proxy configures its own cluster only.
func (r *runnerProxy) Configure(ctx context.Context, cluster string, rules []RunnerRule) error {
	if r.shared && cluster != r.cluster {
		return &Error{Kind: KindPermanent, Msg: fmt.Sprintf("runner plugin %q: the proxy of cluster %s cannot configure cluster %s", r.p.name, r.cluster, cluster)}
	}
	if r.shared {
		return r.configureShared(ctx, rules)
	}
	err := r.p.call(ctx, "Configure", false, func(ctx context.Context, raw any) error {
		return runnerOf(raw).Configure(ctx, cluster, rules)
	})
	if err == nil {
		r.p.mu.Lock()
		r.p.config = runnerConfig{cluster: cluster, rules: rules}
		r.p.mu.Unlock()
	}
	return err
}

// configureShared records the cluster's rules before the call, so that a
// restart of the process meanwhile configures them too, and puts back what
// was recorded before when the call fails.
func (r *runnerProxy) configureShared(ctx context.Context, rules []RunnerRule) error {
	set := func(f func(rc runnerConfigs)) {
		r.p.mu.Lock()
		defer r.p.mu.Unlock()
		rc := maps.Clone(r.p.config.(runnerConfigs))
		f(rc)
		r.p.config = rc
	}
	r.p.mu.Lock()
	old, had := r.p.config.(runnerConfigs)[r.cluster]
	r.p.mu.Unlock()
	set(func(rc runnerConfigs) { rc[r.cluster] = rules })
	err := r.p.call(r.scope(ctx), "Configure", false, func(ctx context.Context, raw any) error {
		return runnerOf(raw).Configure(ctx, r.cluster, rules)
	})
	if err != nil {
		set(func(rc runnerConfigs) {
			if had {
				rc[r.cluster] = old
			} else {
				delete(rc, r.cluster)
			}
		})
	}
	return err
}

func (r *runnerProxy) Info(ctx context.Context) (res RunnerInfo, err error) {
	err = r.p.call(r.scope(ctx), "Info", false, func(ctx context.Context, raw any) (err error) {
		res, err = runnerOf(raw).Info(ctx)
		return err
	})
	return res, err
}

// Plan returns a *Refusal unchanged when the plugin refused.
func (r *runnerProxy) Plan(ctx context.Context, req PlanRequest) (res Plan, err error) {
	err = r.p.call(r.scope(ctx), "Plan", false, func(ctx context.Context, raw any) (err error) {
		res, err = runnerOf(raw).Plan(ctx, req)
		return err
	})
	return res, err
}

// Check returns a *Refusal unchanged when the plugin refused; a protocol-1
// plugin accepts with no resources.
func (r *runnerProxy) Check(ctx context.Context, req CheckInputRequest) (res InputResources, err error) {
	err = r.p.call(r.scope(ctx), "Check", false, func(ctx context.Context, raw any) (err error) {
		res, err = runnerOf(raw).Check(ctx, req)
		return err
	})
	return res, err
}

// Digest has no summary for a protocol-1 plugin.
func (r *runnerProxy) Digest(ctx context.Context, req DigestRequest) (res Digest, err error) {
	err = r.p.call(r.scope(ctx), "Digest", false, func(ctx context.Context, raw any) (err error) {
		res, err = runnerOf(raw).Digest(ctx, req)
		return err
	})
	return res, err
}
