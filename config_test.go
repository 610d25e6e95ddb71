package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const validConfig = `
download_path = "downloads"
fetch_time = [120, 240]
[store]
path = "hpcbot.db"
[bot]
token = "123:abc"
admins = [42]
[[clusters]]
label = "loc"
scheduler = "slurm"
upload_path = "/scratch/bot"
[clusters.connection]
host = "login.example.org"
user = "chem"
key_path = "/home/bot/.ssh/id_ed25519"
[[clusters.runners]]
program = "orca_submit"
allowed_args = ["{}", '-p\d{1,2}']
associations = [".inp"]
`

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hpcbot.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func clearEnv(t *testing.T) {
	for _, k := range []string{"HPCBOT_BOT_TOKEN", "HPCBOT_STORAGE_PASSWORD", "HPCBOT_CLUSTER_LOC_PASSWORD"} {
		t.Setenv(k, "")
	}
}

func TestConfigValid(t *testing.T) {
	clearEnv(t)
	cfg, err := loadConfig(writeConfig(t, validConfig))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.FetchTime.Min != 120*time.Second || cfg.FetchTime.Max != 240*time.Second {
		t.Errorf("fetch_time = %+v", cfg.FetchTime)
	}
	if cfg.Quota.NewUser != 5 || cfg.Quota.Approved != 25 || time.Duration(cfg.Quota.Window) != 720*time.Hour {
		t.Errorf("quota defaults = %+v", cfg.Quota)
	}
	if cfg.Bot.APIURL != "https://api.telegram.org" {
		t.Errorf("api_url default = %q", cfg.Bot.APIURL)
	}
	r := cfg.Clusters[0].Runners[0]
	if r.Launch != "batch" || r.Runner != "command" {
		t.Errorf("runner defaults = %+v", r)
	}
	if cfg.Clusters[0].Connection.Port != 22 {
		t.Errorf("port default = %d", cfg.Clusters[0].Connection.Port)
	}
	if !filepath.IsAbs(cfg.Store.Path) || filepath.Dir(cfg.Store.Path) != filepath.Dir(cfg.path) {
		t.Errorf("store.path %q is not relative to the config file", cfg.Store.Path)
	}
}

