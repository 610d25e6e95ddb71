package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"hpcbot/bot/tgtest"
	"hpcbot/internal/testbed"
)

func testbedConfig(tg *tgtest.Server, env testbed.SSHEnv, hostKeyLine string) string {
	return fmt.Sprintf(`
[bot]
token = %q
api_url = %q
[[clusters]]
label = "tb"
scheduler = "slurm"
upload_path = "hpcbot-check"
[clusters.connection]
host = %q
port = %d
user = %q
key_path = %q
known_hosts = %q
%s
[[clusters.runners]]
program = "echo"
allowed_args = ["{}"]
associations = [".txt"]
`, tg.Token, tg.URL, env.Host, env.Port, env.User, env.KeyPath, env.KnownHosts, hostKeyLine)
}

// TestCheckAgainstTestbed: `hpcbot check` (the real binary, so the plugins run in
// processes of their own) reaches the test bed's Slurm over SSH, lists the
// plugins, and refuses a wrong host key naming its fingerprint.
func TestCheckAgainstTestbed(t *testing.T) {
	env := testbed.Slurm(t)
	tg := tgtest.New(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "hpcbot.toml")
	os.WriteFile(cfgPath, []byte(testbedConfig(tg, env, "")), 0o600)
	if code, out, errs := runMain(t, "migrate", "--config", cfgPath); code != 0 {
		t.Fatalf("migrate: %s %s", out, errs)
	}
	out, err := execBinary(t, "check", "--config", cfgPath)
	if err != nil {
		t.Fatalf("check failed: %v\n%s", err, out)
	}
	for _, want := range []string{"cluster tb (slurm): reachable: slurm 22", "plugin scheduler slurm for tb", "plugin runner command for tb", "runner command"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}

	// A pinned key that is not the server's: refused, with the presented key's fingerprint.
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	wrong, _ := ssh.NewPublicKey(pub)
	line := fmt.Sprintf("host_key = %q", strings.TrimSpace(string(ssh.MarshalAuthorizedKey(wrong))))
	os.WriteFile(cfgPath, []byte(testbedConfig(tg, env, line)), 0o600)
	out, err = execBinary(t, "check", "--config", cfgPath)
	if err == nil {
		t.Fatalf("check passed with a wrong host key:\n%s", out)
	}
	hostPub, rerr := os.ReadFile(env.HostKeyPub)
	if rerr != nil {
		t.Fatal(rerr)
	}
	real, _, _, _, perr := ssh.ParseAuthorizedKey(hostPub)
	if perr != nil {
		t.Fatal(perr)
	}
	if !strings.Contains(out, "cluster tb (slurm): FAILED") || !strings.Contains(out, ssh.FingerprintSHA256(real)) {
		t.Errorf("wrong host key not reported with the server's fingerprint %s:\n%s", ssh.FingerprintSHA256(real), out)
	}
}

func execBinary(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(binary, args...).CombinedOutput()
	return string(out), err
}
