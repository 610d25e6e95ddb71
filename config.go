package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"hpcbot/bot"
	"hpcbot/plugins"
	"hpcbot/runners/command"
	"hpcbot/runners/qcrun"
	"hpcbot/scheduler"
	"hpcbot/store"
)

// Config is hpcbot.toml. Each section's type belongs to the package that uses it;
// this file only composes them, applies the environment and collects every problem.
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

var extRE = regexp.MustCompile(`^\.[A-Za-z0-9]+$`)

func (c *Config) validate() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	add(c.FetchTime.Validate())
	if c.MaxFileSize < 0 {
		add(errors.New("max_file_size: must not be negative (bytes)"))
	}
	if c.ResultMaxSize < 0 {
		add(errors.New("result_max_size: must not be negative (bytes)"))
	}
	for i, e := range c.ExtensionsWhitelist {
		if !extRE.MatchString(e) {
			add(fmt.Errorf("extensions_whitelist[%d]: %q must look like \".out\"", i, e))
		}
	}
	for i, f := range c.FilesWhitelist {
		if f == "" || strings.ContainsAny(f, "/\\\x00") {
			add(fmt.Errorf("files_whitelist[%d]: %q must be a plain file name", i, f))
		}
	}
	if c.Language != "en" && c.Language != "ru" {
		add(fmt.Errorf("language: %q is not supported; use \"en\" or \"ru\"", c.Language))
	}
	if _, err := bot.ParseLevel(c.LogLevel); err != nil {
		add(fmt.Errorf("log_level: %w", err))
	}
	if c.Retention < 0 {
		add(errors.New("retention: must not be negative"))
	}
	if c.GiveUpAfter < 0 {
		add(errors.New("give_up_after: must not be negative"))
	}
	if c.MetricsListen != "" {
		if _, port, err := net.SplitHostPort(c.MetricsListen); err != nil || port == "" {
			add(fmt.Errorf("metrics_listen: %q is not host:port, e.g. \"127.0.0.1:9464\"", c.MetricsListen))
		}
	}
	add(c.Store.Validate())
	add(c.Bot.ValidateWithoutToken())
	add(c.Quota.Validate())
	add(c.Storage.Validate())
	builtinSchedulers := builtins.Names(plugins.PluginScheduler)
	dropIns := discoverDropIns(c.PluginDir, "scheduler")
	seen := map[string]int{}
	for i := range c.Clusters {
		cl := &c.Clusters[i]
		key := fmt.Sprintf("clusters[%d]", i)
		add(cl.Validate(key, builtinSchedulers, dropIns))
		if cl.Label != "" {
			if j, ok := seen[strings.ToLower(cl.Label)]; ok {
				add(fmt.Errorf("%s.label: %q is already the label of clusters[%d]; labels must be unique", key, cl.Label, j))
			} else {
				seen[strings.ToLower(cl.Label)] = i
			}
		}
		// Validate checks the command runner's rules and skips the others, but counts
		// their associations, so it gets all of them (and the right indices).
		add(command.Validate(key+".runners", cl.Runners))
		add(qcrun.Validate(key+".runners", cl.Runners))
	}
	return errors.Join(errs...)
}

// discoverDropIns lists the drop-in plugins of a kind in dir ("scheduler": the names
// after hpcbot-scheduler-).
func discoverDropIns(dir, kind string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var names []string
	prefix := "hpcbot-" + kind + "-"
	for _, e := range entries {
		if name, ok := strings.CutPrefix(e.Name(), prefix); ok && name != "" {
			if info, err := e.Info(); err == nil && info.Mode().IsRegular() && info.Mode()&0o111 != 0 {
				names = append(names, name)
			}
		}
	}
	return names
}

// Scheduler composes the scheduler package's Config.
func (c *Config) Scheduler() scheduler.Config {
	return scheduler.Config{
		DownloadPath:        c.DownloadPath,
		FetchTime:           c.FetchTime,
		ExtensionsWhitelist: c.ExtensionsWhitelist,
		FilesWhitelist:      c.FilesWhitelist,
		ResultMaxSize:       c.ResultMaxSize,
		Retention:           time.Duration(c.Retention),
		GiveUpAfter:         time.Duration(c.GiveUpAfter),
		Storage:             c.Storage,
		Clusters:            c.Clusters,
	}
}

// Secrets lists every secret value (the token, the cloud's passwords, each
// cluster's password and key passphrase), so that the process log, the log chat
// forwarder and the bot's own log chat lines can scrub them from anything that
// slipped through (an error message from a library, say). It is the one list.
func (c *Config) Secrets() []string {
	var s []string
	add := func(v plugins.Secret) {
		if len(v) >= 4 {
			s = append(s, string(v))
		}
	}
	add(c.Bot.Token)
	add(c.Storage.Password)
	add(c.Storage.SharePassword)
	for _, cl := range c.Clusters {
		add(cl.Connection.Password)
		if env := cl.Connection.KeyPassEnv; env != "" {
			add(plugins.Secret(os.Getenv(env)))
		}
	}
	return s
}

