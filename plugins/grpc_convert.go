package plugins

import (
	"math"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "hpcbot/plugins/proto"
)

// Conversions between the Go contracts and their protobuf messages. Each pair is
// exact except that an empty slice or map arrives as nil, and times arrive in UTC.

func clampInt32(n int) int32 {
	return int32(max(math.MinInt32, min(n, math.MaxInt32)))
}

func timeToPB(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

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
			Port:             clampInt32(c.Connection.Port),
			User:             c.Connection.User,
			Password:         string(c.Connection.Password),
			KeyPath:          c.Connection.KeyPath,
			KeyPassphraseEnv: c.Connection.KeyPassEnv,
			KnownHosts:       c.Connection.KnownHosts,
			HostKey:          c.Connection.HostKey,
		},
		JobIdRegex:    c.JobIDRegex,
		MaxJobs:       clampInt32(c.MaxJobs),
		Flavor:        c.Flavor,
		Options:       c.Options,
		RunAs:         c.RunAs,
		AllowSameUser: c.AllowSameUser,
	}
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
		Options:       nilIfEmpty(c.GetOptions()),
		RunAs:         c.GetRunAs(),
		AllowSameUser: c.GetAllowSameUser(),
	}
}

func nilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

func jobRefToPB(j JobRef) *pb.JobRef {
	return &pb.JobRef{CalcId: j.CalcID, JobId: j.JobID, Folder: j.Folder, Launch: j.Launch}
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
		AllocCpus:      clampInt32(s.AllocCPUs),
	}
	if s.ExitCode != nil {
		code := clampInt32(*s.ExitCode)
		out.ExitCode = &code
	}
	return out
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

func submitFromPB(r *pb.SubmitRequest) SubmitRequest {
	return SubmitRequest{
		CalcID:    r.GetCalcId(),
		Folder:    r.GetFolder(),
		Argv:      r.GetArgv(),
		Launch:    r.GetLaunch(),
		Resources: nilIfEmpty(r.GetResources()),
		JobName:   r.GetJobName(),
		Comment:   r.GetComment(),
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
		out.Skipped = append(out.Skipped, &pb.Skipped{Path: s.Path, Size: s.Size, Reason: s.Reason})
	}
	return out
}

func fetchResultFromPB(r *pb.FetchReply) FetchResult {
	out := FetchResult{Files: r.GetFiles(), Bytes: r.GetBytes()}
	for _, s := range r.GetSkipped() {
		out.Skipped = append(out.Skipped, Skipped{Path: s.GetPath(), Size: s.GetSize(), Reason: s.GetReason()})
	}
	return out
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
		MaxCores:     clampInt32(r.MaxCores),
		MaxMemory:    r.MaxMemory,
	}
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
		Resources:    nilIfEmpty(r.GetResources()),
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

func planFromPB(p *pb.Plan) Plan {
	return Plan{
		Program:    p.GetProgram(),
		Argv:       p.GetArgv(),
		Launch:     p.GetLaunch(),
		Resources:  nilIfEmpty(p.GetResources()),
		Extensions: p.GetExtensions(),
		Files:      p.GetFiles(),
		Failover:   p.GetFailover(),
	}
}

func refusalToPB(r *Refusal) *pb.Refusal {
	return &pb.Refusal{Code: r.Code, Detail: r.Detail, Line: clampInt32(r.Line), Limit: r.Limit}
}

func refusalFromPB(r *pb.Refusal) *Refusal {
	return &Refusal{Code: r.GetCode(), Detail: r.GetDetail(), Line: int(r.GetLine()), Limit: r.GetLimit()}
}

func checkToPB(r CheckInputRequest) *pb.CheckInputRequest {
	return &pb.CheckInputRequest{FileName: r.FileName, Caption: r.Caption, Path: r.Path, Program: r.Program}
}

func checkFromPB(r *pb.CheckInputRequest) CheckInputRequest {
	return CheckInputRequest{FileName: r.GetFileName(), Caption: r.GetCaption(), Path: r.GetPath(), Program: r.GetProgram()}
}

func resourcesToPB(r InputResources) *pb.InputResources {
	return &pb.InputResources{Tasks: clampInt32(r.Tasks), CpusPerTask: clampInt32(r.CPUsPerTask), MemoryMb: r.MemoryMB}
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
		code := clampInt32(*r.ExitCode)
		out.ExitCode = &code
	}
	return out
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
		Optimization: d.Optimization, OptConverged: d.OptConverged, OptCycles: clampInt32(d.OptCycles),
		Frequencies: clampInt32(d.Frequencies), Imaginary: clampInt32(d.Imaginary), LowestFrequency: d.LowestFrequency,
		WallSeconds: d.WallSeconds, GeometryFile: d.GeometryFile,
	}
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
