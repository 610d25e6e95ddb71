package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"hpcbot/bot/tgtest"
	"hpcbot/scheduler/nextcloud/nctest"
)

// itemsConfig is a configuration for the fake Bot API and the fake Nextcloud
// with a `local` cluster, plus extra (more clusters) at the end.
func itemsConfig(tg *tgtest.Server, token string, nc *nctest.Server, password, extra string) string {
	return fmt.Sprintf(`
[bot]
token = %q
api_url = %q
[storage]
url = %q
user = %q
password = %q
base_path = "results/hpc"
[[clusters]]
label = "here"
scheduler = "local"
upload_path = "work"
[[clusters.runners]]
program = "wc"
allowed_args = ["{}"]
associations = [".txt"]
%s`, token, tg.URL, nc.URL, nc.User, password, extra)
}

// TestCheckProvesEachItem: `hpcbot check` proves the token (getMe, naming the
// bot), the cloud account and base_path (a write and a delete, nothing left
// behind), the store (not created yet is reported, no failure) and every
// cluster; with a refused token, a refused cloud password and an unreachable
// cluster it exits 1 naming each, and says nothing of the secrets.
func TestCheckProvesEachItem(t *testing.T) {
	clearEnv(t)
	tg, nc := tgtest.New(t), nctest.New(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "hpcbot.toml")
	os.WriteFile(cfgPath, []byte(itemsConfig(tg, tg.Token, nc, nc.Password, "")), 0o600)
	code, out, errs := runMain(t, "check", "--config", cfgPath)
	if code != 0 {
		t.Fatalf("check: exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		"telegram " + tg.URL + ": ok, the token is bot @" + tg.Bot.Username,
		"storage " + nc.URL + " as " + nc.User + ": ok, wrote and deleted results/hpc/.hpcbot-check-",
		"store " + filepath.Join(dir, "hpcbot.db") + ": not created yet: run `hpcbot migrate`",
		"cluster here (local): reachable",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	if n := nc.Count("PUT", "/remote.php/dav/files/"+nc.User+"/results/hpc/.hpcbot-check-"); n != 1 {
		t.Errorf("%d PUTs of the check file, want 1", n)
	}
	if n := nc.Count("DELETE", "/remote.php/dav/files/"+nc.User+"/results/hpc/.hpcbot-check-"); n != 1 {
		t.Errorf("%d DELETEs of the check file, want 1", n)
	}
	if left, err := os.ReadDir(nc.Path("results/hpc")); err != nil || len(left) != 0 {
		t.Errorf("base_path after check: %v, %v; want it created and empty", left, err)
	}

	// Everything refused or unreachable.
	key := filepath.Join(dir, "id_ed25519")
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(key, pem.EncodeToMemory(block), 0o600)
	os.WriteFile(filepath.Join(dir, "known_hosts"), nil, 0o600)
	far := fmt.Sprintf(`
[[clusters]]
label = "far"
scheduler = "slurm"
upload_path = "work"
[clusters.connection]
host = "127.0.0.1"
port = 1
user = "nobody"
key_path = %q
known_hosts = %q
[[clusters.runners]]
program = "wc"
allowed_args = ["{}"]
associations = [".txt"]
`, key, filepath.Join(dir, "known_hosts"))
	os.WriteFile(cfgPath, []byte(itemsConfig(tg, "123:revoked", nc, "wrong-password", far)), 0o600)
	code, out, errs = runMain(t, "check", "--config", cfgPath)
	t.Logf("%s%s", out, errs)
	if code != 1 || !strings.Contains(errs, "check failed: telegram, storage, cluster far") {
		t.Fatalf("check with everything refused: exit %d, stderr %q\n%s", code, errs, out)
	}
	for _, want := range []string{
		"telegram " + tg.URL + ": FAILED: ", "401",
		"storage " + nc.URL + " as " + nc.User + ": FAILED: ", "storage.password",
		"cluster far (slurm): FAILED",
		"cluster here (local): reachable",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{"123:revoked", "revoked", "wrong-password"} {
		if strings.Contains(out+errs, secret) {
			t.Errorf("check output shows the secret %q:\n%s%s", secret, out, errs)
		}
	}
}

// TestTokenOnlyForRunAndCheck: the commands that do not talk to Telegram work
// without a bot token; run and check name the missing key.
func TestTokenOnlyForRunAndCheck(t *testing.T) {
	clearEnv(t)
	noToken := strings.Replace(validConfig, `token = "123:abc"`, "", 1)
	cfgPath := writeConfig(t, noToken)
	dir := filepath.Dir(cfgPath)
	if code, out, errs := runMain(t, "migrate", "--config", cfgPath); code != 0 {
		t.Fatalf("migrate without a token: exit %d: %s%s", code, out, errs)
	}
	if code, out, errs := runMain(t, "backup", "--config", cfgPath, filepath.Join(dir, "copy.db")); code != 0 {
		t.Fatalf("backup without a token: exit %d: %s%s", code, out, errs)
	}
	if code, out, errs := runMain(t, "report", "--config", cfgPath); code != 0 || !strings.Contains(out, "No calculations") {
		t.Fatalf("report without a token: exit %d: %s%s", code, out, errs)
	}
	legacy := filepath.Join(dir, "config.json")
	os.WriteFile(legacy, []byte(`{"download_path": "downloads", "bot": {"admins": [42]}}`), 0o600)
	if code, out, errs := runMain(t, "config", "--config", cfgPath, "convert", legacy); code != 0 {
		t.Fatalf("config convert without a token: exit %d: %s%s", code, out, errs)
	}
	if code, out, _ := runMain(t, "config", "convert", "--help"); code != 0 || !strings.Contains(out, "Usage: hpcbot config") {
		t.Errorf("config convert --help: exit %d: %s", code, out)
	}
	for _, cmd := range []string{"run", "check"} {
		code, out, errs := runMain(t, cmd, "--config", cfgPath)
		if code != 2 || !strings.Contains(errs, "bot.token: missing") {
			t.Errorf("%s without a token: exit %d, want 2 naming bot.token: %s%s", cmd, code, out, errs)
		}
	}
}

// TestRunExitsOnRefusedToken: `run` with a token Telegram refuses (401)
// exits at once with exit 1, saying so, rather than retrying.
func TestRunExitsOnRefusedToken(t *testing.T) {
	clearEnv(t)
	tg, nc := tgtest.New(t), nctest.New(t)
	cfgPath := filepath.Join(t.TempDir(), "hpcbot.toml")
	os.WriteFile(cfgPath, []byte(itemsConfig(tg, "123:revoked", nc, nc.Password, "")), 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a guard against a hang, not a speed check
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "run", "--config", cfgPath).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("run kept going with a refused token:\n%s", out)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "refused the token") ||
		!strings.Contains(string(out), "check bot.token") {
		t.Fatalf("run with a refused token: %v\n%s", err, out)
	}
	if n := len(tg.Calls("getMe")); n != 1 {
		t.Errorf("%d getMe calls with a refused token, want 1", n)
	}
	if strings.Contains(string(out), "123:revoked") {
		t.Errorf("run shows the token:\n%s", out)
	}
}
