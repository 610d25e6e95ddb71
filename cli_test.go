package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"hpcbot/bot/tgtest"
	"hpcbot/store"
)

// binary is hpcbot built once for the tests that need a second process.
var binary string

func TestMain(m *testing.M) {
	// A command run in process (runMain) that starts plugins starts this test
	// binary as their executable: be hpcbot then, not the test suite.
	if len(os.Args) > 1 && os.Args[1] == "plugin" {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	// TestPluginConformanceCatchesABrokenPlugin starts this test binary as a
	// deliberately broken runner plugin.
	if len(os.Args) > 1 && os.Args[1] == brokenRunnerArg {
		serveBrokenRunner()
	}
	if len(os.Args) > 1 && os.Args[1] == brokenSchedulerArg {
		serveBrokenScheduler()
	}
	dir, err := os.MkdirTemp("", "hpcbot-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "hpcbot")
	cmd := exec.Command("go", "build", "-o", binary, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func runMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestExitCodes(t *testing.T) {
	clearEnv(t)
	good := writeConfig(t, validConfig)
	bad := writeConfig(t, strings.Replace(validConfig, "[120, 240]", "[240, 120]", 1))
	tests := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"version"}, 0, "hpcbot "},
		{[]string{"version", "--help"}, 0, "Usage: hpcbot version"},
		{[]string{"nonsense"}, 2, ""},
		{[]string{"version", "extra"}, 2, ""},
		{[]string{"run", "--no-such-flag"}, 2, ""},
		{[]string{"migrate", "--config", bad}, 2, ""},
		{[]string{"migrate", "--config", filepath.Join(t.TempDir(), "missing.toml")}, 2, ""},
		{[]string{"backup", "--config", good}, 2, ""},
		{[]string{"config", "convert"}, 2, ""},
		{[]string{"config", "convert", "/nonexistent.json"}, 1, ""},
	}
	for _, c := range commands {
		tests = append(tests, struct {
			args []string
			code int
			out  string
		}{[]string{c.name, "--help"}, 0, "Usage: hpcbot " + c.name})
	}
	for _, tt := range tests {
		code, out, _ := runMain(t, tt.args...)
		if code != tt.code || !strings.Contains(out, tt.out) {
			t.Errorf("hpcbot %v: exit %d, want %d; stdout %q", tt.args, code, tt.code, out)
		}
	}
}

func TestConfigFromEnvVar(t *testing.T) {
	clearEnv(t)
	p := writeConfig(t, validConfig)
	t.Setenv("HPCBOT_CONFIG", p)
	code, out, errs := runMain(t, "migrate")
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(p), "hpcbot.db")); err != nil {
		t.Error("HPCBOT_CONFIG not used:", err)
	}
}

func TestMigrateTwiceAndOrgs(t *testing.T) {
	clearEnv(t)
	cfg := writeConfig(t, validConfig)
	code, out, errs := runMain(t, "migrate", "--config", cfg)
	if code != 0 || !strings.Contains(out, "migrated") && !strings.Contains(out, "up to date") {
		t.Fatalf("first migrate: exit %d: %s %s", code, out, errs)
	}
	code, out, errs = runMain(t, "migrate", "--config", cfg)
	if code != 0 || !strings.Contains(out, "up to date") {
		t.Fatalf("second migrate: exit %d: %s %s", code, out, errs)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "orgs.csv")
	os.WriteFile(good, []byte("label,name,alias,parent\nipc,Institute of Physical Chemistry,IPC,ras\nras,Russian Academy of Sciences,RAS,\n"), 0o600)
	code, out, errs = runMain(t, "migrate", "--config", cfg, "--orgs", good)
	if code != 0 || !strings.Contains(out, "imported 2 organizations") {
		t.Fatalf("orgs: exit %d: %s %s", code, out, errs)
	}
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("label,name,alias,parent\nmsu,Moscow State University,MSU,\nx,Broken,X,nowhere\n"), 0o600)
	code, _, errs = runMain(t, "migrate", "--config", cfg, "--orgs", bad)
	if code != 1 || !strings.Contains(errs, "line 3") {
		t.Fatalf("bad orgs: exit %d, stderr %q", code, errs)
	}
	// The organizations from the good file are there, nothing of the bad one.
	st, err := store.Open(filepath.Join(filepath.Dir(cfg), "hpcbot.db"), store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if o, err := st.Organization("ipc"); err != nil || o.Parent != "ras" {
		t.Errorf("ipc = %+v, %v", o, err)
	}
	if _, err := st.Organization("msu"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("msu from the bad file was written: %v", err)
	}
}

