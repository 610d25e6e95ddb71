package plugins

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
)

// Scrubber replaces secret values in a text with "[redacted]". It is the one
// mechanism behind every place that keeps secrets out of logs and chats: the
// Redact log handler and the bot's own lines to the log chat. A nil *Scrubber
// (no secrets) returns its input unchanged.
type Scrubber struct{ r *strings.Replacer }

// NewScrubber returns a scrubber for secrets; empty ones are ignored, and
// with none it returns nil. Longer secrets are matched first, so a secret that
// contains another is removed whole.
func NewScrubber(secrets ...string) *Scrubber {
	var list []string
	for _, s := range secrets {
		if s != "" && !slices.Contains(list, s) {
			list = append(list, s)
		}
	}
	if len(list) == 0 {
		return nil
	}
	slices.SortStableFunc(list, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	pairs := make([]string, 0, 2*len(list))
	for _, s := range list {
		pairs = append(pairs, s, "[redacted]")
	}
	return &Scrubber{strings.NewReplacer(pairs...)}
}

// Replace returns s with every secret replaced.
func (sc *Scrubber) Replace(s string) string {
	if sc == nil {
		return s
	}
	return sc.r.Replace(s)
}

// Redact returns a slog.Handler that replaces every occurrence of the given
// secrets in a record's message and attributes (errors and values included) with
// "[redacted]" before next sees it. Secret values are the last line of defence:
// a token inside a library's error message ("Post https://.../bot123:ABC/getMe")
// never reaches a log. Empty secrets are ignored; with none, next is returned.
func Redact(next slog.Handler, secrets ...string) slog.Handler {
	return RedactWith(next, NewScrubber(secrets...))
}

// RedactWith is Redact with a Scrubber already made; with nil it returns next.
func RedactWith(next slog.Handler, sc *Scrubber) slog.Handler {
	if sc == nil {
		return next
	}
	return &redactor{next: next, replace: sc}
}

type redactor struct {
	next    slog.Handler
	replace *Scrubber
}

func (h *redactor) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *redactor) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.replace.Replace(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *redactor) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.replace.Replace(v.String()))
	case slog.KindGroup:
		var as []any
		for _, g := range v.Group() {
			as = append(as, h.attr(g))
		}
		return slog.Group(a.Key, as...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, h.replace.Replace(err.Error()))
		}
		return slog.String(a.Key, h.replace.Replace(fmt.Sprint(v.Any())))
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func (h *redactor) WithAttrs(as []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(as))
	for i, a := range as {
		clean[i] = h.attr(a)
	}
	return &redactor{next: h.next.WithAttrs(clean), replace: h.replace}
}

func (h *redactor) WithGroup(name string) slog.Handler {
	return &redactor{next: h.next.WithGroup(name), replace: h.replace}
}
