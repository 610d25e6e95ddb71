// The checks of a scheduler plugin: Configure, Check, concurrent calls, Tail's
// answer, and a whole job through a scheduler that runs jobs on this host.

package conformance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"hpcbot/plugins"
	pb "hpcbot/plugins/proto"
)

func (s *suite) scheduler(ctx context.Context, c pb.SchedulerClient) {
	s.check("Version names the plugin and its version", func() error { return version(ctx, c.Version) })
	s.check("Configure refuses a cluster without upload_path (permanent error)", func() error {
		cctx, cancel := call(ctx)
		defer cancel()
		_, err := c.Configure(cctx, &pb.ConfigureSchedulerRequest{Cluster: &pb.Cluster{Label: "conformance", Scheduler: s.t.Name}})
		return permanent("Configure", cctx, err)
	})
	dir, err := os.MkdirTemp("", "hpcbot-conformance-")
	if err != nil {
		s.results = append(s.results, Result{"temporary folder", err})
		return
	}
	defer os.RemoveAll(dir)
	// An empty known_hosts: a host key check would refuse any host.
	if err := os.WriteFile(filepath.Join(dir, "known_hosts"), nil, 0o600); err != nil {
		s.results = append(s.results, Result{"temporary folder", err})
		return
	}
	// Port 1 on the loopback: nothing listens, so connecting is refused at once.
	cluster := &pb.Cluster{Label: "conformance", Scheduler: s.t.Name, UploadPath: dir,
		Connection: &pb.Connection{Host: "127.0.0.1", Port: 1, User: "hpcbot-conformance", Password: "conformance", KnownHosts: filepath.Join(dir, "known_hosts")}}
	s.check("Configure accepts a cluster whose host does not answer (it does not connect)", func() error {
		cctx, cancel := call(ctx)
		defer cancel()
		_, err := c.Configure(cctx, &pb.ConfigureSchedulerRequest{Cluster: cluster})
		if err != nil {
			return errors.Join(callErr("Configure", cctx, err), fmt.Errorf("Configure: %s", status.Convert(err).Message()))
		}
		return nil
	})
	checkOnce := func() error {
		cctx, cancel := call(ctx)
		defer cancel()
		_, err := c.Check(cctx, &pb.CheckRequest{})
		return callErr("Check", cctx, err)
	}
	s.check("Check answers before its deadline, with an error of a kind when the host does not answer", checkOnce)
	s.check("concurrent Version and Check calls are all answered", func() error {
		var wg sync.WaitGroup
		errs := make([]error, 16)
		for g := range errs {
			wg.Go(func() {
				if g%2 == 0 {
					errs[g] = version(ctx, c.Version)
				} else {
					errs[g] = checkOnce()
				}
			})
		}
		wg.Wait()
		return errors.Join(errs...)
	})
	s.check("Poll of no jobs answers no statuses", func() error {
		cctx, cancel := call(ctx)
		defer cancel()
		r, err := c.Poll(cctx, &pb.PollRequest{})
		if err != nil {
			return callErr("Poll", cctx, err)
		}
		if n := len(r.GetStatuses()); n != 0 {
			return fmt.Errorf("Poll of no jobs answered %d statuses", n)
		}
		return nil
	})
	s.check("Tail is optional: Unimplemented, or an answer of a kind before its deadline when the host does not answer", func() error {
		cctx, cancel := call(ctx)
		defer cancel()
		r, err := c.Tail(cctx, &pb.TailRequest{CalcId: 1, JobId: "1", Folder: "conformance_tail", JobName: "hpcbot-conformance", MaxLines: 30, MaxBytes: 4096})
		if err != nil {
			return callErr("Tail", cctx, err)
		}
		return tailReply(r, 30, 4096)
	})
	if s.t.Local {
		s.check("runs a real job: Stage, Submit (twice: one job), Poll to the end, Tail, Fetch, Cleanup (twice)", func() error {
			return s.localJob(ctx, c, dir)
		})
	}
	s.check("still answers Version after every call", func() error { return version(ctx, c.Version) })
}

// tailReply checks a Tail answer: a known stream, within the caps asked for,
// valid UTF-8 without control characters other than newline and tab.
func tailReply(r *pb.TailReply, maxLines, maxBytes int) error {
	t := r.GetText()
	switch {
	case r.GetStream() != plugins.StreamOutput && r.GetStream() != plugins.StreamError:
		return fmt.Errorf("Tail answered stream %q: want %q or %q", r.GetStream(), plugins.StreamOutput, plugins.StreamError)
	case !utf8.ValidString(t):
		return fmt.Errorf("Tail text is not valid UTF-8: %q", t)
	case len(t) > maxBytes || strings.Count(t, "\n") >= maxLines:
		return fmt.Errorf("Tail text is %d bytes, %d lines: asked for at most %d bytes, %d lines", len(t), strings.Count(t, "\n")+1, maxBytes, maxLines)
	case strings.ContainsFunc(t, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }):
		return fmt.Errorf("Tail text holds control characters: %q", t)
	}
	return nil
}

