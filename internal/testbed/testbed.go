package testbed

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Hint is what a test skipped for want of the bed tells the developer.
const Hint = `test bed not running: eval "$(scripts/testbed.sh env)"`

// The variables `scripts/testbed.sh env` exports.
const (
	EnvHost            = "HPCBOT_TEST_SSH_HOST"
	EnvPort            = "HPCBOT_TEST_SSH_PORT"
	EnvUser            = "HPCBOT_TEST_SSH_USER"
	EnvKey             = "HPCBOT_TEST_SSH_KEY"
	EnvKnownHosts      = "HPCBOT_TEST_SSH_KNOWN_HOSTS"
	EnvHostKeyPub      = "HPCBOT_TEST_SSH_HOSTKEY_PUB"
	EnvSSHDConfig      = "HPCBOT_TEST_SSHD_CONFIG"
	EnvSlurm           = "HPCBOT_TEST_SLURM"
	EnvSlurmAccounting = "HPCBOT_TEST_SLURM_ACCOUNTING"
	EnvScript          = "HPCBOT_TESTBED"
)

// SSHEnv is where the bed's sshd listens and how to log in to it.
type SSHEnv struct {
	Host       string // always 127.0.0.1
	Port       int
	User       string // the test user, e.g. hpctest
	KeyPath    string // its private key, no passphrase
	KnownHosts string // a known_hosts file with the sshd's host key for Host:Port
	HostKeyPub string // the sshd's host public key (authorized_keys format)
	SSHDConfig string // the sshd's configuration file
}

// Addr is Host:Port, as net.Dial and ssh.Dial take it.
func (e SSHEnv) Addr() string { return net.JoinHostPort(e.Host, strconv.Itoa(e.Port)) }

// Require skips the test when ok is false, saying that what is missing and how to start
// the bed; when CI=true it fails the test instead, since CI must run every integration
// test. Require returns only when ok is true (or when t does not stop the goroutine).
func Require(t testing.TB, what string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	if inCI(os.Getenv) {
		t.Fatalf("%s: %s (CI=true, so a missing test bed is a failure)", what, Hint)
		return
	}
	t.Skipf("%s: %s", what, Hint)
}

// inCI reports whether CI is set to a true value (CI=true, as CI services set it).
func inCI(getenv func(string) string) bool {
	v, err := strconv.ParseBool(getenv("CI"))
	return err == nil && v
}

// lookupSSH reads the sshd part of the bed's environment. missing names the variables
// that are unset (the bed was not exported: skip); err reports values that are set but
// wrong (a broken export: always a failure).
func lookupSSH(getenv func(string) string) (env SSHEnv, missing []string, err error) {
	get := func(name string) string {
		v := getenv(name)
		if v == "" {
			missing = append(missing, name)
		}
		return v
	}
	env = SSHEnv{
		Host:       get(EnvHost),
		User:       get(EnvUser),
		KeyPath:    get(EnvKey),
		KnownHosts: get(EnvKnownHosts),
		HostKeyPub: get(EnvHostKeyPub),
		SSHDConfig: get(EnvSSHDConfig),
	}
	port := get(EnvPort)
	if len(missing) > 0 {
		return SSHEnv{}, missing, nil
	}
	env.Port, err = strconv.Atoi(port)
	if err != nil || env.Port < 1 || env.Port > 65535 {
		return SSHEnv{}, nil, fmt.Errorf("%s=%q is not a port", EnvPort, port)
	}
	for _, p := range []struct{ name, val string }{
		{EnvKey, env.KeyPath}, {EnvKnownHosts, env.KnownHosts},
		{EnvHostKeyPub, env.HostKeyPub}, {EnvSSHDConfig, env.SSHDConfig},
	} {
		if !filepath.IsAbs(p.val) {
			return SSHEnv{}, nil, fmt.Errorf("%s=%q is not an absolute path", p.name, p.val)
		}
	}
	return env, nil, nil
}

// SSH returns the bed's sshd, or skips the test (fails it under CI=true).
func SSH(t testing.TB) SSHEnv {
	t.Helper()
	env, missing, err := lookupSSH(os.Getenv)
	if err != nil {
		t.Fatalf("test bed environment: %v", err)
		return SSHEnv{}
	}
	Require(t, "sshd ("+strings.Join(missing, ", ")+" unset)", len(missing) == 0)
	if len(missing) > 0 {
		return SSHEnv{}
	}
	for _, f := range []string{env.KeyPath, env.KnownHosts} {
		// The key is root's unless the bed was started through sudo, which hands it over.
		fh, err := os.Open(f)
		Require(t, fmt.Sprintf("sshd (%v)", err), err == nil)
		if err != nil {
			return SSHEnv{}
		}
		fh.Close()
	}
	return env
}

// Slurm returns the sshd through which the test user reaches a working Slurm (sbatch,
// squeue, scontrol, scancel), or skips the test (fails it under CI=true). The bed runs
// MinJobAge=2: a finished job can leave scontrol's view within seconds.
func Slurm(t testing.TB) SSHEnv {
	t.Helper()
	env := SSH(t)
	Require(t, "Slurm ("+EnvSlurm+"=1 unset)", os.Getenv(EnvSlurm) == "1")
	return env
}

