package kit

import (
	"context"

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

// Stats answers with the plugin's traffic counts when it is a StatsReporter,
// and Unimplemented otherwise (the host then shows the cluster without them).
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

// Tail answers when the implementation is a Tailer, and Unimplemented
// otherwise (the host then tells the user the cluster shows no logs). The
// text is cut to the request's caps and cleaned here again, whatever the
// implementation did.
func (s *schedulerServer) Tail(ctx context.Context, req *pb.TailRequest) (*pb.TailReply, error) {
	t, ok := s.impl.(Tailer)
	if !ok {
		return s.UnimplementedSchedulerServer.Tail(ctx, req)
	}
	lines, size := TailCaps(int(req.GetMaxLines()), int(req.GetMaxBytes()))
	res, err := t.Tail(ctx, TailRequest{CalcID: req.GetCalcId(), JobID: req.GetJobId(), Folder: req.GetFolder(),
		JobName: req.GetJobName(), MaxLines: lines, MaxBytes: size, PreferError: req.GetPreferError()})
	if err != nil {
		return nil, toStatus(err)
	}
	text, cut := TailText([]byte(res.Text), true, lines, size)
	return &pb.TailReply{Text: text, Stream: res.Stream, Truncated: res.Truncated || cut}, nil
}

func (s *schedulerServer) Cleanup(ctx context.Context, req *pb.CleanupRequest) (*pb.Empty, error) {
	return &pb.Empty{}, toStatus(s.impl.Cleanup(ctx, req.GetFolder()))
}