// localJob runs `wc ./input.txt` through a scheduler that runs jobs on this
// host (configured with upload_path under dir).
func (s *suite) localJob(ctx context.Context, c pb.SchedulerClient, dir string) error {
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	for _, d := range []string{in, out} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(in, "input.txt"), []byte("H 0 0 0\n"), 0o600); err != nil {
		return err
	}
	const folder = "conformance_1"
	do := func(method string, fn func(context.Context) error) error {
		cctx, cancel := call(ctx)
		defer cancel()
		if err := fn(cctx); err != nil {
			return errors.Join(callErr(method, cctx, err), fmt.Errorf("%s: %s", method, status.Convert(err).Message()))
		}
		return nil
	}
	if err := do("Stage", func(cctx context.Context) error {
		_, err := c.Stage(cctx, &pb.StageRequest{CalcId: 1, LocalDir: in, Folder: folder})
		return err
	}); err != nil {
		return err
	}
	submit := &pb.SubmitRequest{CalcId: 1, Folder: folder, Argv: []string{"wc", "./input.txt"},
		Launch: plugins.LaunchBatch, JobName: "hpcbot-conformance"}
	var first, again *pb.SubmitReply
	if err := do("Submit", func(cctx context.Context) (err error) { first, err = c.Submit(cctx, submit); return err }); err != nil {
		return err
	}
	if err := do("Submit", func(cctx context.Context) (err error) { again, err = c.Submit(cctx, submit); return err }); err != nil {
		return err
	}
	if first.GetJobId() == "" || again.GetJobId() != first.GetJobId() || !again.GetExisting() {
		return fmt.Errorf("Submit twice for one folder: job %q, then %q (existing %v): a repeat must return the first job with existing set",
			first.GetJobId(), again.GetJobId(), again.GetExisting())
	}
	ref := &pb.JobRef{CalcId: 1, JobId: first.GetJobId(), Folder: folder, Launch: plugins.LaunchBatch}
	var st *pb.JobStatus
	for end := time.Now().Add(CallTimeout); ; {
		var r *pb.PollReply
		if err := do("Poll", func(cctx context.Context) (err error) {
			r, err = c.Poll(cctx, &pb.PollRequest{Jobs: []*pb.JobRef{ref}})
			return err
		}); err != nil {
			return err
		}
		if len(r.GetStatuses()) != 1 {
			return fmt.Errorf("Poll of one job answered %d statuses", len(r.GetStatuses()))
		}
		st = r.GetStatuses()[0]
		if plugins.State(st.GetState()).Final() {
			break
		}
		if time.Now().After(end) {
			return fmt.Errorf("the job (wc) had not finished after %s: state %q", CallTimeout, st.GetState())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st.GetState() != string(plugins.StateSucceeded) || st.ExitCode == nil || st.GetExitCode() != 0 {
		return fmt.Errorf("the job (wc) ended %q, exit code %v, reason %q: want succeeded with 0", st.GetState(), st.ExitCode, st.GetReason())
	}
	// Tail (optional): the end of wc's output, or Unimplemented.
	tctx, tcancel := call(ctx)
	tail, err := c.Tail(tctx, &pb.TailRequest{CalcId: 1, JobId: first.GetJobId(), Folder: folder, JobName: submit.JobName, MaxLines: 5, MaxBytes: 1024})
	tcancel()
	switch {
	case status.Code(err) == codes.Unimplemented:
	case err != nil:
		return errors.Join(callErr("Tail", tctx, err), fmt.Errorf("Tail of the finished job: %s", status.Convert(err).Message()))
	case tail.GetStream() != plugins.StreamOutput || !strings.Contains(tail.GetText(), "./input.txt"):
		return fmt.Errorf("Tail of the finished job: %q from stream %q, want wc's output from %q", tail.GetText(), tail.GetStream(), plugins.StreamOutput)
	default:
		if err := tailReply(tail, 5, 1024); err != nil {
			return err
		}
	}
	var fetched *pb.FetchReply
	if err := do("Fetch", func(cctx context.Context) (err error) {
		fetched, err = c.Fetch(cctx, &pb.FetchRequest{Folder: folder, LocalDir: out, Extensions: []string{".out"}})
		return err
	}); err != nil {
		return err
	}
	for _, sk := range fetched.GetSkipped() {
		if !slices.Contains(plugins.SkipCodes, sk.GetCode()) {
			return fmt.Errorf("Fetch skipped %s with code %q: want one of %v (the reason text goes to the log only)", sk.GetPath(), sk.GetCode(), plugins.SkipCodes)
		}
	}
	if !slices.ContainsFunc(fetched.GetSkipped(), func(sk *pb.Skipped) bool { return sk.GetPath() == "input.txt" }) {
		return fmt.Errorf("Fetch of *.out only did not report input.txt as skipped (code %s): skipped %v", plugins.SkipNotWhitelisted, fetched.GetSkipped())
	}
	found := false
	for _, f := range fetched.GetFiles() {
		if !filepath.IsLocal(f) {
			return fmt.Errorf("Fetch lists %q, not a name inside the local folder", f)
		}
		b, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			return fmt.Errorf("Fetch lists %s: %w", f, err)
		}
		found = found || strings.Contains(string(b), "./input.txt")
	}
	if !found {
		return fmt.Errorf("Fetch copied %q: none holds wc's output", fetched.GetFiles())
	}
	for range 2 {
		if err := do("Cleanup", func(cctx context.Context) error {
			_, err := c.Cleanup(cctx, &pb.CleanupRequest{Folder: folder})
			return err
		}); err != nil {
			return fmt.Errorf("%w (a missing folder is not an error)", err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, folder)); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("Cleanup left %s behind (%v)", filepath.Join(dir, folder), err)
	}
	return nil
}
