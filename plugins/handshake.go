package plugins

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

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

// protocolVersions lists the versions this build speaks, oldest first.
func protocolVersions() []int {
	var vs []int
	for v := MinProtocolVersion; v <= ProtocolVersion; v++ {
		vs = append(vs, v)
	}
	return vs
}

// versionsText names the versions this build speaks: "versions 1 and 2".
func versionsText() string {
	vs := protocolVersions()
	if len(vs) == 1 {
		return fmt.Sprintf("version %d", vs[0])
	}
	words := make([]string, len(vs))
	for i, v := range vs {
		words[i] = strconv.Itoa(v)
	}
	return "versions " + strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

// Plugin kinds: the <kind> in `hpcbot plugin serve <kind> <name>` and in drop-in
// file names (hpcbot-<kind>-<name>).
const (
	PluginScheduler = "scheduler"
	PluginRunner    = "runner"
)

// The magic cookie tells a plugin executable that hpcbot started it. It is a UX
// check (a plugin run by hand explains itself), not a security measure.
const (
	cookieKey   = "HPCBOT_PLUGIN_COOKIE"
	cookieValue = "b2d1f0c6-hpcbot-plugin"
)

// CookieKey and CookieValue are the magic cookie, for tools that start a plugin
// executable themselves (hpcbot plugin test).
const (
	CookieKey   = cookieKey
	CookieValue = cookieValue
)

// ProtocolVersions lists the plugin protocol versions this build speaks, oldest first.
func ProtocolVersions() []int { return protocolVersions() }

// maxMessage caps one gRPC message either way: a Poll of tens of thousands of jobs
// or a Fetch listing many files must fit.
const maxMessage = 64 << 20

func handshake(version uint) goplugin.HandshakeConfig {
	return goplugin.HandshakeConfig{
		ProtocolVersion:  version,
		MagicCookieKey:   cookieKey,
		MagicCookieValue: cookieValue,
	}
}

// pluginSet is what a process of the given kind serves (impl set) or what the
// host dispenses (impl nil) under protocol version.
func pluginSet(kind string, sched Scheduler, run Runner, name string, version int) goplugin.PluginSet {
	switch kind {
	case PluginScheduler:
		return goplugin.PluginSet{PluginScheduler: &schedulerPlugin{impl: sched, name: name}}
	case PluginRunner:
		return goplugin.PluginSet{PluginRunner: &runnerPlugin{impl: run, name: name, version: version}}
	}
	return nil
}

// versionedSets is pluginSet for each of versions.
func versionedSets(kind string, sched Scheduler, run Runner, name string, versions []int) map[int]goplugin.PluginSet {
	sets := make(map[int]goplugin.PluginSet, len(versions))
	for _, v := range versions {
		sets[v] = pluginSet(kind, sched, run, name, v)
	}
	return sets
}

// schedulerPlugin glues the Scheduler contract to go-plugin.
type schedulerPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	impl Scheduler // serve side only
	name string    // serve side only: reported by Version unless impl is a Versioner
}

func (p *schedulerPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterSchedulerServer(s, &schedulerServer{impl: p.impl, name: p.name})
	return nil
}

// GRPCClient's ctx is cancelled by go-plugin when the plugin process exits.
func (p *schedulerPlugin) GRPCClient(ctx context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &schedulerClient{c: pb.NewSchedulerClient(c), done: ctx}, nil
}

// runnerPlugin glues the Runner contract to go-plugin.
type runnerPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	impl    Runner
	name    string
	version int // the negotiated protocol version (host side)
}

func (p *runnerPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterRunnerServer(s, &runnerServer{impl: p.impl, name: p.name})
	return nil
}

func (p *runnerPlugin) GRPCClient(ctx context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &runnerClient{c: pb.NewRunnerClient(c), done: ctx, proto: p.version}, nil
}

var pluginVersionRE = regexp.MustCompile(`Plugin version: (\d+)`)

// startError turns go-plugin's start failures into errors an operator can act on.
// A protocol mismatch names both versions; it and a non-plugin executable are
// permanent (restarting cannot help), anything else is transient.
func startError(kind, name, path string, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "incompatible API version"):
		theirs := "another version"
		if m := pluginVersionRE.FindStringSubmatch(msg); m != nil {
			theirs = "version " + m[1]
		}
		return &Error{Kind: KindPermanent, Msg: fmt.Sprintf(
			"%s plugin %q (%s) speaks plugin protocol %s, this hpcbot speaks %s: "+
				"install a build of the plugin for protocol version %d", kind, name, path, theirs, versionsText(), ProtocolVersion), Err: err}
	case strings.Contains(msg, "incompatible core API version"):
		return &Error{Kind: KindPermanent, Msg: fmt.Sprintf(
			"%s plugin %q (%s) was built with an incompatible go-plugin library", kind, name, path), Err: err}
	case strings.Contains(msg, "Unrecognized remote plugin message"),
		strings.Contains(msg, "unsupported plugin protocol"):
		return &Error{Kind: KindPermanent, Msg: fmt.Sprintf(
			"%s plugin %q (%s) is not an hpcbot plugin (it did not answer the go-plugin gRPC handshake)", kind, name, path), Err: err}
	}
	return &Error{Kind: KindTransient, Msg: fmt.Sprintf("start %s plugin %q (%s)", kind, name, path), Err: err}
}