// TestBackupWhileRunning: `hpcbot backup` works while `hpcbot run` holds the store.
func TestBackupWhileRunning(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "hpcbot.toml")
	text := localConfigText(tgtest.New(t))
	os.WriteFile(cfgPath, []byte(text), 0o600)
	run := startDaemon(t, cfgPath)
	// A second daemon on the same store is refused clearly.
	out, err := exec.Command(binary, "run", "--config", cfgPath).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use by another hpcbot process") {
		t.Errorf("second run: %v: %s", err, out)
	}
	backup := filepath.Join(dir, "copy.db")
	out, err = exec.Command(binary, "backup", "--config", cfgPath, backup).CombinedOutput()
	if err != nil {
		t.Fatalf("backup while running: %v: %s", err, out)
	}
	if fi, err := os.Stat(backup); err != nil || fi.Size() == 0 {
		t.Fatalf("no backup written: %v", err)
	}
	run.stop(t)
	// The copy is a valid store of the current schema.
	os.WriteFile(cfgPath, []byte("[store]\npath = \"copy.db\"\n"+text), 0o600)
	if code, out, errs := runMain(t, "check", "--config", cfgPath); !strings.Contains(out, "store "+backup+": ok") {
		t.Errorf("check of the copy: exit %d: %s %s", code, out, errs)
	}
}

// TestMigrateOrgsWhileRunning: `hpcbot migrate --orgs FILE` imports through
// the running daemon's control socket; a bad file imports nothing.
func TestMigrateOrgsWhileRunning(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "hpcbot.toml")
	text := localConfigText(tgtest.New(t))
	os.WriteFile(cfgPath, []byte(text), 0o600)
	run := startDaemon(t, cfgPath)
	good := filepath.Join(dir, "orgs.csv")
	os.WriteFile(good, []byte("label,name,alias,parent\nipc,Institute of Physical Chemistry,IPC,ras\nras,Russian Academy of Sciences,RAS,\n"), 0o600)
	out, err := exec.Command(binary, "migrate", "--config", cfgPath, "--orgs", good).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "imported 2 organizations from "+good+" through the running hpcbot") {
		t.Fatalf("migrate --orgs while running: %v: %s", err, out)
	}
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("label,name,alias,parent\nmsu,Moscow State University,MSU,\nx,Broken,X,nowhere\n"), 0o600)
	out, err = exec.Command(binary, "migrate", "--config", cfgPath, "--orgs", bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "line 3") || !strings.Contains(string(out), "nothing imported") {
		t.Errorf("bad file while running: %v: %s", err, out)
	}
	run.stop(t)
	st, err := store.Open(filepath.Join(dir, "hpcbot.db"), store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if o, err := st.Organization("ipc"); err != nil || o.Parent != "ras" {
		t.Errorf("ipc = %+v, %v", o, err)
	}
	if _, err := st.Organization("msu"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("msu from the bad file was written: %v", err)
	}
}

// localConfigText is a configuration with one local cluster running wc, its
// bot talking to the fake Bot API tg.
func localConfigText(tg *tgtest.Server) string {
	return fmt.Sprintf(`
[bot]
token = %q
api_url = %q
[[clusters]]
label = "here"
scheduler = "local"
upload_path = "work"
[[clusters.runners]]
program = "wc"
allowed_args = ["{}"]
associations = [".txt"]
`, tg.Token, tg.URL)
}

// runDaemon is an `hpcbot run` a test started (startDaemon); the e2e tests'
// world has its own (daemon), tied to their fake services and kill points.
type runDaemon struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer // read only once the process has ended
}

// startDaemon starts `hpcbot run --config cfgPath` (its store hpcbot.db beside
// the file) and waits until it serves its control socket; the process is
// killed when the test ends, if it still runs.
func startDaemon(t *testing.T, cfgPath string) *runDaemon {
	t.Helper()
	d := &runDaemon{cmd: exec.Command(binary, "run", "--config", cfgPath)}
	d.cmd.Stderr = &d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.cmd.Process.Kill() })
	sock := filepath.Join(filepath.Dir(cfgPath), "hpcbot.db.sock")
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			return d
		}
		if i > 600 {
			d.cmd.Process.Kill()
			d.cmd.Wait()
			t.Fatalf("run never opened its control socket; stderr: %s", d.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the daemon with SIGTERM, as systemd does, and fails the test
// unless it exits cleanly.
func (d *runDaemon) stop(t *testing.T) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.cmd.Wait(); err != nil {
		t.Errorf("run did not exit cleanly on SIGTERM: %v; stderr: %s", err, d.stderr.String())
	}
}
