package kit

import (
	"context"
	"errors"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pb "hpcbot/plugins/proto"
)

// ProtocolVersion is the version of hpcbot's plugin protocol (proto/hpcbot.proto)
// that this build speaks; it also speaks every version down to
// MinProtocolVersion. The host offers them all and the plugin picks the highest
// it speaks (go-plugin's VersionedPlugins: the host lists its versions in
// PLUGIN_PROTOCOL_VERSIONS, the plugin picks the highest match, see
// https://pkg.go.dev/github.com/hashicorp/go-plugin/examples/negotiated); a
// plugin announcing any other version is refused at start with both versions
// named. Version 2 added the runner calls Check and Digest.
const (
	ProtocolVersion    = 2
	MinProtocolVersion = 1
)

// ProtocolVersions lists the versions this build speaks, oldest first.
func ProtocolVersions() []int {
	var vs []int
	for v := MinProtocolVersion; v <= ProtocolVersion; v++ {
		vs = append(vs, v)
	}
	return vs
}

// Plugin kinds: the <kind> in `hpcbot plugin serve <kind> <name>` and in drop-in
// file names (hpcbot-<kind>-<name>).
const (
	PluginScheduler = "scheduler"
	PluginRunner    = "runner"
)

// DropInPrefix is the start of a drop-in's file name: "hpcbot-runner-".
func DropInPrefix(kind string) string { return "hpcbot-" + kind + "-" }

// The magic cookie tells a plugin executable that hpcbot started it. It is a UX
// check (a plugin run by hand explains itself), not a security measure.
const (
	CookieKey   = "HPCBOT_PLUGIN_COOKIE"
	CookieValue = "b2d1f0c6-hpcbot-plugin"
)

// MaxMessageSize caps one gRPC message either way: a Poll of tens of thousands
// of jobs or a Fetch listing many files must fit.
const MaxMessageSize = 64 << 20

// Handshake is go-plugin's handshake for protocol version.
func Handshake(version uint) goplugin.HandshakeConfig {
	return goplugin.HandshakeConfig{
		ProtocolVersion:  version,
		MagicCookieKey:   CookieKey,
		MagicCookieValue: CookieValue,
	}
}

// serverSets is what a process of the given kind serves under each of versions.
// buildRunner, when not nil, lets a runner process serve several clusters
// (ClusterMetadata): it makes one instance per cluster.
func serverSets(kind string, sched Scheduler, run Runner, buildRunner func() Runner, name string, versions []int) map[int]goplugin.PluginSet {
	sets := make(map[int]goplugin.PluginSet, len(versions))
	for _, v := range versions {
		switch kind {
		case PluginScheduler:
			sets[v] = goplugin.PluginSet{PluginScheduler: &schedulerPlugin{impl: sched, name: name}}
		case PluginRunner:
			sets[v] = goplugin.PluginSet{PluginRunner: &runnerPlugin{impl: run, build: buildRunner, name: name}}
		}
	}
	return sets
}

var errServeOnly = errors.New("plugin side only: hpcbot's host dispenses its own clients")

// schedulerPlugin glues the Scheduler contract to go-plugin on the plugin's side.
type schedulerPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	impl Scheduler
	name string // reported by Version unless impl is a Versioner
}

func (p *schedulerPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterSchedulerServer(s, &schedulerServer{impl: p.impl, name: p.name})
	return nil
}

func (p *schedulerPlugin) GRPCClient(context.Context, *goplugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errServeOnly
}

// runnerPlugin glues the Runner contract to go-plugin on the plugin's side.
type runnerPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	impl  Runner
	build func() Runner // nil: one cluster per process
	name  string
}

func (p *runnerPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterRunnerServer(s, &runnerServer{impl: p.impl, build: p.build, name: p.name})
	return nil
}

func (p *runnerPlugin) GRPCClient(context.Context, *goplugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errServeOnly
}

// RunnerServer is impl as the generated gRPC service, for a plugin that runs
// a gRPC server of its own; name is what Version reports unless impl is a
// Versioner. ServeRunner is the usual way.
func RunnerServer(impl Runner, name string) pb.RunnerServer {
	return &runnerServer{impl: impl, name: name}
}
