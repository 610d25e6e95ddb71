package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
)

var cmdConfig = &subcommand{
	name:    "config",
	args:    "convert FILE",
	summary: "print the hpcbot.toml equivalent of an HPC_bot config.json",
	help: `config convert FILE reads a configuration of the original Python HPC_bot
(config.json) and prints the equivalent hpcbot.toml on standard output:

  hpcbot config convert config.json > hpcbot.toml

Runners keep their rules and get launch = "wrapper" (the original ran programs that
submit themselves); the db section becomes a comment, because hpcbot keeps its state
in one bbolt file; storage.webdav.host (and port) becomes storage.url. Warnings about
what needs a person's attention go to standard error.`,
	run: func(o *options) error {
		if len(o.args) != 2 || o.args[0] != "convert" {
			return usagef("expected: config convert FILE")
		}
		data, err := os.ReadFile(o.args[1])
		if err != nil {
			return err
		}
		out, warnings, err := convertConfig(data)
		if err != nil {
			return fmt.Errorf("%s: %w", o.args[1], err)
		}
		for _, w := range warnings {
			fmt.Fprintf(o.stderr, "warning: %s\n", w)
		}
		_, err = io.WriteString(o.stdout, out)
		return err
	},
}

// legacyConfig is the original bot's config.json.
type legacyConfig struct {
	DownloadPath        *string         `json:"download_path"`
	Storage             *legacyStorage  `json:"storage"`
	FetchTime           json.RawMessage `json:"fetch_time"`
	MaxFileSize         *int64          `json:"max_file_size"`
	ExtensionsWhitelist []string        `json:"extensions_whitelist"`
	FilesWhitelist      []string        `json:"files_whitelist"`
	LogLevel            *string         `json:"log_level"`
	LogFile             *string         `json:"log_file"`
	DB                  json.RawMessage `json:"db"`
	Bot                 struct {
		Token        *string      `json:"token"`
		AdminName    *string      `json:"admin_name"`
		LogChatID    *json.Number `json:"log_chat_id"`
		LogChatLevel *string      `json:"log_chat_level"`
		BotName      *string      `json:"bot_name"`
		Admins       []int64      `json:"admins"`
	} `json:"bot"`
	Clusters []legacyCluster `json:"clusters"`
}

type legacyStorage struct {
	WebDAV *struct {
		Host     string  `json:"host"`
		Port     int     `json:"port"`
		User     string  `json:"user"`
		Password *string `json:"password"`
	} `json:"webdav"`
	BasePath string `json:"base_path"`
}

type legacyCluster struct {
	Label      string `json:"label"`
	UploadPath string `json:"upload_path"`
	Connection struct {
		Host     string  `json:"host"`
		Port     int     `json:"port"`
		User     string  `json:"user"`
		Password *string `json:"password"`
		KeyPath  *string `json:"key_path"`
	} `json:"connection"`
	Runners []struct {
		Program      string   `json:"program"`
		AllowedArgs  []string `json:"allowed_args"`
		DefaultArgs  []string `json:"default_args"`
		Associations []string `json:"associations"`
		Description  *string  `json:"description"`
	} `json:"runners"`
}

