package sshc

import (
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"hpcbot/plugins"
)

// FuzzHostKeyConfig: whatever an admin writes as host_key, New's checker either
// refuses it with a permanent error or accepts exactly the key written there
// (never anything else, never an empty check).
func FuzzHostKeyConfig(f *testing.F) {
	k, _ := randomKey(f)
	f.Add(authorizedLine(k))
	f.Add(authorizedLine(k) + " comment")
	f.Add(authorizedLine(k) + "\n" + authorizedLine(k))
	f.Add("ssh-ed25519 AAAA")
	f.Add("ssh-rsa")
	f.Add("")
	f.Add("   ")
	f.Add("@cert-authority * " + authorizedLine(k))
	other, _ := randomKey(f)
	f.Fuzz(func(t *testing.T, hostKey string) {
		h, err := newHostKeyChecker(plugins.Connection{Host: "h", User: "u", HostKey: hostKey, KnownHosts: "/nonexistent"})
		if err != nil {
			if plugins.KindOf(err) != plugins.KindPermanent {
				t.Fatalf("kind %v for a config error: %v", plugins.KindOf(err), err)
			}
			return
		}
		if strings.TrimSpace(hostKey) == "" {
			t.Fatal("an empty host_key was accepted while known_hosts is missing")
		}
		cb, _, err := h.callback("h:22")
		if err != nil {
			t.Fatal(err)
		}
		pinned, _, _, _, err := ssh.ParseAuthorizedKey([]byte(hostKey))
		if err != nil {
			t.Fatalf("accepted %q, which does not parse: %v", hostKey, err)
		}
		if err := cb("h:22", nil, pinned); err != nil {
			t.Fatalf("the pinned key itself was refused: %v", err)
		}
		if err := cb("h:22", nil, other); err == nil && authorizedLine(other) != authorizedLine(pinned) {
			t.Fatal("another key was accepted")
		}
	})
}
