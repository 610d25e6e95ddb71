package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"hpcbot/bot/tgtest"
)

// TestMetricsEndpoint scrapes a running hpcbot's /metrics (metrics_listen):
// the clusters' figures, the Go runtime's and the process's.
func TestMetricsEndpoint(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	tg := tgtest.New(t)
	cfgPath := filepath.Join(dir, "hpcbot.toml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
metrics_listen = %q
[bot]
token = %q
api_url = %q
[[clusters]]
label = "here"
scheduler = "local"
upload_path = "work"
drained = true
[[clusters.runners]]
program = "wc"
allowed_args = ["{}"]
associations = [".txt"]
`, addr, tg.Token, tg.URL)), 0o600)
	run := exec.Command(binary, "run", "--config", cfgPath)
	var runErr bytes.Buffer
	run.Stderr = &runErr
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	defer run.Process.Kill()
	// Scraped until the first poll tick has asked the plugin for its traffic
	// (through the plugin protocol's Stats call).
	var body string
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			if strings.Contains(body, "hpcbot_cluster_ssh_handshakes") {
				break
			}
		}
		if i > 600 {
			t.Fatalf("no metrics endpoint: %v; stderr: %s", err, runErr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, want := range []string{
		`hpcbot_cluster_up{cluster="here"} 1`,
		`hpcbot_cluster_drained{cluster="here"} 1`,
		`hpcbot_calculations{cluster="here",state="received"} 0`,
		`hpcbot_cluster_submissions_total{cluster="here"} 0`,
		`hpcbot_cluster_plugin_restarts_total{cluster="here"} 0`,
		`hpcbot_cluster_ssh_handshakes{cluster="here",window="1h"} 0`,
		`hpcbot_cluster_deliveries_total{cluster="here"} 0`,
		"hpcbot_telegram_send_errors_total ",
		`hpcbot_cluster_remote_commands{cluster="here",window="24h"} 0`,
		`hpcbot_cluster_failed_logins{cluster="here",window="24h"} 0`,
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	run.Process.Signal(syscall.SIGTERM)
	run.Wait()
}