// ClearTextWarnings names each configured URL that would carry a secret in
// clear: http:// to a host other than this machine's loopback. bot.api_url
// carries the bot token in every request's path, storage.url the Nextcloud
// password in every request's header. run and check print these at start.
func (c *Config) ClearTextWarnings() []string {
	var out []string
	for _, u := range []struct{ key, url, what string }{
		{"bot.api_url", c.Bot.APIURL, "the bot token"},
		{"storage.url", c.Storage.URL, "the Nextcloud password"},
	} {
		if p, err := url.Parse(u.url); err == nil && strings.EqualFold(p.Scheme, "http") && !isLoopback(p.Hostname()) {
			out = append(out, fmt.Sprintf("%s: %s travels in clear to http://%s; use https:// (plain http is safe only to this machine's loopback)", u.key, u.what, p.Host))
		}
	}
	return out
}

// isLoopback reports whether host is "localhost" or a loopback address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// located prefixes each problem with file:line where the key can be found.
func located(path string, lines map[string]int, err error) error {
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = flatten(j.Unwrap())
	} else {
		list = []error{err}
	}
	var out []error
	for _, e := range list {
		msg := e.Error()
		key := keyPrefix.FindString(msg)
		if n := lookupLine(lines, key); n > 0 {
			out = append(out, fmt.Errorf("%s:%d: %s", path, n, msg))
		} else {
			out = append(out, fmt.Errorf("%s: %s", path, msg))
		}
	}
	return errors.Join(out...)
}

func flatten(errs []error) []error {
	var out []error
	for _, e := range errs {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			out = append(out, flatten(j.Unwrap())...)
		} else if e != nil {
			out = append(out, e)
		}
	}
	return out
}

var (
	trailingIndex = regexp.MustCompile(`\[\d+\]$`)
	keyPrefix     = regexp.MustCompile(`^[A-Za-z0-9_\-]+(\[\d+\])?(\.[A-Za-z0-9_\-]+(\[\d+\])?)*`)
)

// lookupLine finds the line of a key path such as clusters[1].runners[0].allowed_args[2],
// trying shorter paths when the exact one is not a line of its own.
func lookupLine(lines map[string]int, key string) int {
	for key != "" {
		if n, ok := lines[key]; ok {
			return n
		}
		if trailingIndex.MatchString(key) {
			key = trailingIndex.ReplaceAllString(key, "")
			continue
		}
		i := strings.LastIndexByte(key, '.')
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0
}

var (
	headerRE = regexp.MustCompile(`^\s*(\[\[?)\s*([A-Za-z0-9_.\-"' ]+?)\s*\]\]?\s*(#.*)?$`)
	keyRE    = regexp.MustCompile(`^\s*([A-Za-z0-9_\-]+|"[^"]*")\s*=`)
)

// indexKeys maps every key path of a TOML document to its line: both with array
// indices ("clusters[1].connection.host") and without ("clusters.connection.host",
// first occurrence), the form toml.MetaData.Undecoded uses. It understands the
// layout hpcbot.toml uses (tables, arrays of tables, key = value); anything
// fancier simply gets no line number.
func indexKeys(data []byte) map[string]int {
	lines := map[string]int{}
	counts := map[string]int{} // array-of-tables path (no indices) → entries so far
	var cur, curPlain string
	put := func(k string, n int) {
		if _, ok := lines[k]; !ok {
			lines[k] = n
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if m := headerRE.FindStringSubmatch(line); m != nil && !strings.Contains(line, "=") {
			parts := strings.Split(m[2], ".")
			var idx, plain []string
			for i := range parts {
				p := strings.Trim(strings.TrimSpace(parts[i]), `"'`)
				plain = append(plain, p)
				pp := strings.Join(plain, ".")
				if m[1] == "[[" && i == len(parts)-1 {
					counts[pp]++
					idx = append(idx, fmt.Sprintf("%s[%d]", p, counts[pp]-1))
					// a new parent entry restarts its children's numbering
					for k := range counts {
						if strings.HasPrefix(k, pp+".") {
							delete(counts, k)
						}
					}
				} else if c, ok := counts[pp]; ok {
					idx = append(idx, fmt.Sprintf("%s[%d]", p, c-1))
				} else {
					idx = append(idx, p)
				}
			}
			cur, curPlain = strings.Join(idx, "."), strings.Join(plain, ".")
			put(cur, n)
			put(curPlain, n)
			continue
		}
		if m := keyRE.FindStringSubmatch(line); m != nil {
			k := strings.Trim(m[1], `"`)
			put(join(cur, k), n)
			put(join(curPlain, k), n)
		}
	}
	return lines
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}
