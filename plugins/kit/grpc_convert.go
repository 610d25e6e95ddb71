package kit

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"hpcbot/plugins/internal/pbconv"
	pb "hpcbot/plugins/proto"
)

// Conversions between the Go contracts and their protobuf messages. Each pair is
// exact except that an empty slice or map arrives as nil, and times arrive in UTC.

func timeToPB(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func clusterFromPB(c *pb.Cluster) Cluster {
	conn := c.GetConnection()
	return Cluster{
		Label:      c.GetLabel(),
		Scheduler:  c.GetScheduler(),
		UploadPath: c.GetUploadPath(),
		Connection: Connection{
			Host:       conn.GetHost(),
			Port:       int(conn.GetPort()),
			User:       conn.GetUser(),
			Password:   Secret(conn.GetPassword()),
			KeyPath:    conn.GetKeyPath(),
			KeyPassEnv: conn.GetKeyPassphraseEnv(),
			KnownHosts: conn.GetKnownHosts(),
			HostKey:    conn.GetHostKey(),
		},
		JobIDRegex:    c.GetJobIdRegex(),
		MaxJobs:       int(c.GetMaxJobs()),
		Flavor:        c.GetFlavor(),
		Options:       pbconv.NilIfEmpty(c.GetOptions()),
		RunAs:         c.GetRunAs(),
		AllowSameUser: c.GetAllowSameUser(),
	}
}

func jobRefFromPB(j *pb.JobRef) JobRef {
	return JobRef{CalcID: j.GetCalcId(), JobID: j.GetJobId(), Folder: j.GetFolder(), Launch: j.GetLaunch()}
}

func jobStatusToPB(s JobStatus) *pb.JobStatus {
	out := &pb.JobStatus{
		JobId:   s.JobID,
		State:   string(s.State),
		Raw:     s.Raw,
		Reason:  s.Reason,
		Started: timeToPB(s.Started),
		Ended:   timeToPB(s.Ended),

		ElapsedSeconds: int64(s.Elapsed / time.Second),
		AllocCpus:      pbconv.ClampInt32(s.AllocCPUs),
		Node:           s.Node,
	}
	if s.ExitCode != nil {
		code := pbconv.ClampInt32(*s.ExitCode)
		out.ExitCode = &code
	}
	return out
}

func submitFromPB(r *pb.SubmitRequest) SubmitRequest {
	return SubmitRequest{
		CalcID:    r.GetCalcId(),
		Folder:    r.GetFolder(),
		Argv:      r.GetArgv(),
		Launch:    r.GetLaunch(),
		Resources: pbconv.NilIfEmpty(r.GetResources()),
		JobName:   r.GetJobName(),
		Comment:   r.GetComment(),
	}
}

func fetchFromPB(r *pb.FetchRequest) FetchRequest {
	return FetchRequest{
		Folder:     r.GetFolder(),
		LocalDir:   r.GetLocalDir(),
		Extensions: r.GetExtensions(),
		Files:      r.GetFiles(),
		MaxSize:    r.GetMaxSize(),
		MaxTotal:   r.GetMaxTotal(),
	}
}

func fetchResultToPB(r FetchResult) *pb.FetchReply {
	out := &pb.FetchReply{Files: r.Files, Bytes: r.Bytes}
	for _, s := range r.Skipped {
		out.Skipped = append(out.Skipped, &pb.Skipped{Path: s.Path, Size: s.Size, Code: s.Code, Reason: s.Reason})
	}
	return out
}

func ruleFromPB(r *pb.RunnerRule) RunnerRule {
	return RunnerRule{
		Runner:       r.GetRunner(),
		Program:      r.GetProgram(),
		Launch:       r.GetLaunch(),
		AllowedArgs:  r.GetAllowedArgs(),
		DefaultArgs:  r.GetDefaultArgs(),
		Associations: r.GetAssociations(),
		Description:  r.GetDescription(),
		Resources:    pbconv.NilIfEmpty(r.GetResources()),
		Results:      r.GetResults(),
		Failover:     r.Failover,
		MaxCores:     int(r.GetMaxCores()),
		MaxMemory:    r.GetMaxMemory(),
	}
}

func infoToPB(i RunnerInfo) *pb.InfoReply {
	out := &pb.InfoReply{Name: i.Name, Version: i.Version}
	for _, p := range i.Programs {
		out.Programs = append(out.Programs, &pb.ProgramInfo{
			Program:      p.Program,
			Description:  p.Description,
			AllowedArgs:  p.AllowedArgs,
			DefaultArgs:  p.DefaultArgs,
			Associations: p.Associations,
			Launch:       p.Launch,
		})
	}
	return out
}

func planToPB(p Plan) *pb.Plan {
	return &pb.Plan{
		Program:    p.Program,
		Argv:       p.Argv,
		Launch:     p.Launch,
		Resources:  p.Resources,
		Extensions: p.Extensions,
		Files:      p.Files,
		Failover:   p.Failover,
	}
}

func refusalToPB(r *Refusal) *pb.Refusal {
	return &pb.Refusal{Code: r.Code, Detail: r.Detail, Line: pbconv.ClampInt32(r.Line), Limit: r.Limit}
}

func checkFromPB(r *pb.CheckInputRequest) CheckInputRequest {
	return CheckInputRequest{FileName: r.GetFileName(), Caption: r.GetCaption(), Path: r.GetPath(), Program: r.GetProgram()}
}

func resourcesToPB(r InputResources) *pb.InputResources {
	return &pb.InputResources{Tasks: pbconv.ClampInt32(r.Tasks), CpusPerTask: pbconv.ClampInt32(r.CPUsPerTask), MemoryMb: r.MemoryMB}
}

func digestRequestFromPB(r *pb.DigestRequest) DigestRequest {
	out := DigestRequest{Dir: r.GetDir(), Files: r.GetFiles(), InputFile: r.GetInputFile(), Program: r.GetProgram(),
		Stdout: r.GetStdout(), Stderr: r.GetStderr()}
	if r.ExitCode != nil {
		code := int(r.GetExitCode())
		out.ExitCode = &code
	}
	return out
}

func digestToPB(d Digest) *pb.Digest {
	if !d.HasSummary() && d.Termination != TerminationNone {
		return nil
	}
	return &pb.Digest{
		Program: d.Program, Version: d.Version, Termination: d.Termination, TerminationLine: d.TerminationLine,
		Energy: d.Energy, EnergyMethod: d.EnergyMethod,
		Optimization: d.Optimization, OptConverged: d.OptConverged, OptCycles: pbconv.ClampInt32(d.OptCycles),
		Frequencies: pbconv.ClampInt32(d.Frequencies), Imaginary: pbconv.ClampInt32(d.Imaginary), LowestFrequency: d.LowestFrequency,
		WallSeconds: d.WallSeconds, GeometryFile: d.GeometryFile,
	}
}