// TestConfigErrors: every mistake gives one line naming the key (and its line).
func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(string) string
		want []string // substrings, each on one reported line
	}{
		{"unknown key", func(s string) string {
			return strings.Replace(s, `host = "login`, `hots = "x"`+"\n"+`host = "login`, 1)
		},
			[]string{":14: clusters.connection.hots: unknown key"}},
		{"unknown top-level key", func(s string) string { return "fetchtime = 3\n" + s }, []string{":1: fetchtime: unknown key"}},
		{"bad regex", func(s string) string { return strings.Replace(s, `'-p\d{1,2}'`, `'-p(\d'`, 1) },
			[]string{"clusters[0].runners[0].allowed_args[1]", "-p(\\d"}},
		{"default args rejected", func(s string) string {
			return strings.Replace(s, `associations = [".inp"]`, `associations = [".inp"]`+"\n"+`default_args = ["{}", "--evil"]`, 1)
		}, []string{"clusters[0].runners[0].default_args", "--evil"}},
		{"association twice", func(s string) string {
			return s + "[[clusters.runners]]\nprogram = \"g16\"\nallowed_args = [\"{}\"]\nassociations = [\".inp\"]\n"
		}, []string{"clusters[0].runners[1].associations", ".inp"}},
		{"max_cores on the command runner", func(s string) string {
			return strings.Replace(s, `associations = [".inp"]`, `associations = [".inp"]`+"\nmax_cores = 8", 1)
		}, []string{"clusters[0].runners[0].max_cores: the command runner does not read inputs", `runner = "xtb", "orca" or "gaussian"`}},
		{"bad max_memory", func(s string) string {
			return s + "[[clusters.runners]]\nrunner = \"orca\"\nprogram = \"orca\"\nmax_memory = \"lots\"\n"
		}, []string{`clusters[0].runners[1].max_memory: "lots" is not a size`, `"64GB"`}},
		{"fetch_time min > max", func(s string) string { return strings.Replace(s, "[120, 240]", "[240, 120]", 1) },
			[]string{":3: fetch_time: min 4m0s is greater than max 2m0s"}},
		{"missing token", func(s string) string { return strings.Replace(s, `token = "123:abc"`, "", 1) },
			[]string{"bot.token: missing", "HPCBOT_BOT_TOKEN"}},
		{"no password nor key", func(s string) string { return strings.Replace(s, `key_path = "/home/bot/.ssh/id_ed25519"`, "", 1) },
			[]string{"clusters[0].connection: neither password nor key_path is set", "HPCBOT_CLUSTER_LOC_PASSWORD"}},
		{"duplicate label", func(s string) string {
			i := strings.Index(s, "[[clusters]]")
			return s + strings.Replace(s[i:], `label = "loc"`, `label = "LOC"`, 1)
		}, []string{`clusters[1].label: "LOC" is already the label of clusters[0]`}},
		{"unknown scheduler", func(s string) string { return strings.Replace(s, `"slurm"`, `"lsf"`, 1) },
			[]string{`:11: clusters[0].scheduler: "lsf" is not a built-in scheduler`}},
		{"language", func(s string) string { return `language = "de"` + "\n" + s }, []string{`:1: language: "de" is not supported`}},
		{"metrics_listen", func(s string) string { return `metrics_listen = "9464"` + "\n" + s },
			[]string{`metrics_listen: "9464" is not host:port`}},
		{"storage half set", func(s string) string { return s + "[storage]\nurl = \"https://cloud.example.org\"\n" },
			[]string{"storage.user: storage.url is set", "storage.password: storage.url is set"}},
		{"bad fetch_time type", func(s string) string { return strings.Replace(s, "[120, 240]", `"often"`, 1) },
			[]string{"fetch_time"}},
		{"bad window", func(s string) string { return s + "[quota]\nwindow = \"a month\"\n" }, []string{"window", "not a duration"}},
		{"negative fallback_after", func(s string) string {
			return s + "[storage]\nurl = \"https://cloud.example.org\"\nuser = \"u\"\npassword = \"p\"\nfallback_after = \"-1h\"\n"
		}, []string{"storage.fallback_after: must not be negative"}},
		{"group id not negative", func(s string) string {
			return strings.Replace(s, "admins = [42]", "admins = [42]\ngroups = [-1001234567890, 42]", 1)
		},
			[]string{":9: bot.groups[1]: 42 is not a group id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			_, err := loadConfigWithToken(writeConfig(t, tt.edit(validConfig)))
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not mention %q:\n%s", w, msg)
				}
			}
			if strings.Contains(msg, "123:abc") {
				t.Errorf("error leaks the token:\n%s", msg)
			}
		})
	}
}

// TestConfigAllProblemsAtOnce: several mistakes are reported together.
func TestConfigAllProblemsAtOnce(t *testing.T) {
	clearEnv(t)
	bad := strings.NewReplacer(`token = "123:abc"`, "", "[120, 240]", "[240, 120]", `"slurm"`, `"lsf"`).Replace(validConfig)
	_, err := loadConfigWithToken(writeConfig(t, bad))
	if err == nil {
		t.Fatal("no error")
	}
	if n := len(strings.Split(err.Error(), "\n")); n != 3 {
		t.Errorf("want 3 lines, got %d:\n%v", n, err)
	}
}

func TestConfigSecretsFromEnv(t *testing.T) {
	clearEnv(t)
	t.Setenv("HPCBOT_BOT_TOKEN", "999:fromenv")
	t.Setenv("HPCBOT_CLUSTER_LOC_PASSWORD", "hunter22")
	text := strings.Replace(validConfig, `token = "123:abc"`, "", 1)
	text = strings.Replace(text, `key_path = "/home/bot/.ssh/id_ed25519"`, "", 1)
	cfg, err := loadConfig(writeConfig(t, text))
	if err != nil {
		t.Fatal(err)
	}
	if string(cfg.Bot.Token) != "999:fromenv" || string(cfg.Clusters[0].Connection.Password) != "hunter22" {
		t.Errorf("env not applied: %q %q", string(cfg.Bot.Token), string(cfg.Clusters[0].Connection.Password))
	}
	if s := cfg.Bot.Token.String(); s != "[redacted]" {
		t.Errorf("token prints as %q", s)
	}
}

