// The checks of a runner plugin: Configure, Info, Plan, Check and Digest.

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

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"hpcbot/plugins"
	pb "hpcbot/plugins/proto"
)

var refusalCodes = []string{plugins.RefuseNoProgram, plugins.RefuseUnknownProgram, plugins.RefuseArgNotAllowed,
	plugins.RefuseNoInput, plugins.RefuseBadCaption, plugins.RefuseInputEmpty, plugins.RefuseInputEncoding,
	plugins.RefuseInputBinary, plugins.RefuseXYZHeader, plugins.RefuseXYZCount, plugins.RefuseXYZAtom,
	plugins.RefuseTooManyCores, plugins.RefuseTooMuchMemory, plugins.RefuseCaptionCores}

func refusal(method string, r *pb.Refusal) error {
	if !slices.Contains(refusalCodes, r.GetCode()) {
		return fmt.Errorf("%s refused with code %q, which hpcbot cannot tell the user (known: %s)", method, r.GetCode(), strings.Join(refusalCodes, ", "))
	}
	return text(method+" refusal detail", r.GetDetail())
}

// The rule the runner is configured with: an extension no real program uses.
const (
	testProgram = "hpcbot-conformance-program"
	testExt     = ".hpcbotconf"
	testInput   = "input" + testExt
)

