package plugins

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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

// runnerClient runs in hpcbot and implements Runner over one plugin connection.
type runnerClient struct {
	c     pb.RunnerClient
	done  context.Context // ends when the plugin process has exited
	proto int             // the protocol version the plugin announced
}

var _ FullRunner = (*runnerClient)(nil)

// lied is the error for a protocol-2 runner that does not implement a call of
// protocol 2: it announced a version it does not speak.
func (c *runnerClient) lied(call string, err error) error {
	return &Error{Kind: KindPermanent, Msg: fmt.Sprintf(
		"runner plugin announced plugin protocol %d but does not implement %s, a call of protocol %d: "+
			"it speaks protocol 1; rebuild it for protocol %d (this hpcbot speaks %s) or let it announce 1",
		c.proto, call, ProtocolVersion, ProtocolVersion, versionsText()), Err: err}
}

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
		return Plan{}, refusalFromPB(out.Refusal)
	case *pb.PlanReply_Plan:
		return planFromPB(out.Plan), nil
	}
	return Plan{}, &Error{Kind: KindTransient, Msg: "plugin broke the Plan contract: neither a plan nor a refusal"}
}

// Check asks a protocol-2 plugin; a protocol-1 plugin accepts every input with
// no resources. It returns a *Refusal (and no other error) when the plugin refused.
func (c *runnerClient) Check(ctx context.Context, req CheckInputRequest) (InputResources, error) {
	if c.proto < 2 {
		return InputResources{}, nil
	}
	res, err := c.c.Check(ctx, checkToPB(req))
	if status.Code(err) == codes.Unimplemented {
		return InputResources{}, c.lied("Check", err)
	}
	if err != nil {
		return InputResources{}, fromStatus(ctx, err)
	}
	switch out := res.GetOutcome().(type) {
	case *pb.CheckInputReply_Refusal:
		return InputResources{}, refusalFromPB(out.Refusal)
	case *pb.CheckInputReply_Accepted:
		return resourcesFromPB(out.Accepted), nil
	}
	return InputResources{}, &Error{Kind: KindTransient, Msg: "plugin broke the Check contract: neither accepted nor a refusal"}
}

// Digest asks a protocol-2 plugin; a protocol-1 plugin has no summary. The
// names in req must be local (filepath.IsLocal): the plugin opens them under Dir.
func (c *runnerClient) Digest(ctx context.Context, req DigestRequest) (Digest, error) {
	if c.proto < 2 {
		return Digest{}, nil
	}
	if err := checkDigestNames(req); err != nil {
		return Digest{}, err
	}
	res, err := c.c.Digest(ctx, digestRequestToPB(req))
	if status.Code(err) == codes.Unimplemented {
		return Digest{}, c.lied("Digest", err)
	}
	if err != nil {
		return Digest{}, fromStatus(ctx, err)
	}
	if res.GetDigest() == nil {
		return Digest{}, nil
	}
	return digestFromPB(res.GetDigest()), nil
}

// checkDigestNames refuses a request whose Dir is not absolute or whose file
// names are not plain relative names inside it.
func checkDigestNames(req DigestRequest) error {
	if !filepath.IsAbs(req.Dir) {
		return &Error{Kind: KindPermanent, Msg: fmt.Sprintf("digest: results folder %q is not an absolute path", req.Dir)}
	}
	names := append([]string{}, req.Files...)
	for _, n := range []string{req.Stdout, req.Stderr} {
		if n != "" {
			names = append(names, n)
		}
	}
	for _, n := range names {
		if !filepath.IsLocal(n) {
			return &Error{Kind: KindPermanent, Msg: fmt.Sprintf("digest: result file name %q is not a local name inside the results folder", n)}
		}
	}
	return nil
}
