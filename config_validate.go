// Validating the whole configuration: the top-level keys, every section's own
// checks, and the clusters (unique labels, schedulers known, runner rules).

package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"

	"hpcbot/bot"
	"hpcbot/plugins"
	"hpcbot/runners/command"
	"hpcbot/runners/qcrun"
)

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
