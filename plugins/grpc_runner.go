package plugins

import (
	"context"
	"fmt"
	"path/filepath"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "hpcbot/plugins/proto"
)

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
