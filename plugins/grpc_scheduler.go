package plugins

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "hpcbot/plugins/proto"
)

// schedulerClient runs in hpcbot and implements Scheduler over one plugin
// connection. It adds no deadlines and no restarts: the Host's proxy does.
type schedulerClient struct {
	c    pb.SchedulerClient
	done context.Context // ends when the plugin process has exited
}

var _ Scheduler = (*schedulerClient)(nil)

func (c *schedulerClient) version(ctx context.Context) (name, version string, err error) {
	res, err := c.c.Version(ctx, &pb.VersionRequest{})
	if err != nil {
		return "", "", fromStatus(ctx, err)
	}
	return res.GetName(), res.GetVersion(), nil
}

func (c *schedulerClient) Configure(ctx context.Context, cl Cluster) error {
	_, err := c.c.Configure(ctx, &pb.ConfigureSchedulerRequest{Cluster: clusterToPB(cl)})
	return fromStatus(ctx, err)
}

func (c *schedulerClient) Check(ctx context.Context) (CheckResult, error) {
	res, err := c.c.Check(ctx, &pb.CheckRequest{})
	if err != nil {
		return CheckResult{}, fromStatus(ctx, err)
	}
	return CheckResult{Scheduler: res.GetScheduler(), Host: res.GetHost(), Detail: res.GetDetail()}, nil
}

func (c *schedulerClient) Stage(ctx context.Context, req StageRequest) error {
	_, err := c.c.Stage(ctx, &pb.StageRequest{CalcId: req.CalcID, LocalDir: req.LocalDir, Folder: req.Folder})
	return fromStatus(ctx, err)
}

func (c *schedulerClient) Submit(ctx context.Context, req SubmitRequest) (SubmitResult, error) {
	res, err := c.c.Submit(ctx, submitToPB(req))
	if err != nil {
		return SubmitResult{}, fromStatus(ctx, err)
	}
	return SubmitResult{JobID: res.GetJobId(), Output: res.GetOutput(), Existing: res.GetExisting()}, nil
}

func (c *schedulerClient) Poll(ctx context.Context, jobs []JobRef) ([]JobStatus, error) {
	req := &pb.PollRequest{Jobs: make([]*pb.JobRef, len(jobs))}
	for i, j := range jobs {
		req.Jobs[i] = jobRefToPB(j)
	}
	res, err := c.c.Poll(ctx, req)
	if err != nil {
		return nil, fromStatus(ctx, err)
	}
	if len(res.GetStatuses()) != len(jobs) {
		// A plugin bug; transient so that no calculation fails on it alone.
		return nil, &Error{Kind: KindTransient, Msg: fmt.Sprintf(
			"plugin broke the Poll contract: %d statuses for %d jobs", len(res.GetStatuses()), len(jobs))}
	}
	out := make([]JobStatus, len(jobs))
	for i, st := range res.GetStatuses() {
		out[i] = jobStatusFromPB(st)
	}
	return out, nil
}

func (c *schedulerClient) Cancel(ctx context.Context, job JobRef) error {
	_, err := c.c.Cancel(ctx, &pb.CancelRequest{Job: jobRefToPB(job)})
	return fromStatus(ctx, err)
}

func (c *schedulerClient) Fetch(ctx context.Context, req FetchRequest) (FetchResult, error) {
	res, err := c.c.Fetch(ctx, fetchToPB(req))
	if err != nil {
		return FetchResult{}, fromStatus(ctx, err)
	}
	return fetchResultFromPB(res), nil
}

func (c *schedulerClient) Cleanup(ctx context.Context, folder string) error {
	_, err := c.c.Cleanup(ctx, &pb.CleanupRequest{Folder: folder})
	return fromStatus(ctx, err)
}

func (c *schedulerClient) TransportStats(ctx context.Context) (TransportStats, error) {
	r, err := c.c.Stats(ctx, &pb.StatsRequest{})
	if err != nil {
		return TransportStats{}, fromStatus(ctx, err)
	}
	return TransportStats{Handshakes: r.GetHandshakes(), Commands: r.GetCommands(), AuthFailures: r.GetAuthFailures()}, nil
}

// ErrNotSupported is wrapped by the error of an optional call (Tail) that the
// plugin does not implement: it answered gRPC Unimplemented.
var ErrNotSupported = errors.New("the plugin does not support this call")

// Tail asks for the end of a job's output with the caps clamped to
// MaxTailLines and MaxTailBytes, and cleans the answer again with TailText:
// whatever the plugin sends, the text is bounded, valid UTF-8 and free of
// control characters. A plugin without Tail gives an error wrapping
// ErrNotSupported (kind permanent).
func (c *schedulerClient) Tail(ctx context.Context, req TailRequest) (TailResult, error) {
	req.MaxLines, req.MaxBytes = TailCaps(req.MaxLines, req.MaxBytes)
	res, err := c.c.Tail(ctx, tailToPB(req))
	if status.Code(err) == codes.Unimplemented && ctx.Err() == nil {
		return TailResult{}, &Error{Kind: KindPermanent, Msg: "tail", Err: ErrNotSupported}
	}
	if err != nil {
		return TailResult{}, fromStatus(ctx, err)
	}
	stream := res.GetStream()
	if stream != StreamOutput && stream != StreamError {
		return TailResult{}, &Error{Kind: KindTransient, Msg: fmt.Sprintf("plugin broke the Tail contract: stream %q", stream)}
	}
	text, cut := TailText([]byte(res.GetText()), true, req.MaxLines, req.MaxBytes)
	return TailResult{Text: text, Stream: stream, Truncated: res.GetTruncated() || cut}, nil
}
