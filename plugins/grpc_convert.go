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
