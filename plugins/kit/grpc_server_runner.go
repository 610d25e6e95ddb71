package kit

import (
	"context"
	"errors"

	pb "hpcbot/plugins/proto"
)

// runnerServer runs in the plugin process and hands each RPC to the implementation.
type runnerServer struct {
	pb.UnimplementedRunnerServer
	impl Runner
	name string
}

func (s *runnerServer) Version(context.Context, *pb.VersionRequest) (*pb.VersionReply, error) {
	name, version := versionOf(s.impl, s.name)
	return &pb.VersionReply{Name: name, Version: version}, nil
}

func (s *runnerServer) Configure(ctx context.Context, req *pb.ConfigureRunnerRequest) (*pb.Empty, error) {
	rules := make([]RunnerRule, len(req.GetRules()))
	for i, r := range req.GetRules() {
		rules[i] = ruleFromPB(r)
	}
	if len(rules) == 0 {
		rules = nil
	}
	return &pb.Empty{}, toStatus(s.impl.Configure(ctx, req.GetCluster(), rules))
}

func (s *runnerServer) Info(ctx context.Context, _ *pb.InfoRequest) (*pb.InfoReply, error) {
	info, err := s.impl.Info(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return infoToPB(info), nil
}

// Plan sends a refusal as an answer, not as an error status.
func (s *runnerServer) Plan(ctx context.Context, req *pb.PlanRequest) (*pb.PlanReply, error) {
	plan, err := s.impl.Plan(ctx, PlanRequest{FileName: req.GetFileName(), Caption: req.GetCaption()})
	var ref *Refusal
	if errors.As(err, &ref) {
		return &pb.PlanReply{Outcome: &pb.PlanReply_Refusal{Refusal: refusalToPB(ref)}}, nil
	}
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.PlanReply{Outcome: &pb.PlanReply_Plan{Plan: planToPB(plan)}}, nil
}

// Check answers for an implementation without Checker by accepting the input
// with no resources. A refusal is an answer, not an error status.
func (s *runnerServer) Check(ctx context.Context, req *pb.CheckInputRequest) (*pb.CheckInputReply, error) {
	ch, ok := s.impl.(Checker)
	if !ok {
		return &pb.CheckInputReply{Outcome: &pb.CheckInputReply_Accepted{Accepted: &pb.InputResources{}}}, nil
	}
	res, err := ch.Check(ctx, checkFromPB(req))
	var ref *Refusal
	if errors.As(err, &ref) {
		return &pb.CheckInputReply{Outcome: &pb.CheckInputReply_Refusal{Refusal: refusalToPB(ref)}}, nil
	}
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.CheckInputReply{Outcome: &pb.CheckInputReply_Accepted{Accepted: resourcesToPB(res)}}, nil
}

// Digest answers for an implementation without Digester with no summary.
func (s *runnerServer) Digest(ctx context.Context, req *pb.DigestRequest) (*pb.DigestReply, error) {
	dg, ok := s.impl.(Digester)
	if !ok {
		return &pb.DigestReply{}, nil
	}
	d, err := dg.Digest(ctx, digestRequestFromPB(req))
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.DigestReply{Digest: digestToPB(d)}, nil
}
