package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"sync"
	"time"

	"hpcbot/plugins"
	"hpcbot/plugins/shellquote"
)

// Scheduler implements plugins.Scheduler for one cluster on top of a Dialect
// (which commands to run) and a Transport (where to run them). It keeps no state
// on disk of its own: everything a repeat needs is in the calculation's remote
// folder, so a restarted plugin continues where the last one stopped. The only
// memory is when each missing job was first seen missing (see WithLostGrace).
type Scheduler struct {
	d            Dialect
	newTransport func(plugins.Cluster) (Transport, error)

	lostGrace    time.Duration
	submitWait   time.Duration
	fetchWorkers int
	now          func() time.Time
	baseLog      *slog.Logger
	log          *slog.Logger

	mu      sync.Mutex
	cluster plugins.Cluster
	tr      Transport
	missing map[string]time.Time // job key → first poll that found no trace of it
}

var _ plugins.Scheduler = (*Scheduler)(nil)

// New returns a Scheduler speaking dialect d over the transports newTransport
// makes. newTransport is called once, from Configure, and must not connect yet
// (the Transport connects on first use).
func New(d Dialect, newTransport func(plugins.Cluster) (Transport, error), opts ...Option) *Scheduler {
	s := &Scheduler{
		d:            d,
		newTransport: newTransport,
		lostGrace:    DefaultLostGrace,
		submitWait:   DefaultSubmitWait,
		fetchWorkers: DefaultFetchWorker,
		now:          time.Now,
		log:          slog.Default(),
		missing:      map[string]time.Time{},
	}
	for _, o := range opts {
		o(s)
	}
	s.baseLog = s.log
	return s
}

// Configure checks the cluster's settings and prepares (but does not open) its transport.
func (s *Scheduler) Configure(ctx context.Context, c plugins.Cluster) error {
	if err := checkUploadPath(c.UploadPath); err != nil {
		return err
	}
	if cd, ok := s.d.(ConfigurableDialect); ok {
		if err := cd.Configure(c); err != nil {
			return plugins.Errorf(plugins.KindPermanent, "configure %s dialect: %w", s.d.Name(), err)
		}
	}
	tr, err := s.newTransport(c)
	if err != nil {
		return fmt.Errorf("configure transport for cluster %s: %w", c.Label, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tr != nil {
		s.tr.Close()
	}
	s.cluster, s.tr = c, tr
	s.log = s.baseLog.With("cluster", c.Label, "plugin", s.d.Name())
	return nil
}

// Close releases the transport. The Scheduler is not usable afterwards.
func (s *Scheduler) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tr == nil {
		return nil
	}
	err := s.tr.Close()
	s.tr = nil
	return err
}

func checkUploadPath(p string) error {
	switch {
	case p == "":
		return plugins.Errorf(plugins.KindPermanent, "upload_path is empty: set it to the folder for calculations on the cluster")
	case strings.HasPrefix(p, "~"):
		return plugins.Errorf(plugins.KindPermanent, "upload_path %q starts with ~, which is not expanded: use an absolute path or one relative to the home folder", p)
	case strings.ContainsAny(p, "\x00\n\r"):
		return plugins.Errorf(plugins.KindPermanent, "upload_path %q contains a control character", p)
	}
	return nil
}

// transport returns the configured transport and upload path.
func (s *Scheduler) transport() (Transport, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tr == nil {
		return nil, "", plugins.Errorf(plugins.KindPermanent, "scheduler not configured")
	}
	return s.tr, s.cluster.UploadPath, nil
}

// TransportStats reports the transport's traffic (an SSH transport counts it;
// another, such as the local one, has none to report).
func (s *Scheduler) TransportStats(context.Context) (plugins.TransportStats, error) {
	tr, _, err := s.transport()
	if err != nil {
		return plugins.TransportStats{}, err
	}
	if st, ok := tr.(interface{ TransportStats() plugins.TransportStats }); ok {
		return st.TransportStats(), nil
	}
	return plugins.TransportStats{}, nil
}

// CheckFolder reports whether name is acceptable as a calculation folder: one
// path element of letters, digits, '.', '_' and '-', not starting with '.' or '-'.
func CheckFolder(name string) error {
	if name == "" || len(name) > 200 {
		return plugins.Errorf(plugins.KindPermanent, "folder name %q: want 1 to 200 characters", name)
	}
	if name[0] == '.' || name[0] == '-' {
		return plugins.Errorf(plugins.KindPermanent, "folder name %q starts with %q", name, name[0])
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return plugins.Errorf(plugins.KindPermanent, "folder name %q: character %q not allowed", name, c)
		}
	}
	return nil
}

