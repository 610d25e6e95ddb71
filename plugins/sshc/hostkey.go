package sshc

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"hpcbot/plugins"
)

// hostKeyError is a refused host key. It is permanent: the client never dials
// the host again (a changed key can mean a man in the middle).
type hostKeyError struct {
	msg string
}

func (e *hostKeyError) Error() string { return e.msg }

// hostKeyChecker verifies the server's key against a pinned key or a
// known_hosts file. The file is read again at every dial, so an edit needs no
// restart of the plugin unless the client already gave up.
type hostKeyChecker struct {
	pinned     ssh.PublicKey // wins when set
	knownHosts string
}

func newHostKeyChecker(cfg plugins.Connection) (*hostKeyChecker, error) {
	if s := strings.TrimSpace(cfg.HostKey); s != "" {
		key, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(s))
		if err != nil {
			return nil, plugins.Errorf(plugins.KindPermanent,
				"host_key for %s is not a public key in authorized_keys format (\"ssh-ed25519 AAAA...\"): %w", cfg, err)
		}
		if len(bytes.TrimSpace(rest)) > 0 {
			return nil, plugins.Errorf(plugins.KindPermanent, "host_key for %s holds more than one key; pin exactly one", cfg)
		}
		return &hostKeyChecker{pinned: key}, nil
	}
	if cfg.KnownHosts == "" {
		return nil, plugins.Errorf(plugins.KindPermanent,
			"connection %s has neither known_hosts nor host_key: set one so the server's identity can be checked "+
				"(for example host_key = the output of `ssh-keyscan -t ed25519 %s`, verified with the cluster's admins)",
			cfg, cfg.Host)
	}
	if _, err := knownhosts.New(cfg.KnownHosts); err != nil {
		return nil, plugins.Errorf(plugins.KindPermanent, "known_hosts for %s: %w", cfg, err)
	}
	return &hostKeyChecker{knownHosts: cfg.KnownHosts}, nil
}

// callback returns the check for one dial to addr ("host:port") and the host
// key algorithms to ask for, so that the server presents the kind of key we
// know rather than another one of its keys.
func (h *hostKeyChecker) callback(addr string) (ssh.HostKeyCallback, []string, error) {
	if h.pinned != nil {
		want := h.pinned
		cb := func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if bytes.Equal(key.Marshal(), want.Marshal()) {
				return nil
			}
			return &hostKeyError{msg: fmt.Sprintf(
				"host key of %s does not match the pinned host_key (%s %s): the server presented %s %s; "+
					"if the cluster's admins confirm the new key, set host_key = %q",
				addr, want.Type(), ssh.FingerprintSHA256(want), key.Type(), ssh.FingerprintSHA256(key), authorizedLine(key))}
		}
		return cb, algorithmsFor([]ssh.PublicKey{want}), nil
	}
	kh, err := knownhosts.New(h.knownHosts)
	if err != nil {
		return nil, nil, plugins.Errorf(plugins.KindPermanent, "known_hosts: %w", err)
	}
	// Ask the file which keys it holds for addr: a check against a key
	// nobody has answers with the list of wanted keys.
	var known []ssh.PublicKey
	var ke *knownhosts.KeyError
	if err := kh(addr, &net.TCPAddr{IP: net.IPv4zero}, noKey{}); errors.As(err, &ke) {
		for _, k := range ke.Want {
			known = append(known, k.Key)
		}
	}
	file := h.knownHosts
	cb := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := kh(hostname, remote, key)
		if err == nil {
			return nil
		}
		fp := key.Type() + " " + ssh.FingerprintSHA256(key)
		var ke *knownhosts.KeyError
		var re *knownhosts.RevokedError
		switch {
		case errors.As(err, &re):
			return &hostKeyError{msg: fmt.Sprintf("host key of %s (%s) is marked @revoked in %s", addr, fp, file)}
		case errors.As(err, &ke) && len(ke.Want) == 0:
			return &hostKeyError{msg: fmt.Sprintf(
				"host key of %s is not in %s: the server presented %s; if the cluster's admins confirm it, "+
					"add the line %q to that file (or set host_key = %q)",
				addr, file, fp, knownhosts.Line([]string{knownhosts.Normalize(addr)}, key), authorizedLine(key))}
		case errors.As(err, &ke):
			var want []string
			for _, k := range ke.Want {
				want = append(want, fmt.Sprintf("%s %s (%s:%d)", k.Key.Type(), ssh.FingerprintSHA256(k.Key), k.Filename, k.Line))
			}
			return &hostKeyError{msg: fmt.Sprintf(
				"host key of %s CHANGED: the server presented %s but %s expects %s; this can be a man-in-the-middle attack; "+
					"if the cluster's admins confirm the new key, replace the old line in that file",
				addr, fp, file, strings.Join(want, ", "))}
		}
		return &hostKeyError{msg: fmt.Sprintf("host key of %s (%s): %v", addr, fp, err)}
	}
	return cb, algorithmsFor(known), nil
}

// authorizedLine prints key as "ssh-ed25519 AAAA...".
func authorizedLine(key ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
}

// algorithmsFor lists the host key algorithms that make a server present one of
// keys; nil (the library's defaults) when keys is empty.
func algorithmsFor(keys []ssh.PublicKey) []string {
	var algos []string
	seen := map[string]bool{}
	add := func(a ...string) {
		for _, s := range a {
			if !seen[s] {
				seen[s] = true
				algos = append(algos, s)
			}
		}
	}
	for _, k := range keys {
		switch t := k.Type(); t {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			add(t)
		}
	}
	return algos
}

// noKey is a public key that matches nothing, used to read known_hosts entries.
type noKey struct{}

func (noKey) Type() string                        { return "hpcbot-none" }
func (noKey) Marshal() []byte                     { return []byte("hpcbot-none") }
func (noKey) Verify([]byte, *ssh.Signature) error { return errors.New("no key") }

var _ ssh.PublicKey = noKey{}

// readFile is os.ReadFile, named for tests.
var readFile = os.ReadFile
