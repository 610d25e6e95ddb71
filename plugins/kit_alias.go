package plugins

import "hpcbot/plugins/kit"

// The contract between hpcbot and its plugins is defined in package kit, which
// a plugin imports without this package (the host). These names keep the
// contract reachable as plugins.X for hpcbot's own code: one definition.

type (
	CheckInputRequest = kit.CheckInputRequest
	CheckResult       = kit.CheckResult
	Checker           = kit.Checker
	Cluster           = kit.Cluster
	Connection        = kit.Connection
	Digest            = kit.Digest
	DigestRequest     = kit.DigestRequest
	Digester          = kit.Digester
	Duration          = kit.Duration
	Error             = kit.Error
	FetchRequest      = kit.FetchRequest
	FetchResult       = kit.FetchResult
	FullRunner        = kit.FullRunner
	InputResources    = kit.InputResources
	JobRef            = kit.JobRef
	JobStatus         = kit.JobStatus
	Kind              = kit.Kind
	Plan              = kit.Plan
	PlanRequest       = kit.PlanRequest
	ProgramInfo       = kit.ProgramInfo
	Refusal           = kit.Refusal
	Runner            = kit.Runner
	RunnerInfo        = kit.RunnerInfo
	RunnerRule        = kit.RunnerRule
	Scheduler         = kit.Scheduler
	StatsReporter     = kit.StatsReporter
	TransportStats    = kit.TransportStats
	Secret            = kit.Secret
	Skipped           = kit.Skipped
	StageRequest      = kit.StageRequest
	State             = kit.State
	SubmitRequest     = kit.SubmitRequest
	SubmitResult      = kit.SubmitResult
	TailRequest       = kit.TailRequest
	TailResult        = kit.TailResult
	Tailer            = kit.Tailer
	Versioner         = kit.Versioner
)

const (
	LaunchBatch            = kit.LaunchBatch
	LaunchWrapper          = kit.LaunchWrapper
	DefaultCallTimeout     = kit.DefaultCallTimeout
	DefaultTransferTimeout = kit.DefaultTransferTimeout
	KindTransient          = kit.KindTransient
	KindPermanent          = kit.KindPermanent
	KindAuth               = kit.KindAuth
	KindNotFound           = kit.KindNotFound
	ProtocolVersion        = kit.ProtocolVersion
	MinProtocolVersion     = kit.MinProtocolVersion
	PluginScheduler        = kit.PluginScheduler
	PluginRunner           = kit.PluginRunner
	CookieKey              = kit.CookieKey
	CookieValue            = kit.CookieValue
	MaxMessageSize         = kit.MaxMessageSize
	RefuseNoProgram        = kit.RefuseNoProgram
	RefuseUnknownProgram   = kit.RefuseUnknownProgram
	RefuseArgNotAllowed    = kit.RefuseArgNotAllowed
	RefuseNoInput          = kit.RefuseNoInput
	RefuseBadCaption       = kit.RefuseBadCaption
	RefuseInputEmpty       = kit.RefuseInputEmpty
	RefuseInputEncoding    = kit.RefuseInputEncoding
	RefuseInputBinary      = kit.RefuseInputBinary
	RefuseXYZHeader        = kit.RefuseXYZHeader
	RefuseXYZCount         = kit.RefuseXYZCount
	RefuseXYZAtom          = kit.RefuseXYZAtom
	RefuseTooManyCores     = kit.RefuseTooManyCores
	RefuseTooMuchMemory    = kit.RefuseTooMuchMemory
	RefuseCaptionCores     = kit.RefuseCaptionCores
	TerminationNormal      = kit.TerminationNormal
	TerminationFailed      = kit.TerminationFailed
	TerminationUnfinished  = kit.TerminationUnfinished
	TerminationNone        = kit.TerminationNone
	StatePending           = kit.StatePending
	StateRunning           = kit.StateRunning
	StateSucceeded         = kit.StateSucceeded
	StateFailed            = kit.StateFailed
	StateCancelled         = kit.StateCancelled
	StateTimedOut          = kit.StateTimedOut
	StateUnknown           = kit.StateUnknown
	StateLost              = kit.StateLost
	EnvHostPID             = kit.EnvHostPID
	MaxTailLines           = kit.MaxTailLines
	MaxTailBytes           = kit.MaxTailBytes
	StreamOutput           = kit.StreamOutput
	StreamError            = kit.StreamError
	SkipTooLarge           = kit.SkipTooLarge
	SkipGrew               = kit.SkipGrew
	SkipLimitReached       = kit.SkipLimitReached
	SkipLink               = kit.SkipLink
	SkipSpecialFile        = kit.SkipSpecialFile
	SkipTemporary          = kit.SkipTemporary
	SkipNotWhitelisted     = kit.SkipNotWhitelisted
	SkipNotFound           = kit.SkipNotFound
	SkipUnreadable         = kit.SkipUnreadable
	SkipOther              = kit.SkipOther
)

var (
	Errorf            = kit.Errorf
	HarmlessAsBotUser = kit.HarmlessAsBotUser
	IsTransient       = kit.IsTransient
	KindOf            = kit.KindOf
	ProtocolVersions  = kit.ProtocolVersions
	RunnerKinds       = kit.RunnerKinds
	SkipCodes         = kit.SkipCodes
	TailCaps          = kit.TailCaps
	TailText          = kit.TailText
)
