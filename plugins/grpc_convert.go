package plugins

import (
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"hpcbot/plugins/internal/pbconv"
	pb "hpcbot/plugins/proto"
)

// Conversions between the Go contracts and their protobuf messages. Each pair is
// exact except that an empty slice or map arrives as nil, and times arrive in UTC.

func timeFromPB(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

func clusterToPB(c Cluster) *pb.Cluster {
	return &pb.Cluster{
		Label:      c.Label,
		Scheduler:  c.Scheduler,
		UploadPath: c.UploadPath,
		Connection: &pb.Connection{
			Host:             c.Connection.Host,
			Port:             pbconv.ClampInt32(c.Connection.Port),
			User:             c.Connection.User,
			Password:         string(c.Connection.Password),
			KeyPath:          c.Connection.KeyPath,
			KeyPassphraseEnv: c.Connection.KeyPassEnv,
			KnownHosts:       c.Connection.KnownHosts,
			HostKey:          c.Connection.HostKey,
		},
		JobIdRegex:    c.JobIDRegex,
		MaxJobs:       pbconv.ClampInt32(c.MaxJobs),
		Flavor:        c.Flavor,
		Options:       c.Options,
		RunAs:         c.RunAs,
		AllowSameUser: c.AllowSameUser,
	}
}

func jobRefToPB(j JobRef) *pb.JobRef {
	return &pb.JobRef{CalcId: j.CalcID, JobId: j.JobID, Folder: j.Folder, Launch: j.Launch}
}

func jobStatusFromPB(s *pb.JobStatus) JobStatus {
	out := JobStatus{
		JobID:   s.GetJobId(),
		State:   State(s.GetState()),
		Raw:     s.GetRaw(),
		Reason:  s.GetReason(),
		Started: timeFromPB(s.GetStarted()),
		Ended:   timeFromPB(s.GetEnded()),

		Elapsed:   time.Duration(max(s.GetElapsedSeconds(), 0)) * time.Second,
		AllocCPUs: int(max(s.GetAllocCpus(), 0)),
		Node:      s.GetNode(),
	}
	if s.ExitCode != nil {
		code := int(*s.ExitCode)
		out.ExitCode = &code
	}
	return out
}

func submitToPB(r SubmitRequest) *pb.SubmitRequest {
	return &pb.SubmitRequest{
		CalcId:    r.CalcID,
		Folder:    r.Folder,
		Argv:      r.Argv,
		Launch:    r.Launch,
		Resources: r.Resources,
		JobName:   r.JobName,
		Comment:   r.Comment,
	}
}

func fetchToPB(r FetchRequest) *pb.FetchRequest {
	return &pb.FetchRequest{
		Folder:     r.Folder,
		LocalDir:   r.LocalDir,
		Extensions: r.Extensions,
		Files:      r.Files,
		MaxSize:    r.MaxSize,
		MaxTotal:   r.MaxTotal,
	}
}

// fetchResultFromPB keeps a skipped file's code only when it is one hpcbot
// knows: another code, or none (a plugin older than codes sends its reason
// as English text only), becomes SkipOther, and the text stays in Reason for
// the log.
func fetchResultFromPB(r *pb.FetchReply) FetchResult {
	out := FetchResult{Files: r.GetFiles(), Bytes: r.GetBytes()}
	for _, s := range r.GetSkipped() {
		code, reason := s.GetCode(), s.GetReason()
		if !slices.Contains(SkipCodes, code) {
			if code != "" {
				reason = strings.TrimSpace("code " + code + "; " + reason)
			}
			code = SkipOther
		}
		out.Skipped = append(out.Skipped, Skipped{Path: s.GetPath(), Size: s.GetSize(), Code: code, Reason: reason})
	}
	return out
}

func tailToPB(r TailRequest) *pb.TailRequest {
	return &pb.TailRequest{CalcId: r.CalcID, JobId: r.JobID, Folder: r.Folder, JobName: r.JobName,
		MaxLines: pbconv.ClampInt32(r.MaxLines), MaxBytes: pbconv.ClampInt32(r.MaxBytes), PreferError: r.PreferError}
}

func ruleToPB(r RunnerRule) *pb.RunnerRule {
	return &pb.RunnerRule{
		Runner:       r.Runner,
		Program:      r.Program,
		Launch:       r.Launch,
		AllowedArgs:  r.AllowedArgs,
		DefaultArgs:  r.DefaultArgs,
		Associations: r.Associations,
		Description:  r.Description,
		Resources:    r.Resources,
		Results:      r.Results,
		Failover:     r.Failover,
		MaxCores:     pbconv.ClampInt32(r.MaxCores),
		MaxMemory:    r.MaxMemory,
	}
}

func infoFromPB(i *pb.InfoReply) RunnerInfo {
	out := RunnerInfo{Name: i.GetName(), Version: i.GetVersion()}
	for _, p := range i.GetPrograms() {
		out.Programs = append(out.Programs, ProgramInfo{
			Program:      p.GetProgram(),
			Description:  p.GetDescription(),
			AllowedArgs:  p.GetAllowedArgs(),
			DefaultArgs:  p.GetDefaultArgs(),
			Associations: p.GetAssociations(),
			Launch:       p.GetLaunch(),
		})
	}
	return out
}

func planFromPB(p *pb.Plan) Plan {
	return Plan{
		Program:    p.GetProgram(),
		Argv:       p.GetArgv(),
		Launch:     p.GetLaunch(),
		Resources:  pbconv.NilIfEmpty(p.GetResources()),
		Extensions: p.GetExtensions(),
		Files:      p.GetFiles(),
		Failover:   p.GetFailover(),
	}
}

func refusalFromPB(r *pb.Refusal) *Refusal {
	return &Refusal{Code: r.GetCode(), Detail: r.GetDetail(), Line: int(r.GetLine()), Limit: r.GetLimit()}
}

func checkToPB(r CheckInputRequest) *pb.CheckInputRequest {
	return &pb.CheckInputRequest{FileName: r.FileName, Caption: r.Caption, Path: r.Path, Program: r.Program}
}

// resourcesFromPB drops negative values: zero is "not stated".
func resourcesFromPB(r *pb.InputResources) InputResources {
	return InputResources{
		Tasks:       max(0, int(r.GetTasks())),
		CPUsPerTask: max(0, int(r.GetCpusPerTask())),
		MemoryMB:    max(0, r.GetMemoryMb()),
	}
}

func digestRequestToPB(r DigestRequest) *pb.DigestRequest {
	out := &pb.DigestRequest{Dir: r.Dir, Files: r.Files, InputFile: r.InputFile, Program: r.Program, Stdout: r.Stdout, Stderr: r.Stderr}
	if r.ExitCode != nil {
		code := pbconv.ClampInt32(*r.ExitCode)
		out.ExitCode = &code
	}
	return out
}

// digestFromPB keeps a digest only with a known termination: anything else
// from a plugin is "no summary", never a guess.
func digestFromPB(d *pb.Digest) Digest {
	switch d.GetTermination() {
	case TerminationNormal, TerminationFailed, TerminationUnfinished:
	case TerminationNone:
		return Digest{Program: d.GetProgram(), Termination: TerminationNone}
	default:
		return Digest{}
	}
	return Digest{
		Program: d.GetProgram(), Version: d.GetVersion(), Termination: d.GetTermination(), TerminationLine: d.GetTerminationLine(),
		Energy: d.GetEnergy(), EnergyMethod: d.GetEnergyMethod(),
		Optimization: d.GetOptimization(), OptConverged: d.GetOptConverged(), OptCycles: max(0, int(d.GetOptCycles())),
		Frequencies: max(0, int(d.GetFrequencies())), Imaginary: max(0, int(d.GetImaginary())), LowestFrequency: d.GetLowestFrequency(),
		WallSeconds: max(0, d.GetWallSeconds()), GeometryFile: d.GetGeometryFile(),
	}
}
