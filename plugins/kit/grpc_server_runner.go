package kit

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "hpcbot/plugins/proto"
)

// ClusterMetadata is the gRPC metadata key by which hpcbot's host names the
// cluster a runner call is for, when one built-in runner process serves
// several clusters: the process keeps one instance of the runner per cluster,
// each configured with that cluster's rules. A call without it goes to the
// one instance a process serves otherwise (drop-ins, and every scheduler).
const ClusterMetadata = "hpcbot-cluster"

// runnerServer runs in the plugin process and hands each RPC to the implementation.
type runnerServer struct {
	pb.UnimplementedRunnerServer
	impl Runner
	name string
	// build makes one more instance, for a process that serves several
	// clusters (built-ins only); nil: impl serves one cluster.
	build     func() Runner
	mu        sync.Mutex
	byCluster map[string]Runner
	only      string // without build: the cluster a call named at Configure
}

// clusterOf is the cluster a call names in its metadata; ok is false when it
// names none.
func clusterOf(ctx context.Context) (cluster string, ok bool) {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(ClusterMetadata); len(v) == 1 {
		return v[0], true
	}
	return "", false
}

// instance is the implementation a call goes to: the named cluster's, or impl.
// A server without build takes a call that names the one cluster it was
// configured for.
func (s *runnerServer) instance(ctx context.Context) (Runner, error) {
	cluster, ok := clusterOf(ctx)
	if !ok {
		return s.impl, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.build == nil {
		if s.only != "" && s.only != cluster {
			return nil, status.Error(codes.FailedPrecondition, fmt.Sprintf("this runner process serves cluster %q only, not %q", s.only, cluster))
		}
		return s.impl, nil
	}
	r := s.byCluster[cluster]
	if r == nil {
		return nil, status.Error(codes.FailedPrecondition, fmt.Sprintf("runner not configured for cluster %q", cluster))
	}
	return r, nil
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
	cluster, ok := clusterOf(ctx)
	if !ok {
		return &pb.Empty{}, toStatus(s.impl.Configure(ctx, req.GetCluster(), rules))
	}
	if cluster != req.GetCluster() {
		return nil, status.Error(codes.InvalidArgument, fmt.Sprintf("configure for cluster %q sent as a call for cluster %q", req.GetCluster(), cluster))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.build == nil {
		if s.only != "" && s.only != cluster {
			return nil, status.Error(codes.FailedPrecondition, fmt.Sprintf("this runner process serves cluster %q only, not %q", s.only, cluster))
		}
		if err := s.impl.Configure(ctx, cluster, rules); err != nil {
			return nil, toStatus(err)
		}
		s.only = cluster
		return &pb.Empty{}, nil
	}
	r := s.byCluster[cluster]
	if r == nil {
		r = s.build()
	}
	if err := r.Configure(ctx, cluster, rules); err != nil {
		return nil, toStatus(err)
	}
	if s.byCluster == nil {
		s.byCluster = map[string]Runner{}
	}
	s.byCluster[cluster] = r
	return &pb.Empty{}, nil
}

func (s *runnerServer) Info(ctx context.Context, _ *pb.InfoRequest) (*pb.InfoReply, error) {
	impl, err := s.instance(ctx)
	if err != nil {
		return nil, err
	}
	info, err := impl.Info(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return infoToPB(info), nil
}

// Plan sends a refusal as an answer, not as an error status.
func (s *runnerServer) Plan(ctx context.Context, req *pb.PlanRequest) (*pb.PlanReply, error) {
	impl, err := s.instance(ctx)
	if err != nil {
		return nil, err
	}
	plan, err := impl.Plan(ctx, PlanRequest{FileName: req.GetFileName(), Caption: req.GetCaption()})
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
	impl, err := s.instance(ctx)
	if err != nil {
		return nil, err
	}
	ch, ok := impl.(Checker)
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
	impl, err := s.instance(ctx)
	if err != nil {
		return nil, err
	}
	dg, ok := impl.(Digester)
	if !ok {
		return &pb.DigestReply{}, nil
	}
	d, err := dg.Digest(ctx, digestRequestFromPB(req))
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.DigestReply{Digest: digestToPB(d)}, nil
}
