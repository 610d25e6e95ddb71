package plugins

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// Redact returns a slog.Handler that replaces every occurrence of the given
// secrets in a record's message and attributes (errors and values included) with
// "[redacted]" before next sees it. Secret values are the last line of defence:
// a token inside a library's error message ("Post https://.../bot123:ABC/getMe")
// never reaches a log. Empty secrets are ignored; with none, next is returned.
func Redact(next slog.Handler, secrets ...string) slog.Handler {
	var pairs []string
	for _, s := range secrets {
		if s != "" {
			pairs = append(pairs, s, "[redacted]")
		}
	}
	if len(pairs) == 0 {
		return next
	}
	return &redactor{next: next, replace: strings.NewReplacer(pairs...)}
}

type redactor struct {
	next    slog.Handler
	replace *strings.Replacer
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
