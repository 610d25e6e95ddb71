package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConvertSeedConfigs: both of the original bot's example configs convert, and
// the output loads back without errors.
func TestConvertSeedConfigs(t *testing.T) {
	seeds := []string{"testdata/legacy/config_example.json", "testdata/legacy/config_full_example.json"}
	for _, seed := range seeds {
		t.Run(filepath.Base(seed), func(t *testing.T) {
			clearEnv(t)
			data, err := os.ReadFile(seed)
			if err != nil {
				t.Fatal(err)
			}
			out, warnings, err := convertConfig(data)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(out, "db_type") || strings.Contains(out, "postgresql\"") {
				t.Errorf("db section leaked into the output:\n%s", out)
			}
			// The minimal seed has no token: the warning says so and the env supplies it.
			if !strings.Contains(out, "token = ") {
				if len(warnings) == 0 {
					t.Error("no warning about the missing token")
				}
				t.Setenv("HPCBOT_BOT_TOKEN", "1:from-env")
			}
			if _, err := parseConfig(filepath.Join(t.TempDir(), "hpcbot.toml"), []byte(out)); err != nil {
				t.Fatalf("converted config does not load:\n%v\n--- output:\n%s", err, out)
			}
		})
	}
}

func TestConvertDetails(t *testing.T) {
	data, err := os.ReadFile("testdata/legacy/config_full_example.json")
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := convertConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	clearEnv(t)
	cfg, err := parseConfig(filepath.Join(t.TempDir(), "hpcbot.toml"), []byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Storage.URL != "https://cloud.example.org" || cfg.Storage.User != "hpcbot" || string(cfg.Storage.Password) != "cloud-secret" {
		t.Errorf("storage = %+v", cfg.Storage)
	}
	if len(cfg.Clusters) != 2 {
		t.Fatalf("clusters = %d", len(cfg.Clusters))
	}
	orca := cfg.Clusters[0].Runners[0]
	if orca.Launch != "wrapper" || orca.Program != "orca_submit" || orca.AllowedArgs[1] != `-p\d{1,2}` {
		t.Errorf("runner = %+v", orca)
	}
	ws := cfg.Clusters[1]
	if ws.Connection.Port != 2222 || string(ws.Connection.Password) != "ssh-secret" {
		t.Errorf("workstation = %+v", ws.Connection)
	}
	if cfg.FetchTime.Min.Seconds() != 120 || cfg.FetchTime.Max.Seconds() != 240 {
		t.Errorf("fetch_time = %+v", cfg.FetchTime)
	}
	if !strings.Contains(out, "bbolt") {
		t.Error("the db section should become a comment about the bbolt store")
	}
	if cfg.Bot.LogChatID != -1001234567890 {
		t.Errorf("log_chat_id = %d", cfg.Bot.LogChatID)
	}
}

// TestConvertAdminNameIsContact: the original recognised its admin by
// @username; the converted config keeps admin_name only as the contact shown
// to users, makes nobody an admin, and the warning says to add the admin's
// numeric id to bot.admins.
func TestConvertAdminNameIsContact(t *testing.T) {
	data, err := os.ReadFile("testdata/legacy/config_full_example.json")
	if err != nil {
		t.Fatal(err)
	}
	out, warnings, err := convertConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	clearEnv(t)
	cfg, err := parseConfig(filepath.Join(t.TempDir(), "hpcbot.toml"), []byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Bot.AdminName != "@chem_admin" || len(cfg.Bot.Admins) != 0 {
		t.Errorf("admin_name %q, admins %v; want the contact kept and no admin", cfg.Bot.AdminName, cfg.Bot.Admins)
	}
	found := false
	for _, w := range warnings {
		if strings.Contains(w, "bot.admins") && strings.Contains(w, "numeric Telegram id") &&
			strings.Contains(w, "@chem_admin is kept only as the contact") && strings.Contains(w, "grants no rights") {
			found = true
		}
	}
	if !found {
		t.Errorf("no warning that admin_name is only a contact and bot.admins needs the admin's id: %q", warnings)
	}
	if !strings.Contains(out, "# admin_name: the contact shown to users") {
		t.Errorf("the output does not say what admin_name is:\n%s", out)
	}
}

func TestStorageURL(t *testing.T) {
	for _, tt := range []struct {
		host string
		port int
		want string
	}{
		{"https://cloud.example.org", 443, "https://cloud.example.org"},
		{"https://cloud.example.org", 8443, "https://cloud.example.org:8443"},
		{"cloud.example.org", 0, "https://cloud.example.org"},
		{"http://nc.local/", 80, "http://nc.local"},
		{"http://nc.local", 8080, "http://nc.local:8080"},
	} {
		got, err := storageURL(tt.host, tt.port)
		if err != nil || got != tt.want {
			t.Errorf("storageURL(%q, %d) = %q, %v; want %q", tt.host, tt.port, got, err, tt.want)
		}
	}
}
