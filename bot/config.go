package bot

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"hpcbot/plugins"
)

// Config is the [bot] section of hpcbot.toml.
type Config struct {
	Token     plugins.Secret `toml:"token"`
	TokenFile string         `toml:"token_file"`
	// APIURL is the Bot API server; a self-hosted telegram-bot-api lifts the file limits.
	APIURL string `toml:"api_url"`
	// Admins are the Telegram user ids with admin rights: nobody else has them.
	Admins []int64 `toml:"admins"`
	// AdminName is the contact shown to users ("write to @..."); it grants nothing.
	AdminName string `toml:"admin_name"`
	// Groups are group chat ids where /access registers users, besides the
	// groups an admin added the bot to (/groups lists both).
	Groups    []int64 `toml:"groups"`
	LogChatID int64   `toml:"log_chat_id"`
	// LogChatLevel filters what reaches the log chat: debug, info, warn, error.
	LogChatLevel string `toml:"log_chat_level"`
	// SubmitsPerMinute caps how many files one user may submit in a minute.
	SubmitsPerMinute int `toml:"submits_per_minute"`
}

// QuotaConfig is the [quota] section: calculations per user per window.
type QuotaConfig struct {
	NewUser  int              `toml:"new_user"`
	Approved int              `toml:"approved"`
	Window   plugins.Duration `toml:"window"`
}

// DefaultAPIURL is Telegram's public Bot API server.
const DefaultAPIURL = "https://api.telegram.org"

// SetDefaults fills in what the operator left out.
func (c *Config) SetDefaults() {
	if c.APIURL == "" {
		c.APIURL = DefaultAPIURL
	}
	if c.LogChatLevel == "" {
		c.LogChatLevel = "info"
	}
	if c.SubmitsPerMinute == 0 {
		c.SubmitsPerMinute = 10
	}
}

// Validate reports every problem, each naming its key.
func (c *Config) Validate() error { return errors.Join(c.ValidateToken(), c.ValidateWithoutToken()) }

// ValidateToken reports a missing or malformed token: only what talks to
// Telegram needs one.
func (c *Config) ValidateToken() error {
	if c.Token == "" {
		return errors.New("bot.token: missing; set it, or bot.token_file, or the environment variable HPCBOT_BOT_TOKEN (ask @BotFather for a token)")
	}
	if !strings.Contains(string(c.Token), ":") {
		return errors.New("bot.token: does not look like a Bot API token (digits:letters from @BotFather)")
	}
	return nil
}

// ValidateWithoutToken reports every problem but the token's.
func (c *Config) ValidateWithoutToken() error {
	var errs []error
	if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("bot.api_url: %q is not an http(s) URL; leave it out for %s", c.APIURL, DefaultAPIURL))
	}
	for i, id := range c.Admins {
		if id <= 0 {
			errs = append(errs, fmt.Errorf("bot.admins[%d]: %d is not a Telegram user id (a positive number; the bot shows yours in /status)", i, id))
		}
	}
	for i, id := range c.Groups {
		if id >= 0 {
			errs = append(errs, fmt.Errorf("bot.groups[%d]: %d is not a group id (group ids are negative, such as -1001234567890; the log chat names a group with its id)", i, id))
		}
	}
	if c.AdminName != "" && !strings.HasPrefix(c.AdminName, "@") {
		errs = append(errs, fmt.Errorf("bot.admin_name: %q must start with @", c.AdminName))
	}
	if _, err := ParseLevel(c.LogChatLevel); err != nil {
		errs = append(errs, fmt.Errorf("bot.log_chat_level: %w", err))
	}
	if c.SubmitsPerMinute < 0 {
		errs = append(errs, errors.New("bot.submits_per_minute: must not be negative"))
	}
	return errors.Join(errs...)
}

// SetDefaults fills in the original bot's quotas: 5 calculations a month for a new
// user, 25 once approved.
func (q *QuotaConfig) SetDefaults() {
	if q.NewUser == 0 {
		q.NewUser = 5
	}
	if q.Approved == 0 {
		q.Approved = 25
	}
	if q.Window == 0 {
		q.Window = plugins.Duration(720 * time.Hour)
	}
}

// Validate reports every problem, each naming its key.
func (q *QuotaConfig) Validate() error {
	var errs []error
	if q.NewUser < 0 {
		errs = append(errs, errors.New("quota.new_user: must not be negative"))
	}
	if q.Approved < 0 {
		errs = append(errs, errors.New("quota.approved: must not be negative"))
	}
	if q.Window <= 0 {
		errs = append(errs, errors.New(`quota.window: must be a positive duration such as "720h"`))
	}
	return errors.Join(errs...)
}

// ParseLevel reads a log level name as the original bot's config wrote it
// (DEBUG, INFO, WARNING, ERROR), case-insensitively.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error", "critical":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%q is not a log level (debug, info, warn, error)", s)
}
