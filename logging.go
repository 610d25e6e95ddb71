package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"hpcbot/bot"
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
	return slog.New(newScrubber(h, cfg.Secrets())), closeFn, nil
}

// scrubber is a slog.Handler that replaces secret values in messages and attributes.
type scrubber struct {
	next    slog.Handler
	replace *strings.Replacer
}

func newScrubber(next slog.Handler, secrets []string) slog.Handler {
	if len(secrets) == 0 {
		return next
	}
	var pairs []string
	for _, s := range secrets {
		pairs = append(pairs, s, "[redacted]")
	}
	return &scrubber{next: next, replace: strings.NewReplacer(pairs...)}
}

func (s *scrubber) Enabled(ctx context.Context, l slog.Level) bool { return s.next.Enabled(ctx, l) }

func (s *scrubber) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, s.replace.Replace(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(s.attr(a))
		return true
	})
	return s.next.Handle(ctx, out)
}

func (s *scrubber) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, s.replace.Replace(v.String()))
	case slog.KindGroup:
		var as []any
		for _, g := range v.Group() {
			as = append(as, s.attr(g))
		}
		return slog.Group(a.Key, as...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, s.replace.Replace(err.Error()))
		}
		return slog.String(a.Key, s.replace.Replace(fmt.Sprint(v.Any())))
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func (s *scrubber) WithAttrs(as []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(as))
	for i, a := range as {
		clean[i] = s.attr(a)
	}
	return &scrubber{next: s.next.WithAttrs(clean), replace: s.replace}
}

func (s *scrubber) WithGroup(name string) slog.Handler {
	return &scrubber{next: s.next.WithGroup(name), replace: s.replace}
}
