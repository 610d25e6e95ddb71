package plugins

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
		return &pb.PlanReply{Outcome: &pb.PlanReply_Refusal{Refusal: &pb.Refusal{Code: ref.Code, Detail: ref.Detail}}}, nil
	}
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.PlanReply{Outcome: &pb.PlanReply_Plan{Plan: planToPB(plan)}}, nil
}

// runnerClient runs in hpcbot and implements Runner over one plugin connection.
type runnerClient struct {
	c    pb.RunnerClient
	done context.Context // ends when the plugin process has exited
}

var _ Runner = (*runnerClient)(nil)

func (c *runnerClient) version(ctx context.Context) (name, version string, err error) {
	res, err := c.c.Version(ctx, &pb.VersionRequest{})
	if err != nil {
		return "", "", fromStatus(ctx, err)
	}
	return res.GetName(), res.GetVersion(), nil
}

func (c *runnerClient) Configure(ctx context.Context, cluster string, rules []RunnerRule) error {
	req := &pb.ConfigureRunnerRequest{Cluster: cluster}
	for _, r := range rules {
		req.Rules = append(req.Rules, ruleToPB(r))
	}
	_, err := c.c.Configure(ctx, req)
	return fromStatus(ctx, err)
}

func (c *runnerClient) Info(ctx context.Context) (RunnerInfo, error) {
	res, err := c.c.Info(ctx, &pb.InfoRequest{})
	if err != nil {
		return RunnerInfo{}, fromStatus(ctx, err)
	}
	return infoFromPB(res), nil
}

// Plan returns a *Refusal (and no other error) when the plugin refused.
func (c *runnerClient) Plan(ctx context.Context, req PlanRequest) (Plan, error) {
	res, err := c.c.Plan(ctx, &pb.PlanRequest{FileName: req.FileName, Caption: req.Caption})
	if err != nil {
		return Plan{}, fromStatus(ctx, err)
	}
	switch out := res.GetOutcome().(type) {
	case *pb.PlanReply_Refusal:
		return Plan{}, &Refusal{Code: out.Refusal.GetCode(), Detail: out.Refusal.GetDetail()}
	case *pb.PlanReply_Plan:
		return planFromPB(out.Plan), nil
	}
	return Plan{}, &Error{Kind: KindTransient, Msg: "plugin broke the Plan contract: neither a plan nor a refusal"}
}
