package sshc

import (
	"errors"
	"os"
	"sync/atomic"

	"golang.org/x/crypto/ssh"

	"hpcbot/plugins"
)

// credential is the one secret a Client offers: a private key, else a password.
// Only one is offered per handshake so that a wrong credential costs one failed
// attempt in the server's log, not several.
type credential struct {
	signer   ssh.Signer
	password string
}

func newCredential(cfg plugins.Connection) (*credential, error) {
	if cfg.KeyPath != "" {
		pem, err := readFile(cfg.KeyPath)
		if err != nil {
			return nil, plugins.Errorf(plugins.KindPermanent, "read private key for %s: %w", cfg, err)
		}
		var signer ssh.Signer
		if cfg.KeyPassEnv != "" {
			pass, ok := os.LookupEnv(cfg.KeyPassEnv)
			if !ok || pass == "" {
				return nil, plugins.Errorf(plugins.KindAuth,
					"private key %s for %s: key_passphrase_env names $%s, which is not set", cfg.KeyPath, cfg, cfg.KeyPassEnv)
			}
			signer, err = ssh.ParsePrivateKeyWithPassphrase(pem, []byte(pass))
			if err != nil {
				// The library's messages never include the passphrase.
				return nil, plugins.Errorf(plugins.KindAuth,
					"private key %s for %s (passphrase from $%s): %w", cfg.KeyPath, cfg, cfg.KeyPassEnv, err)
			}
		} else {
			signer, err = ssh.ParsePrivateKey(pem)
			var missing *ssh.PassphraseMissingError
			if errors.As(err, &missing) {
				return nil, plugins.Errorf(plugins.KindAuth,
					"private key %s for %s is encrypted: set key_passphrase_env to the name of an environment variable holding its passphrase",
					cfg.KeyPath, cfg)
			}
			if err != nil {
				return nil, plugins.Errorf(plugins.KindAuth, "private key %s for %s: %w", cfg.KeyPath, cfg, err)
			}
		}
		return &credential{signer: signer}, nil
	}
	if cfg.Password != "" {
		return &credential{password: string(cfg.Password)}, nil
	}
	return nil, plugins.Errorf(plugins.KindPermanent, "connection %s has neither key_path nor password", cfg)
}

// errPasswordRefused stops a handshake from trying the password a second time
// through keyboard-interactive after the server refused it once.
var errPasswordRefused = errors.New("password refused, not retried through keyboard-interactive")

// methods returns the auth methods for one handshake.
func (c *credential) methods() []ssh.AuthMethod {
	if c.signer != nil {
		return []ssh.AuthMethod{ssh.PublicKeys(c.signer)}
	}
	// Servers take a password either as "password" or as a keyboard-interactive
	// prompt (PAM). Offer both, but never let the same password fail twice in
	// one connection.
	var tried atomic.Bool
	pw := c.password
	return []ssh.AuthMethod{
		ssh.PasswordCallback(func() (string, error) {
			tried.Store(true)
			return pw, nil
		}),
		ssh.KeyboardInteractive(func(_, _ string, questions []string, echos []bool) ([]string, error) {
			if len(questions) == 0 {
				return nil, nil // an informational round
			}
			if tried.Load() || len(questions) != 1 || echos[0] {
				return nil, errPasswordRefused
			}
			tried.Store(true)
			return []string{pw}, nil
		}),
	}
}