func (s *suite) runner(ctx context.Context, c pb.RunnerClient, negotiated int) {
	s.check("Version names the plugin and its version", func() error { return version(ctx, c.Version) })
	s.check("Configure refuses a rule without a program (permanent error)", func() error {
		cctx, cancel := call(ctx)
		defer cancel()
		_, err := c.Configure(cctx, &pb.ConfigureRunnerRequest{Cluster: "conformance", Rules: []*pb.RunnerRule{
			{Runner: s.t.Name, Associations: []string{testExt}}}})
		return permanent("Configure", cctx, err)
	})

	s.check("Configure accepts a plain rule", func() error {
		cctx, cancel := call(ctx)
		defer cancel()
		_, err := c.Configure(cctx, &pb.ConfigureRunnerRequest{Cluster: "conformance", Rules: []*pb.RunnerRule{
			{Runner: s.t.Name, Program: testProgram, Associations: []string{testExt}}}})
		if err != nil {
			return errors.Join(callErr("Configure", cctx, err), fmt.Errorf("Configure: %s", status.Convert(err).Message()))
		}

		return nil
	})
	s.check("Info names the runner and lists well-formed programs", func() error {
		cctx, cancel := call(ctx)
		defer cancel()
		r, err := c.Info(cctx, &pb.InfoRequest{})
		if err != nil {
			return errors.Join(callErr("Info", cctx, err), fmt.Errorf("Info: %w", err))
		}
		if r.GetName() == "" {
			return errors.New("Info answered no name")
		}
		for _, p := range r.GetPrograms() {
			if p.GetProgram() == "" {
				return errors.New("Info lists a program without a name")
			}
			for _, a := range p.GetAssociations() {
				if !strings.HasPrefix(a, ".") {
					return fmt.Errorf("Info: program %s: association %q does not start with a dot", p.GetProgram(), a)
				}
			}
		}
		return nil
	})
	plan := func(req *pb.PlanRequest) (*pb.PlanReply, error) {
		cctx, cancel := call(ctx)
		defer cancel()
		r, err := c.Plan(cctx, req)
		if err != nil {
			return nil, errors.Join(callErr("Plan", cctx, err), fmt.Errorf("Plan(%q, %q) returned an error, not a plan or a refusal: %s", req.GetFileName(), req.GetCaption(), status.Convert(err).Message()))
		}
		switch o := r.GetOutcome().(type) {
		case *pb.PlanReply_Refusal:
			return r, refusal("Plan", o.Refusal)
		case *pb.PlanReply_Plan:
			p := o.Plan
			if p.GetProgram() == "" || len(p.GetArgv()) == 0 {
				return r, fmt.Errorf("Plan(%q, %q): a plan without a program or argv", req.GetFileName(), req.GetCaption())
			}
			if strings.Contains(req.GetCaption(), "{}") && !slices.ContainsFunc(p.GetArgv(), func(a string) bool { return strings.Contains(a, req.GetFileName()) }) {
				return r, fmt.Errorf("Plan(%q, %q): argv %q does not name the input file", req.GetFileName(), req.GetCaption(), p.GetArgv())
			}
			if l := p.GetLaunch(); l != "" && l != plugins.LaunchBatch && l != plugins.LaunchWrapper {
				return r, fmt.Errorf("Plan: launch %q is neither %s nor %s", l, plugins.LaunchBatch, plugins.LaunchWrapper)
			}
			return r, nil
		}
		return r, fmt.Errorf("Plan(%q, %q) answered neither a plan nor a refusal", req.GetFileName(), req.GetCaption())
	}
	requests := []*pb.PlanRequest{{FileName: testInput}, {FileName: "input.unknownext"}, {FileName: testInput, Caption: testProgram + " {}"}}
	s.check("Plan answers a plan or a known refusal", func() error {
		var errs []error
		for _, req := range requests {
			_, err := plan(req)
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
	s.check("Plan refuses a caption with an unbalanced quote", func() error {
		r, err := plan(&pb.PlanRequest{FileName: testInput, Caption: testProgram + ` "{}`})
		if err != nil {
			return err
		}
		if r.GetRefusal() == nil {
			return fmt.Errorf(`Plan(%q, %q) answered a plan: want a refusal (%s)`, testInput, testProgram+` "{}`, plugins.RefuseBadCaption)
		}
		return nil
	})
	s.check("Plan is pure: the same request, sequentially and concurrently, gets the same answer", func() error {
		want := make([]*pb.PlanReply, len(requests))
		for i, req := range requests {
			r, err := plan(req)
			if err != nil {
				return err
			}
			want[i] = r
		}
		var wg sync.WaitGroup
		errs := make([]error, 32)
		for g := range errs {
			wg.Go(func() {
				i := g % len(requests)
				r, err := plan(requests[i])
				if err == nil && !proto.Equal(r, want[i]) {
					err = fmt.Errorf("Plan(%q, %q) answered %v, then %v", requests[i].GetFileName(), requests[i].GetCaption(), want[i], r)
				}
				errs[g] = err
			})
		}
		wg.Wait()
		return errors.Join(errs...)
	})
	if negotiated >= 2 {
		s.check("Check reads an empty input: accepted or a known refusal", func() error {
			dir, err := os.MkdirTemp("", "hpcbot-conformance-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			path := filepath.Join(dir, testInput)
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				return err
			}
			cctx, cancel := call(ctx)
			defer cancel()
			r, err := c.Check(cctx, &pb.CheckInputRequest{FileName: testInput, Path: path, Program: testProgram})
			if err != nil {
				return errors.Join(callErr("Check", cctx, err), fmt.Errorf("Check of an empty input returned an error, not an answer: %s", status.Convert(err).Message()))
			}
			switch o := r.GetOutcome().(type) {
			case *pb.CheckInputReply_Refusal:
				return refusal("Check", o.Refusal)
			case *pb.CheckInputReply_Accepted:
				a := o.Accepted
				if a.GetTasks() < 0 || a.GetCpusPerTask() < 0 || a.GetMemoryMb() < 0 {
					return fmt.Errorf("Check accepted with negative resources %v", a)
				}
				return nil
			}
			return errors.New("Check answered neither accepted nor a refusal")
		})
		s.check("Digest of an empty result folder: no digest, or one with a known termination", func() error {
			dir, err := os.MkdirTemp("", "hpcbot-conformance-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			cctx, cancel := call(ctx)
			defer cancel()
			r, err := c.Digest(cctx, &pb.DigestRequest{Dir: dir, InputFile: testInput, Program: testProgram})
			if err != nil {
				return errors.Join(callErr("Digest", cctx, err), fmt.Errorf("Digest: %s", status.Convert(err).Message()))
			}
			d := r.GetDigest()
			if d == nil {
				return nil
			}
			switch d.GetTermination() {
			case plugins.TerminationNone:
				return nil
			case plugins.TerminationNormal:
				return fmt.Errorf("Digest of an empty folder says %q: a run whose output is missing did not end normally", d.GetTermination())
			case plugins.TerminationFailed, plugins.TerminationUnfinished:
			default:
				return fmt.Errorf("Digest termination %q is none of normal, failed, unfinished, none", d.GetTermination())
			}
			if d.GetEnergy() != "" {
				return fmt.Errorf("Digest of an empty folder gives an energy %q: a digest never guesses", d.GetEnergy())
			}
			return errors.Join(text("Digest termination_line", d.GetTerminationLine()), text("Digest program", d.GetProgram()))
		})
	}
	s.check("still answers Version after every call", func() error { return version(ctx, c.Version) })
}