// remoteDir is the calculation folder on the cluster.
func remoteDir(upload, folder string) (string, error) {
	if err := CheckFolder(folder); err != nil {
		return "", err
	}
	return path.Join(upload, folder), nil
}

// Check runs the dialect's version command and asks the host for its name.
func (s *Scheduler) Check(ctx context.Context) (plugins.CheckResult, error) {
	tr, _, err := s.transport()
	if err != nil {
		return plugins.CheckResult{}, err
	}
	r, err := tr.Run(ctx, s.d.VersionCommand())
	if err != nil {
		return plugins.CheckResult{}, fmt.Errorf("check: %w", err)
	}
	version, err := s.d.ParseVersion(r)
	if err != nil {
		return plugins.CheckResult{}, fmt.Errorf("check %s version: %w", s.d.Name(), err)
	}
	res := plugins.CheckResult{Scheduler: version}
	h, err := tr.Run(ctx, "uname -n")
	if err != nil {
		return plugins.CheckResult{}, fmt.Errorf("check host name: %w", err)
	}
	res.Host = strings.TrimSpace(string(h.Stdout))
	return res, nil
}

// Stage copies the local folder to <upload_path>/<folder>.
func (s *Scheduler) Stage(ctx context.Context, req plugins.StageRequest) error {
	tr, upload, err := s.transport()
	if err != nil {
		return err
	}
	dir, err := remoteDir(upload, req.Folder)
	if err != nil {
		return err
	}
	if err := tr.PutDir(ctx, req.LocalDir, dir); err != nil {
		return fmt.Errorf("stage calc %d: %w", req.CalcID, err)
	}
	return nil
}

// Cleanup removes <upload_path>/<folder>.
func (s *Scheduler) Cleanup(ctx context.Context, folder string) error {
	tr, upload, err := s.transport()
	if err != nil {
		return err
	}
	dir, err := remoteDir(upload, folder)
	if err != nil {
		return err
	}
	if err := tr.RemoveAll(ctx, dir); err != nil {
		return fmt.Errorf("cleanup %s: %w", folder, err)
	}
	return nil
}

// CancelledFile marks a folder whose job hpcbot asked to cancel. Poll uses it to
// call a job cancelled when the scheduler has forgotten it and it left no exit code.
const CancelledFile = ".hpcbot-cancelled"

// Cancel marks the folder cancelled and runs the dialect's cancel command, in one
// remote command.
func (s *Scheduler) Cancel(ctx context.Context, job plugins.JobRef) error {
	tr, upload, err := s.transport()
	if err != nil {
		return err
	}
	dir, err := remoteDir(upload, job.Folder)
	if err != nil {
		return err
	}
	cmd := ": >" + shellquote.Quote(path.Join(dir, CancelledFile)) + " 2>/dev/null\n" +
		s.d.CancelCommand(job, dir)
	r, err := tr.Run(ctx, cmd)
	if err != nil {
		return fmt.Errorf("cancel job %s: %w", job.JobID, err)
	}
	if r.ExitCode != 0 && !s.d.CancelDone(r) {
		return plugins.Errorf(plugins.KindTransient, "cancel job %s: exit %d: %s", job.JobID, r.ExitCode, brief(r))
	}
	s.log.Info("cancelled", "calc", job.CalcID, "job", job.JobID)
	return nil
}

// brief is a short, single-line excerpt of a command's output for an error message.
func brief(r RunResult) string {
	out := strings.TrimSpace(string(r.Stderr))
	if out == "" {
		out = strings.TrimSpace(string(r.Stdout))
	}
	return excerpt(out)
}

func excerpt(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	if s == "" {
		return "no output"
	}
	return s
}

var errNoMarker = errors.New("no hpcbot marker in output")
