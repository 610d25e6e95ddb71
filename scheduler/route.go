package scheduler

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"hpcbot/plugins"
)

// infoTimeout bounds the Info calls behind Clusters and Route's runner names.
const infoTimeout = 30 * time.Second

// refusalRank orders refusals from least to most specific: when no cluster takes
// a file, the user hears the most specific reason any runner gave.
var refusalRank = map[string]int{
	plugins.RefuseNoProgram:      1,
	plugins.RefuseUnknownProgram: 2,
	plugins.RefuseNoInput:        3,
	plugins.RefuseArgNotAllowed:  4,
	plugins.RefuseBadCaption:     5,
}

// Route finds where an input file goes: the first cluster, in configuration
// order, one of whose runners accepts the file and caption, with that runner's
// plan. When none does it returns the most specific *plugins.Refusal any runner
// gave (a caption naming a program no cluster knows: unknown_program; a known
// program with a forbidden argument: arg_not_allowed). A runner that fails
// (plugin down) is skipped; if no runner answered at all, that error is returned.
//
// A drained cluster is passed over when its runner rule allows failover and a
// later cluster takes the file; otherwise the file goes to it all the same
// (Route.Drained) and waits there until the cluster is undrained.
func (s *Scheduler) Route(ctx context.Context, fileName, caption string) (Route, error) {
	var best *plugins.Refusal
	var failures []error
	var held *Route // the first drained cluster that takes the file
	for _, c := range s.clusters {
		for i, r := range c.runners {
			plan, err := r.Plan(ctx, plugins.PlanRequest{FileName: fileName, Caption: caption})
			var ref *plugins.Refusal
			switch {
			case err == nil:
				rt := Route{Cluster: c.label(), Runner: s.runnerName(ctx, c, i), Plan: plan}
				if !c.drainState().Drained {
					return rt, nil
				}
				if held == nil {
					rt.Drained = true
					held = &rt
					if !c.cfg.FailoverAllowed(ruleFor(c.cfg, plan.Program)) {
						return rt, nil
					}
				}
			case errors.As(err, &ref):
				if best == nil || refusalRank[ref.Code] > refusalRank[best.Code] {
					best = ref
				}
			default:
				s.log.Warn("runner failed to plan", "cluster", c.label(), "err", err)
				failures = append(failures, fmt.Errorf("cluster %s: %w", c.label(), err))
			}
		}
	}
	if held != nil {
		return *held, nil
	}
	if best != nil {
		return Route{}, best
	}
	if len(failures) > 0 {
		return Route{}, fmt.Errorf("route %s: %w", fileName, errors.Join(failures...))
	}
	return Route{}, &plugins.Refusal{Code: plugins.RefuseNoProgram, Detail: strings.ToLower(filepath.Ext(fileName))}
}

// runnerInfos returns (and caches) the Info of each runner of c; a runner that
// cannot answer gets an empty Info and is asked again next time.
func (s *Scheduler) runnerInfos(ctx context.Context, c *clusterState) []plugins.RunnerInfo {
	s.infoMu.Lock()
	cached, ok := s.infos[c.label()]
	s.infoMu.Unlock()
	if ok {
		return cached
	}
	ctx, cancel := context.WithTimeout(ctx, infoTimeout)
	defer cancel()
	infos := make([]plugins.RunnerInfo, len(c.runners))
	complete := true
	for i, r := range c.runners {
		info, err := r.Info(ctx)
		if err != nil {
			s.log.Warn("runner info", "cluster", c.label(), "err", err)
			complete = false
			continue
		}
		infos[i] = info
	}
	if complete {
		s.infoMu.Lock()
		s.infos[c.label()] = infos
		s.infoMu.Unlock()
	}
	return infos
}

// runnerName is the name of runner i of c ("command"), from its Info, or from
// the configuration when the plugin cannot say.
func (s *Scheduler) runnerName(ctx context.Context, c *clusterState, i int) string {
	if infos := s.runnerInfos(ctx, c); i < len(infos) && infos[i].Name != "" {
		return infos[i].Name
	}
	if kinds := plugins.RunnerKinds(c.cfg.Runners); i < len(kinds) && kinds[i] != "" {
		return kinds[i]
	}
	return "command"
}

// Clusters describes every cluster and its programs, in configuration order, for
// /help. A cluster that refused the bot's login is marked not usable, with the reason.
func (s *Scheduler) Clusters() []ClusterInfo {
	out := make([]ClusterInfo, 0, len(s.clusters))
	for _, c := range s.clusters {
		ci := ClusterInfo{Label: c.label(), Scheduler: c.cfg.Scheduler, Usable: true}
		for _, info := range s.runnerInfos(context.Background(), c) {
			ci.Programs = append(ci.Programs, info.Programs...)
		}
		ci.Drain = c.drainState()
		c.mu.Lock()
		if c.authErr != "" {
			ci.Usable, ci.Reason = false, c.authErr
		}
		c.mu.Unlock()
		out = append(out, ci)
	}
	return out
}

// FolderName is the name of a calculation's folder, locally under download_path
// and on the cluster under upload_path:
// "<unix time>_<user id>_<submission>_<input base name>". The original bot's
// "<unix time>_<user id>_<input base name>" gave two files of the same name sent
// in the same second one folder; submission tells them apart. It must differ
// between submissions and stay the same when one submission is handled again
// (Accept passes the Telegram update id: unique for the bot, the same when an
// update is redelivered, and the identity the store already gives each
// calculation), so the same arguments always give the same name. The base name
// loses its extension and every character but letters, digits, '.', '_' and
// '-'; the name always passes cluster.CheckFolder.
func FolderName(userID uint64, submission int64, input string, at time.Time) string {
	base := filepath.Base(input)
	base = strings.TrimSuffix(base, filepath.Ext(base))
	var b strings.Builder
	for _, r := range base {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 100 {
			break
		}
	}
	name := b.String()
	if name == "" {
		name = "input"
	}
	return fmt.Sprintf("%d_%d_%d_%s", at.Unix(), userID, submission, name)
}

// LocalDir is the absolute local folder of a calculation folder: where Accept
// has the input written, and where results are fetched to.
func (s *Scheduler) LocalDir(folder string) string {
	return filepath.Join(s.downloadPath, folder)
}
