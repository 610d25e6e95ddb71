package testbed

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func fullEnv() map[string]string {
	return map[string]string{
		EnvHost:       "127.0.0.1",
		EnvPort:       "2222",
		EnvUser:       "hpctest",
		EnvKey:        "/tmp/bed/ssh/id_ed25519",
		EnvKnownHosts: "/tmp/bed/ssh/known_hosts",
		EnvHostKeyPub: "/tmp/bed/ssh/ssh_host_ed25519_key.pub",
		EnvSSHDConfig: "/tmp/bed/ssh/sshd_config",
	}
}

func TestLookupSSH(t *testing.T) {
	with := func(k, v string) map[string]string {
		m := fullEnv()
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name    string
		env     map[string]string
		want    SSHEnv
		missing []string
		errPart string
	}{
		{name: "complete", env: fullEnv(), want: SSHEnv{
			Host: "127.0.0.1", Port: 2222, User: "hpctest",
			KeyPath:    "/tmp/bed/ssh/id_ed25519",
			KnownHosts: "/tmp/bed/ssh/known_hosts",
			HostKeyPub: "/tmp/bed/ssh/ssh_host_ed25519_key.pub",
			SSHDConfig: "/tmp/bed/ssh/sshd_config",
		}},
		{name: "nothing exported", env: map[string]string{}, missing: []string{
			EnvHost, EnvUser, EnvKey, EnvKnownHosts, EnvHostKeyPub, EnvSSHDConfig, EnvPort}},
		{name: "key unset", env: with(EnvKey, ""), missing: []string{EnvKey}},
		{name: "port not a number", env: with(EnvPort, "ssh"), errPart: EnvPort},
		{name: "port zero", env: with(EnvPort, "0"), errPart: EnvPort},
		{name: "port too big", env: with(EnvPort, "65536"), errPart: EnvPort},
		{name: "relative key", env: with(EnvKey, "id_ed25519"), errPart: EnvKey},
		{name: "relative known_hosts", env: with(EnvKnownHosts, "./kh"), errPart: EnvKnownHosts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, missing, err := lookupSSH(mapEnv(tt.env))
			if tt.errPart != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errPart) {
					t.Fatalf("err = %v, want one naming %s", err, tt.errPart)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !slices.Equal(missing, tt.missing) {
				t.Errorf("missing = %v, want %v", missing, tt.missing)
			}
			if got != tt.want {
				t.Errorf("env = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestLookupSSHAddr(t *testing.T) {
	env, _, err := lookupSSH(mapEnv(fullEnv()))
	if err != nil {
		t.Fatal(err)
	}
	if got := env.Addr(); got != "127.0.0.1:2222" {
		t.Errorf("Addr() = %q", got)
	}
}

func TestInCI(t *testing.T) {
	for v, want := range map[string]bool{
		"": false, "true": true, "1": true, "TRUE": true, "false": false, "0": false, "yes-ish": false,
	} {
		if got := inCI(mapEnv(map[string]string{"CI": v})); got != want {
			t.Errorf("CI=%q: inCI = %v, want %v", v, got, want)
		}
	}
}

// recorder is a testing.TB that records Skip and Fatal instead of stopping the test.
type recorder struct {
	testing.TB
	skipped, fatal string
}

func (r *recorder) Helper()                           {}
func (r *recorder) Skipf(format string, args ...any)  { r.skipped = fmt.Sprintf(format, args...) }
func (r *recorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }

func TestRequire(t *testing.T) {
	tests := []struct {
		ci          string
		ok          bool
		skip, fatal bool
	}{
		{ci: "", ok: true},
		{ci: "true", ok: true},
		{ci: "", ok: false, skip: true},
		{ci: "false", ok: false, skip: true},
		{ci: "true", ok: false, fatal: true},
		{ci: "1", ok: false, fatal: true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("CI=%q ok=%v", tt.ci, tt.ok), func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			r := &recorder{TB: t}
			Require(r, "Slurm", tt.ok)
			if (r.skipped != "") != tt.skip || (r.fatal != "") != tt.fatal {
				t.Fatalf("skipped=%q fatal=%q, want skip=%v fatal=%v", r.skipped, r.fatal, tt.skip, tt.fatal)
			}
			for _, msg := range []string{r.skipped, r.fatal} {
				if msg != "" && (!strings.Contains(msg, "Slurm") || !strings.Contains(msg, Hint)) {
					t.Errorf("message %q does not name the service and the hint", msg)
				}
			}
		})
	}
}

func TestSSHMissingFiles(t *testing.T) {
	dir := t.TempDir()
	m := fullEnv()
	for k, v := range m {
		if strings.HasPrefix(v, "/tmp/bed/") {
			m[k] = dir + "/" + strings.TrimPrefix(v, "/tmp/bed/")
		}
	}
	for k, v := range m {
		t.Setenv(k, v)
	}
	t.Setenv("CI", "")
	r := &recorder{TB: t}
	SSH(r)
	if !strings.Contains(r.skipped, "id_ed25519") {
		t.Errorf("SSH with the key file missing: skipped=%q fatal=%q, want a skip naming the key", r.skipped, r.fatal)
	}
}

// TestHelperProcess is not a test: TestRequireInChild runs the test binary on it.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("HPCBOT_TESTBED_HELPER") != "1" {
		t.Skip("helper for TestRequireInChild")
	}
	Slurm(t)
	t.Log("reached the end")
}

// TestRequireInChild checks, through the real testing package, that a missing bed skips
// a test, and fails it under CI=true.
func TestRequireInChild(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the test binary")
	}
	for _, ci := range []string{"", "true"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.v", "-test.count=1")
		cmd.Env = []string{"HPCBOT_TESTBED_HELPER=1", "CI=" + ci}
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		switch {
		case ci == "" && (err != nil || !strings.Contains(string(out), "--- SKIP: TestHelperProcess")):
			t.Errorf("CI unset: err=%v, want a skip; output:\n%s", err, out)
		case ci == "true" && (!errors.As(err, &exit) || !strings.Contains(string(out), "--- FAIL: TestHelperProcess")):
			t.Errorf("CI=true: err=%v, want a failure; output:\n%s", err, out)
		case !strings.Contains(string(out), Hint):
			t.Errorf("CI=%q: output lacks the hint:\n%s", ci, out)
		case strings.Contains(string(out), "reached the end"):
			t.Errorf("CI=%q: the test went on without the bed:\n%s", ci, out)
		}
	}
}
