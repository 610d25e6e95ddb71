package main

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"hpcbot/bot/tgtest"
)

// TestQuickStart runs README's first command for real: the binary on
// hpcbot.toml.example with nothing but a token (and, since Telegram cannot be
// reached here, the fake Bot API's address, and an admin id to send a file as). A
// .txt file sent to the bot runs the demo runner (wc) on this host through the
// local plugin and comes back as a document with wc's output.
func TestQuickStart(t *testing.T) {
	example, err := os.ReadFile("hpcbot.toml.example")
	if err != nil {
		t.Fatal(err)
	}
	tg := tgtest.New(t)
	admin := tgtest.User{ID: 4242, FirstName: "Ada", Username: "ada", LanguageCode: "en"}
	text := string(example)
	for old, repl := range map[string]string{
		`api_url = "https://api.telegram.org"`: `api_url = "` + tg.URL + `"`,
		"admins = []":                          "admins = [4242]",
		"fetch_time = [120, 240]":              "fetch_time = 1",
	} {
		if !strings.Contains(text, old) {
			t.Fatalf("hpcbot.toml.example has no %q any more; update this test", old)
		}
		text = strings.Replace(text, old, repl, 1)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hpcbot.toml")
	os.WriteFile(cfg, []byte(text), 0o600)

	run := exec.Command(binary, "run", "--config", cfg)
	run.Env = append(os.Environ(), "HPCBOT_BOT_TOKEN="+tg.Token)
	run.Dir = t.TempDir() // paths in the config are relative to the config, not here
	var logs bytes.Buffer
	run.Stderr = &logs
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		run.Process.Signal(syscall.SIGTERM)
		run.Wait()
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs.String())
		}
	}()

	tg.PushDocument(admin, tgtest.Private(admin), "water.txt", []byte("one two\nthree\n"), "")
	calls := tg.Wait(t, func(calls []tgtest.Call) bool {
		for _, c := range calls {
			if c.Method == "sendDocument" && c.ChatID() == admin.ID {
				return true
			}
		}
		return false
	})
	var doc tgtest.Call
	for _, c := range calls {
		if c.Method == "sendDocument" && c.ChatID() == admin.ID {
			doc = c
		}
	}
	// Several result files (wc's output, its empty error output, the input) come
	// as one zip.
	var got string
	for _, f := range doc.Files {
		zr, err := zip.NewReader(bytes.NewReader(f.Data), int64(len(f.Data)))
		if err != nil {
			t.Fatalf("result %s is not a zip: %v", f.Name, err)
		}
		for _, zf := range zr.File {
			if strings.HasSuffix(zf.Name, ".out") {
				rc, err := zf.Open()
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(rc)
				rc.Close()
				got = string(b)
			}
		}
	}
	// wc -l -w -c water.txt: 2 lines, 3 words, 14 bytes.
	if fields := strings.Fields(got); len(fields) < 4 || fields[0] != "2" || fields[1] != "3" || fields[2] != "14" {
		t.Errorf("result document = %q, want wc's counts 2 3 14 water.txt", got)
	}
	for _, p := range []string{"hpcbot.db", "downloads", "work"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s not beside the config: %v", p, err)
		}
	}
}
