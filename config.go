package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"hpcbot/bot"
	"hpcbot/plugins"
	"hpcbot/runners/command"
	"hpcbot/scheduler"
	"hpcbot/store"
)

// Config is hpcbot.toml. Each section's type belongs to the package that uses it;
// config*.go only compose them, apply the environment and collect every problem.
type Config struct {
	DownloadPath        string              `toml:"download_path"`
	FetchTime           scheduler.FetchTime `toml:"fetch_time"`
	MaxFileSize         int64               `toml:"max_file_size"`
	ResultMaxSize       int64               `toml:"result_max_size"`
	ExtensionsWhitelist []string            `toml:"extensions_whitelist"`
	FilesWhitelist      []string            `toml:"files_whitelist"`
	Language            string              `toml:"language"`
	LogLevel            string              `toml:"log_level"`
	LogFile             string              `toml:"log_file"`
	PluginDir           string              `toml:"plugin_dir"`
	Retention           plugins.Duration    `toml:"retention"`
	GiveUpAfter         plugins.Duration    `toml:"give_up_after"`
	// MetricsListen is the address of the Prometheus endpoint (/metrics), e.g.
	// "127.0.0.1:9464"; "" (the default) serves none.
	MetricsListen string `toml:"metrics_listen"`

	Store    store.Config              `toml:"store"`
	Bot      bot.Config                `toml:"bot"`
	Quota    bot.QuotaConfig           `toml:"quota"`
	Storage  scheduler.StorageConfig   `toml:"storage"`
	Clusters []scheduler.ClusterConfig `toml:"clusters"`

	path string // where it was read from
}

// Defaults of the top-level keys.
const (
	defaultDownloadPath = "downloads"
	defaultMaxFileSize  = 20 << 20 // the public Bot API's download limit
	defaultResultMax    = 1 << 30
	defaultStorePath    = "hpcbot.db"
)

// configError is a problem with hpcbot.toml; main exits 2 on it.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }

func (e *configError) Unwrap() error { return e.err }

// loadConfig reads, defaults, applies the environment to and validates the file.
// Every problem is reported at once, one line each, naming the key and its line.
// The bot token may be missing: the commands that need it (run, check) load
// with loadConfigWithToken.
func loadConfig(path string) (*Config, error) { return loadConfigFor(path, false) }

// loadConfigWithToken is loadConfig for the commands that talk to Telegram:
// a missing or malformed bot token is one of the problems reported.
func loadConfigWithToken(path string) (*Config, error) { return loadConfigFor(path, true) }

func loadConfigFor(path string, needToken bool) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &configError{fmt.Errorf("config %s not found; copy hpcbot.toml.example to %s, or pass --config PATH (or set HPCBOT_CONFIG)", path, path)}
		}
		return nil, &configError{fmt.Errorf("read config: %w", err)}
	}
	cfg, err := parseConfigFor(path, data, needToken)
	if err != nil {
		return nil, &configError{err}
	}
	return cfg, nil
}

// parseConfig parses and validates a configuration whose token may be missing.
func parseConfig(path string, data []byte) (*Config, error) { return parseConfigFor(path, data, false) }

func parseConfigFor(path string, data []byte, needToken bool) (*Config, error) {
	cfg := &Config{path: path}
	md, err := toml.Decode(string(data), cfg)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s:%d: %s", path, pe.Position.Line, pe.Message)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	lines := indexKeys(data)
	var problems []error
	for _, k := range md.Undecoded() {
		key := k.String()
		problems = append(problems, fmt.Errorf("%s: unknown key; check its spelling against hpcbot.toml.example", key))
	}
	if err := cfg.applyEnv(os.Getenv); err != nil {
		problems = append(problems, err)
	}
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		problems = append(problems, err)
	}
	if needToken {
		if err := cfg.Bot.ValidateToken(); err != nil {
			problems = append(problems, err)
		}
	}
	if len(problems) == 0 {
		return cfg, nil
	}
	return nil, located(path, lines, errors.Join(problems...))
}