// convertConfig turns an HPC_bot config.json into hpcbot.toml text.
func convertConfig(data []byte) (string, []string, error) {
	var lc legacyConfig
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&lc); err != nil {
		return "", nil, fmt.Errorf("not an HPC_bot config.json: %w", err)
	}
	var b strings.Builder
	var warn []string
	kv := func(key string, v string) { fmt.Fprintf(&b, "%s = %s\n", key, v) }

	b.WriteString("# hpcbot.toml converted from an HPC_bot config.json by `hpcbot config convert`.\n")
	b.WriteString("# Every key is explained in hpcbot.toml.example.\n\n")
	if lc.DownloadPath != nil {
		kv("download_path", tomlString(*lc.DownloadPath))
	}
	if len(lc.FetchTime) > 0 && string(lc.FetchTime) != "null" {
		var one float64
		var two []float64
		switch {
		case json.Unmarshal(lc.FetchTime, &one) == nil:
			kv("fetch_time", num(one))
		case json.Unmarshal(lc.FetchTime, &two) == nil && len(two) == 2:
			kv("fetch_time", "["+num(two[0])+", "+num(two[1])+"]")
		default:
			return "", nil, fmt.Errorf("fetch_time: %s is neither a number nor [min, max]", lc.FetchTime)
		}
	}
	if lc.MaxFileSize != nil {
		kv("max_file_size", strconv.FormatInt(*lc.MaxFileSize, 10))
	}
	if lc.ExtensionsWhitelist != nil {
		kv("extensions_whitelist", tomlList(lc.ExtensionsWhitelist))
	}
	if lc.FilesWhitelist != nil {
		kv("files_whitelist", tomlList(lc.FilesWhitelist))
	}
	if lc.LogLevel != nil {
		kv("log_level", tomlString(strings.ToLower(*lc.LogLevel)))
	}
	if lc.LogFile != nil && *lc.LogFile != "" {
		kv("log_file", tomlString(*lc.LogFile))
	}
	if len(lc.DB) > 0 && string(lc.DB) != "null" {
		b.WriteString("\n# The original's db section (sqlite/mysql/postgresql) is gone: hpcbot keeps all its\n")
		b.WriteString("# state in one bbolt file, below. Users and calculations are not carried over.\n")
	}
	b.WriteString("\n[store]\npath = \"hpcbot.db\"\n")

	b.WriteString("\n[bot]\n")
	if lc.Bot.Token != nil && *lc.Bot.Token != "" {
		kv("token", tomlString(*lc.Bot.Token))
	} else {
		b.WriteString("# token: the original had none; set it here or in HPCBOT_BOT_TOKEN.\n")
		warn = append(warn, "bot.token is empty in the original: set bot.token or the environment variable HPCBOT_BOT_TOKEN")
	}
	if len(lc.Bot.Admins) > 0 {
		ids := make([]string, len(lc.Bot.Admins))
		for i, id := range lc.Bot.Admins {
			ids[i] = strconv.FormatInt(id, 10)
		}
		kv("admins", "["+strings.Join(ids, ", ")+"]")
	} else {
		b.WriteString("# admins: numeric Telegram ids of the admins; nobody else has admin rights. The bot\n# tells whoever writes to it their id. Add yours: admins = [123456789]\n")
		msg := "bot.admins is empty: nobody has admin rights until you add the admins' numeric Telegram ids to bot.admins (the bot tells whoever writes to it their id)"
		if lc.Bot.AdminName != nil && *lc.Bot.AdminName != "" {
			msg += "; bot.admin_name " + *lc.Bot.AdminName + " is kept only as the contact shown to users and grants no rights"
		}
		warn = append(warn, msg)
	}
	if lc.Bot.AdminName != nil && *lc.Bot.AdminName != "" {
		b.WriteString("# admin_name: the contact shown to users (\"write to ...\"); it grants no rights.\n")
		kv("admin_name", tomlString(*lc.Bot.AdminName))
	}
	if lc.Bot.LogChatID != nil {
		kv("log_chat_id", lc.Bot.LogChatID.String())
	}
	if lc.Bot.LogChatLevel != nil {
		kv("log_chat_level", tomlString(strings.ToLower(*lc.Bot.LogChatLevel)))
	}
	if lc.Bot.BotName != nil && *lc.Bot.BotName != "" {
		fmt.Fprintf(&b, "# bot_name %s is not needed: hpcbot asks Telegram (getMe).\n", tomlString(*lc.Bot.BotName))
	}

	if s := lc.Storage; s != nil && s.WebDAV != nil && s.WebDAV.Host != "" {
		u, err := storageURL(s.WebDAV.Host, s.WebDAV.Port)
		if err != nil {
			return "", nil, fmt.Errorf("storage.webdav.host: %w", err)
		}
		b.WriteString("\n[storage]\n")
		kv("url", tomlString(u))
		kv("user", tomlString(s.WebDAV.User))
		if s.WebDAV.Password != nil && *s.WebDAV.Password != "" {
			kv("password", tomlString(*s.WebDAV.Password))
		} else {
			warn = append(warn, "storage.webdav.password is empty: set storage.password or HPCBOT_STORAGE_PASSWORD")
		}
		if s.BasePath != "" {
			kv("base_path", tomlString(s.BasePath))
		}
	}

	for i, c := range lc.Clusters {
		b.WriteString("\n[[clusters]]\n")
		kv("label", tomlString(c.Label))
		b.WriteString("# The original ran wrapper programs over SSH that submit themselves to the\n# cluster's scheduler; slurm is assumed: change it to pbs or ssh if needed.\n")
		kv("scheduler", tomlString("slurm"))
		kv("upload_path", tomlString(c.UploadPath))
		b.WriteString("\n[clusters.connection]\n")
		kv("host", tomlString(c.Connection.Host))
		if c.Connection.Port != 0 {
			kv("port", strconv.Itoa(c.Connection.Port))
		}
		kv("user", tomlString(c.Connection.User))
		if c.Connection.KeyPath != nil && *c.Connection.KeyPath != "" {
			kv("key_path", tomlString(*c.Connection.KeyPath))
		}
		if c.Connection.Password != nil && *c.Connection.Password != "" {
			kv("password", tomlString(*c.Connection.Password))
		}
		b.WriteString("# The host key is checked against ~/.ssh/known_hosts of the user running hpcbot;\n# set known_hosts = \"path\" or host_key = \"ssh-ed25519 AAAA...\" to pin it.\n")
		if len(c.Runners) == 0 {
			warn = append(warn, fmt.Sprintf("clusters[%d] (%s) has no runners: add [[clusters.runners]]", i, c.Label))
		}
		for _, r := range c.Runners {
			b.WriteString("\n[[clusters.runners]]\n")
			kv("program", tomlString(r.Program))
			kv("launch", tomlString("wrapper"))
			if r.AllowedArgs != nil {
				kv("allowed_args", tomlList(r.AllowedArgs))
			}
			if r.DefaultArgs != nil {
				kv("default_args", tomlList(r.DefaultArgs))
			}
			if r.Associations != nil {
				kv("associations", tomlList(r.Associations))
			}
			if r.Description != nil && *r.Description != "" {
				kv("description", tomlString(*r.Description))
			}
		}
	}
	return b.String(), warn, nil
}

// storageURL joins the original's webdav host and port into one URL.
func storageURL(host string, port int) (string, error) {
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	u, err := url.Parse(host)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("%q is not a host or URL", host)
	}
	def := map[string]int{"http": 80, "https": 443}[u.Scheme]
	if port != 0 && port != def && u.Port() == "" {
		u.Host = u.Hostname() + ":" + strconv.Itoa(port)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func tomlList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = tomlString(x)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
