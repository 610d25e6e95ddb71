package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"hpcbot/bot"
	"hpcbot/plugins"
)

// newLogger builds the process logger from log_level and log_file. Every record
// passes through a scrubber that replaces the configured secrets, so a token that
// slips into a library's error message still never reaches the log.
func newLogger(cfg *Config, stderr io.Writer) (*slog.Logger, func() error, error) {
	level, err := bot.ParseLevel(cfg.LogLevel)
	if err != nil {
		return nil, nil, err
	}
	w, closeFn := stderr, func() error { return nil }
	if cfg.LogFile != "" {
		f, err := os.OpenFile(cfg.LogFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
		if err != nil {
			return nil, nil, fmt.Errorf("open log_file: %w", err)
		}
		w, closeFn = f, f.Close
	}
	h := slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})
	return slog.New(plugins.Redact(h, cfg.Secrets()...)), closeFn, nil
}
