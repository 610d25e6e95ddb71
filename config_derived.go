// What hpcbot derives from a loaded Config: the scheduler package's Config,
// the one list of secrets to scrub, and warnings of secrets sent in clear.

package main

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"hpcbot/plugins"
	"hpcbot/scheduler"
)

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