// applyEnv takes secrets from the environment and from *_file keys. The
// environment wins over the file, so a secret need never be written in it.
func (c *Config) applyEnv(getenv func(string) string) error {
	var errs []error
	readFile := func(key, file string, into *plugins.Secret) {
		if file == "" {
			return
		}
		b, err := os.ReadFile(file)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", key, err))
			return
		}
		*into = plugins.Secret(strings.TrimSpace(string(b)))
	}
	readFile("bot.token_file", c.Bot.TokenFile, &c.Bot.Token)
	readFile("storage.password_file", c.Storage.PasswordFile, &c.Storage.Password)
	if v := getenv("HPCBOT_BOT_TOKEN"); v != "" {
		c.Bot.Token = plugins.Secret(v)
	}
	if v := getenv("HPCBOT_STORAGE_PASSWORD"); v != "" {
		c.Storage.Password = plugins.Secret(v)
	}
	for i := range c.Clusters {
		cl := &c.Clusters[i]
		if v := getenv("HPCBOT_CLUSTER_" + scheduler.EnvLabel(cl.Label) + "_PASSWORD"); v != "" {
			cl.Connection.Password = plugins.Secret(v)
		}
	}
	return errors.Join(errs...)
}

func (c *Config) setDefaults() {
	if c.DownloadPath == "" {
		c.DownloadPath = defaultDownloadPath
	}
	if c.FetchTime == (scheduler.FetchTime{}) {
		c.FetchTime = scheduler.FetchTime{Min: 120 * time.Second, Max: 240 * time.Second}
	}
	if c.MaxFileSize == 0 {
		c.MaxFileSize = defaultMaxFileSize
	}
	if c.ResultMaxSize == 0 {
		c.ResultMaxSize = defaultResultMax
	}
	if c.Language == "" {
		c.Language = "en"
	}
	if c.Retention == 0 {
		c.Retention = plugins.Duration(30 * 24 * time.Hour)
	}
	if c.GiveUpAfter == 0 {
		c.GiveUpAfter = plugins.Duration(72 * time.Hour)
	}
	if c.Store.Path == "" {
		c.Store.Path = defaultStorePath
	}
	if c.PluginDir == "" {
		c.PluginDir = "plugins.d"
	}
	base := filepath.Dir(c.path)
	c.Store.Path = relTo(base, c.Store.Path)
	c.DownloadPath = relTo(base, c.DownloadPath)
	c.PluginDir = relTo(base, c.PluginDir)
	if c.LogFile != "" {
		c.LogFile = relTo(base, c.LogFile)
	}
	c.Bot.SetDefaults()
	c.Quota.SetDefaults()
	c.Storage.SetDefaults()
	for i := range c.Clusters {
		cl := &c.Clusters[i]
		if cl.Connection.Port == 0 {
			cl.Connection.Port = 22
		}
		if cl.Connection.KnownHosts == "" && cl.Connection.HostKey == "" {
			cl.Connection.KnownHosts = "~/.ssh/known_hosts"
		}
		if cl.Scheduler == "local" {
			// On this host a relative upload_path means beside the config, like the
			// other paths here (on a cluster it means below the login folder).
			cl.UploadPath = relTo(base, expandHome(cl.UploadPath))
		}
		cl.Connection.KnownHosts = expandHome(relTo(base, cl.Connection.KnownHosts))
		cl.Connection.KeyPath = expandHome(relTo(base, cl.Connection.KeyPath))
		for j := range cl.Runners {
			r := &cl.Runners[j]
			if r.Runner == "" {
				r.Runner = command.Name
			}
			if r.Launch == "" {
				r.Launch = plugins.LaunchBatch
			}
		}
	}
}

// expandHome turns a leading ~/ into the home folder of the user running hpcbot,
// as OpenSSH does for its own files.
func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return p
}

// relTo makes a relative path in the config relative to the config file's folder,
// so that `hpcbot --config /etc/hpcbot/hpcbot.toml` finds its files wherever it runs.
func relTo(base, p string) string {
	if p == "" || filepath.IsAbs(p) || strings.HasPrefix(p, "~") {
		return p
	}
	return filepath.Join(base, p)
}