// SlurmAccounting is Slurm with slurmdbd behind it, so sacct works.
func SlurmAccounting(t testing.TB) SSHEnv {
	t.Helper()
	env := Slurm(t)
	Require(t, "Slurm accounting ("+EnvSlurmAccounting+"=1 unset; start the bed with --accounting)",
		os.Getenv(EnvSlurmAccounting) == "1")
	return env
}

// ClientConfig logs in as the test user with its key and checks the host key against the
// bed's known_hosts file, as hpcbot does against a real cluster.
func (e SSHEnv) ClientConfig(t testing.TB) *ssh.ClientConfig {
	t.Helper()
	pem, err := os.ReadFile(e.KeyPath)
	if err != nil {
		t.Fatalf("test bed key: %v", err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		t.Fatalf("test bed key %s: %v", e.KeyPath, err)
	}
	hostKeys, err := knownhosts.New(e.KnownHosts)
	if err != nil {
		t.Fatalf("test bed known_hosts: %v", err)
	}
	return &ssh.ClientConfig{
		User:              e.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   hostKeys,
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519}, // the only host key the bed has
		Timeout:           30 * time.Second,
	}
}

// Dial connects to the bed's sshd; the connection is closed when the test ends.
func (e SSHEnv) Dial(t testing.TB) *ssh.Client {
	t.Helper()
	c, err := ssh.Dial("tcp", e.Addr(), e.ClientConfig(t))
	if err != nil {
		t.Fatalf("ssh to the test bed at %s: %v", e.Addr(), err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Output runs cmd in a new session on c and returns its standard output. A command that
// fails returns an error that holds its exit status and standard error.
func Output(c *ssh.Client, cmd string) (string, error) {
	s, err := c.NewSession()
	if err != nil {
		return "", fmt.Errorf("new session: %w", err)
	}
	defer s.Close()
	var stdout, stderr bytes.Buffer
	s.Stdout, s.Stderr = &stdout, &stderr
	if err := s.Run(cmd); err != nil {
		return stdout.String(), fmt.Errorf("%s: %w: %s", cmd, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// script returns the path of scripts/testbed.sh from the bed's environment.
func script(t testing.TB) string {
	t.Helper()
	s := os.Getenv(EnvScript)
	Require(t, "the test bed script ("+EnvScript+" unset)", s != "")
	return s
}

// runScript runs the bed's script with args; its output is in the error.
func runScript(path string, args ...string) error {
	out, err := exec.Command(path, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", path, strings.Join(args, " "), err, out)
	}
	return nil
}

// SSHDStop stops the bed's shared sshd and closes every connection to it (Slurm jobs and
// detached processes keep running); it is started again when the test ends, if the test
// did not do so itself. It takes the sshd from every test running at the same time, in
// every package: a test that can use its own sshd should use [OwnSSHD].
func SSHDStop(t testing.TB) {
	t.Helper()
	SSH(t)
	path := script(t)
	if err := runScript(path, "sshd-stop"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := runScript(path, "sshd-start"); err != nil {
			t.Error(err)
		}
	})
}

// SSHDStart starts the bed's shared sshd again after SSHDStop, with the same host key
// and port.
func SSHDStart(t testing.TB) {
	t.Helper()
	if err := runScript(script(t), "sshd-start"); err != nil {
		t.Fatal(err)
	}
}

// SSHD is an sshd of one test's own: the bed's user, key and host key on another port.
// Its embedded SSHEnv points at it.
type SSHD struct {
	SSHEnv
	script string
}

// OwnSSHD starts an sshd for this test alone, which it may Stop and Start at will; it is
// stopped and its files removed when the test ends. It needs root, as the bed does.
func OwnSSHD(t testing.TB) *SSHD {
	t.Helper()
	env := SSH(t)
	path := script(t)
	Require(t, "an sshd of the test's own (needs root)", os.Geteuid() == 0)
	var err error
	for range 3 { // another process may take the free port first
		env.Port, err = freePort()
		if err != nil {
			t.Fatal(err)
		}
		if err = runScript(path, "sshd-start", strconv.Itoa(env.Port)); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(env.Port)
	t.Cleanup(func() {
		if err := runScript(path, "sshd-remove", port); err != nil {
			t.Error(err)
		}
	})
	// The script's layout: scripts/testbed.sh use_sshd.
	dir := filepath.Dir(env.SSHDConfig)
	env.SSHDConfig = filepath.Join(dir, "sshd-"+port+".config")
	env.KnownHosts = filepath.Join(dir, "known_hosts-"+port)
	for _, f := range []string{env.SSHDConfig, env.KnownHosts} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("own sshd: %v", err)
		}
	}
	return &SSHD{SSHEnv: env, script: path}
}

// Stop takes this sshd down as a login node that goes away: the listener stops and every
// open connection is closed. Processes started detached keep running.
func (s *SSHD) Stop(t testing.TB) {
	t.Helper()
	if err := runScript(s.script, "sshd-stop", strconv.Itoa(s.Port)); err != nil {
		t.Fatal(err)
	}
}

// Start brings this sshd back on the same port with the same host key.
func (s *SSHD) Start(t testing.TB) {
	t.Helper()
	if err := runScript(s.script, "sshd-start", strconv.Itoa(s.Port)); err != nil {
		t.Fatal(err)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("free port: not a TCP address")
	}
	return addr.Port, nil
}
