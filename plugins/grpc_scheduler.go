package plugins

import (
	"context"
	"fmt"

	pb "hpcbot/plugins/proto"
)

// schedulerServer runs in the plugin process and hands each RPC to the implementation.
type schedulerServer struct {
	pb.UnimplementedSchedulerServer
	impl Scheduler
	name string
}

func (s *schedulerServer) Version(context.Context, *pb.VersionRequest) (*pb.VersionReply, error) {
	name, version := versionOf(s.impl, s.name)
	return &pb.VersionReply{Name: name, Version: version}, nil
}

func (s *schedulerServer) Configure(ctx context.Context, req *pb.ConfigureSchedulerRequest) (*pb.Empty, error) {
	return &pb.Empty{}, toStatus(s.impl.Configure(ctx, clusterFromPB(req.GetCluster())))
}

func (s *schedulerServer) Check(ctx context.Context, _ *pb.CheckRequest) (*pb.CheckReply, error) {
	res, err := s.impl.Check(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.CheckReply{Scheduler: res.Scheduler, Host: res.Host, Detail: res.Detail}, nil
}

func (s *schedulerServer) Stage(ctx context.Context, req *pb.StageRequest) (*pb.Empty, error) {
	err := s.impl.Stage(ctx, StageRequest{CalcID: req.GetCalcId(), LocalDir: req.GetLocalDir(), Folder: req.GetFolder()})
	return &pb.Empty{}, toStatus(err)
}

func (s *schedulerServer) Submit(ctx context.Context, req *pb.SubmitRequest) (*pb.SubmitReply, error) {
	res, err := s.impl.Submit(ctx, submitFromPB(req))
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.SubmitReply{JobId: res.JobID, Output: res.Output, Existing: res.Existing}, nil
}

func (s *schedulerServer) Poll(ctx context.Context, req *pb.PollRequest) (*pb.PollReply, error) {
	refs := make([]JobRef, len(req.GetJobs()))
	for i, j := range req.GetJobs() {
		refs[i] = jobRefFromPB(j)
	}
	sts, err := s.impl.Poll(ctx, refs)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &pb.PollReply{Statuses: make([]*pb.JobStatus, len(sts))}
	for i, st := range sts {
		out.Statuses[i] = jobStatusToPB(st)
	}
	return out, nil
}

func (s *schedulerServer) Cancel(ctx context.Context, req *pb.CancelRequest) (*pb.Empty, error) {
	return &pb.Empty{}, toStatus(s.impl.Cancel(ctx, jobRefFromPB(req.GetJob())))
}

func (s *schedulerServer) Fetch(ctx context.Context, req *pb.FetchRequest) (*pb.FetchReply, error) {
	res, err := s.impl.Fetch(ctx, fetchFromPB(req))
	if err != nil {
		return nil, toStatus(err)
	}
	return fetchResultToPB(res), nil
}

func (s *schedulerServer) Stats(ctx context.Context, _ *pb.StatsRequest) (*pb.StatsReply, error) {
	sr, ok := s.impl.(StatsReporter)
	if !ok {
		return s.UnimplementedSchedulerServer.Stats(ctx, nil)
	}
	st, err := sr.TransportStats(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.StatsReply{Handshakes: st.Handshakes, Commands: st.Commands, AuthFailures: st.AuthFailures}, nil
}

func (s *schedulerServer) Cleanup(ctx context.Context, req *pb.CleanupRequest) (*pb.Empty, error) {
	return &pb.Empty{}, toStatus(s.impl.Cleanup(ctx, req.GetFolder()))
}

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