func TestConfigFetchTimeNumber(t *testing.T) {
	clearEnv(t)
	cfg, err := loadConfig(writeConfig(t, strings.Replace(validConfig, "[120, 240]", "30", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.FetchTime.Min != 30*time.Second || cfg.FetchTime.Max != 30*time.Second || cfg.FetchTime.Next() != 30*time.Second {
		t.Errorf("fetch_time = %+v", cfg.FetchTime)
	}
}

// TestExampleConfigLoads: hpcbot.toml.example works with only a token.
func TestExampleConfigLoads(t *testing.T) {
	clearEnv(t)
	t.Setenv("HPCBOT_BOT_TOKEN", "123:abc")
	cfg, err := loadConfig("hpcbot.toml.example")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Clusters) == 0 || cfg.Clusters[0].Scheduler != "local" {
		t.Errorf("the example's first cluster should be local: %+v", cfg.Clusters)
	}
}

func TestLogScrubber(t *testing.T) {
	clearEnv(t)
	t.Setenv("TEST_KEY_PASS", "k3ypassphrase")
	conf := strings.Replace(validConfig, `key_path = "/home/bot/.ssh/id_ed25519"`, `password = "sup3rsecret"`, 1)
	conf = strings.Replace(conf, "[clusters.connection]", "[clusters.connection]\nkey_passphrase_env = \"TEST_KEY_PASS\"", 1)
	cfg, err := loadConfig(writeConfig(t, conf))
	if err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	log, closeFn, err := newLogger(cfg, &buf)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	log.Info("dial https://api.telegram.org/bot123:abc/getMe failed", "err", os.ErrClosed, "conn", cfg.Clusters[0].Connection, "pw", cfg.Clusters[0].Connection.Password, "raw", "x sup3rsecret y", "pass", "k3ypassphrase")
	log.With("token", string(cfg.Bot.Token)).Warn("with attrs")
	out := buf.String()
	for _, secret := range []string{"123:abc", "sup3rsecret", "k3ypassphrase"} {
		if strings.Contains(out, secret) {
			t.Errorf("log leaks %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "[redacted]") {
		t.Errorf("nothing redacted:\n%s", out)
	}
}

// TestClearTextWarnings: an http:// Bot API or cloud URL off this machine is
// warned about (the token or password would travel in clear); https and the
// loopback are not.
func TestClearTextWarnings(t *testing.T) {
	clearEnv(t)
	for _, tt := range []struct {
		api, cloud string
		want       []string // parts of the warnings, in order; nil: none
	}{
		{"", "", nil},
		{"https://tg.example.org", "https://cloud.example.org", nil},
		{"http://127.0.0.1:8081", "http://localhost:8080", nil},
		{"http://[::1]:8081", "http://127.0.0.2/", nil},
		{"http://tg.example.org:8081", "", []string{"bot.api_url: the bot token travels in clear to http://tg.example.org:8081"}},
		{"HTTP://10.0.0.5", "http://cloud.example.org", []string{"bot.api_url: the bot token", "storage.url: the Nextcloud password travels in clear to http://cloud.example.org; use https://"}},
		{"", "http://localhost.example.org", []string{"storage.url"}},
	} {
		conf := validConfig
		if tt.api != "" {
			conf = strings.Replace(conf, "admins = [42]", "admins = [42]\napi_url = \""+tt.api+"\"", 1)
		}
		if tt.cloud != "" {
			conf += "[storage]\nurl = \"" + tt.cloud + "\"\nuser = \"bot\"\npassword = \"pw-1234\"\n"
		}
		cfg, err := loadConfig(writeConfig(t, conf))
		if err != nil {
			t.Fatalf("%s %s: %v", tt.api, tt.cloud, err)
		}
		got := cfg.ClearTextWarnings()
		if len(got) != len(tt.want) {
			t.Errorf("%q %q: warnings %q, want %d", tt.api, tt.cloud, got, len(tt.want))
			continue
		}
		for i, part := range tt.want {
			if !strings.Contains(got[i], part) {
				t.Errorf("%q %q: warning %q lacks %q", tt.api, tt.cloud, got[i], part)
			}
		}
	}
}
