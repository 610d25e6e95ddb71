// The checks every plugin's start must pass: go-plugin's handshake (no magic
// cookie, protocol versions offered and refused) and starting the plugin.

package conformance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"hpcbot/plugins"
)

// rawPlugin hands the suite the plugin's gRPC connection itself.
type rawPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
}

func (rawPlugin) GRPCServer(*goplugin.GRPCBroker, *grpc.Server) error {
	return errors.New("the conformance suite serves nothing")
}

func (rawPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return c, nil
}

// start starts the plugin offering versions; stop kills it.
func (s *suite) start(versions []int) (*grpc.ClientConn, int, func(), error) {
	sets := map[int]goplugin.PluginSet{}
	for _, v := range versions {
		sets[v] = goplugin.PluginSet{s.t.Kind: rawPlugin{}}
	}
	c := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig: goplugin.HandshakeConfig{
			ProtocolVersion:  uint(slices.Max(versions)),
			MagicCookieKey:   plugins.CookieKey,
			MagicCookieValue: plugins.CookieValue,
		},
		VersionedPlugins: sets,
		Cmd:              exec.Command(s.t.Path, s.t.Args...),
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		StartTimeout:     CallTimeout,
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "plugin", Output: s.log, Level: hclog.Info}),
		Stderr:           s.log,
	})
	rpc, err := c.Client()
	if err != nil {
		c.Kill()
		return nil, 0, nil, err
	}
	raw, err := rpc.Dispense(s.t.Kind)
	if err != nil {
		c.Kill()
		return nil, 0, nil, fmt.Errorf("dispense %s: %w", s.t.Kind, err)
	}
	return raw.(*grpc.ClientConn), c.NegotiatedVersion(), c.Kill, nil
}

// noCookie runs the executable as a person would: it must exit with an error.
func (s *suite) noCookie() error {
	ctx, cancel := context.WithTimeout(context.Background(), CallTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.t.Path, s.t.Args...)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, plugins.CookieKey+"=") && !strings.HasPrefix(e, "PLUGIN_") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return fmt.Errorf("run without %s, it was still running after %s (it must exit at once, saying it is started by hpcbot)", plugins.CookieKey, CallTimeout)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		if err != nil {
			return err
		}
		return fmt.Errorf("run without %s, it exited 0 (it must exit non-zero, saying it is started by hpcbot); output: %q", plugins.CookieKey, out)
	}
	return nil
}

// refusesUnknownVersion offers a version no plugin speaks: starting must fail.
func (s *suite) refusesUnknownVersion() error {
	const bogus = 9999
	_, _, stop, err := s.start([]int{bogus})
	if err == nil {
		stop()
		return fmt.Errorf("offered only protocol version %d, the plugin accepted it", bogus)
	}
	if !strings.Contains(err.Error(), "incompatible API version") {
		return fmt.Errorf("offered only protocol version %d: want a handshake announcing another version, got: %w", bogus, err)
	}
	return nil
}

// offerOnly offers one version: the plugin speaks it or announces another
// (which the client refuses); anything else is a failure.
func (s *suite) offerOnly(v int) error {
	_, got, stop, err := s.start([]int{v})
	if err != nil {
		if strings.Contains(err.Error(), "incompatible API version") {
			return nil
		}
		return err
	}
	defer stop()
	if got != v {
		return fmt.Errorf("offered only version %d, negotiated %d", v, got)
	}
	return nil
}
