package plugins

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"hpcbot/plugins/kit"
	pb "hpcbot/plugins/proto"
)

// The magic cookie, the versions and the handshake are the plugin's side's
// (package kit); the host uses the same.
var (
	cookieKey        = CookieKey
	cookieValue      = CookieValue
	protocolVersions = ProtocolVersions
	handshake        = kit.Handshake
)

const maxMessage = kit.MaxMessageSize

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

// clientSets is what the host dispenses for a plugin of kind under each of
// versions (the plugin's side is in package kit).
func clientSets(kind string, versions []int) map[int]goplugin.PluginSet {
	sets := make(map[int]goplugin.PluginSet, len(versions))
	for _, v := range versions {
		switch kind {
		case PluginScheduler:
			sets[v] = goplugin.PluginSet{PluginScheduler: &schedulerPlugin{}}
		case PluginRunner:
			sets[v] = goplugin.PluginSet{PluginRunner: &runnerPlugin{version: v}}
		}
	}
	return sets
}

var errHostOnly = errors.New("host side only: a plugin serves through package kit")

// schedulerPlugin glues the Scheduler contract to go-plugin on the host's side.
type schedulerPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
}

func (p *schedulerPlugin) GRPCServer(*goplugin.GRPCBroker, *grpc.Server) error { return errHostOnly }

// GRPCClient's ctx is cancelled by go-plugin when the plugin process exits.
func (p *schedulerPlugin) GRPCClient(ctx context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &schedulerClient{c: pb.NewSchedulerClient(c), done: ctx}, nil
}

// runnerPlugin glues the Runner contract to go-plugin on the host's side.
type runnerPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	version int // the negotiated protocol version
}

func (p *runnerPlugin) GRPCServer(*goplugin.GRPCBroker, *grpc.Server) error { return errHostOnly }

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
