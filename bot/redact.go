// redact.go: the one list of secrets the bot removes from its logs and the log
// chat, and the log handler that applies it.

package bot

import (
	"context"
	"log/slog"

	"hpcbot/plugins"
)

// truncate shortens s to at most n runes, marking the cut.
func truncate(s string, n int) string {
	rs := []rune(s)
	if len(rs) <= n {
		return s
	}
	return string(rs[:n]) + "…"
}

// redact removes every secret (Options.Secrets and the token) from a text
// meant for a log or the log chat: an error from the HTTP client names the URL,
// and the URL holds the token; a plugin's error may quote a password.
func (b *Bot) redact(s string) string { return b.scrub.Replace(s) }

// newScrubber is the one list of secrets the bot removes: the token and every
// other secret of the configuration, raw and as they read once HTML-escaped in
// a message (a password with "&" or "<" in it).
func newScrubber(token string, secrets []string) *plugins.Scrubber {
	var all []string
	for _, s := range append([]string{token}, secrets...) {
		if s != "" {
			all = append(all, s, Escape(s))
		}
	}
	return plugins.NewScrubber(all...)
}

// newRedactor is the bot's own logger handler: the secrets are removed from
// every message and attribute (plugins.RedactWith), and each record's context is
// marked as the bot's own, so LogHandler does not forward it back to the log chat.
func newRedactor(next slog.Handler, scrub *plugins.Scrubber) slog.Handler {
	return plugins.RedactWith(ownHandler{next}, scrub)
}

// ownHandler marks every record's context as the bot's (see ownContext).
type ownHandler struct{ next slog.Handler }

func (h ownHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h ownHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.next.Handle(ownContext(ctx), r)
}

func (h ownHandler) WithAttrs(as []slog.Attr) slog.Handler { return ownHandler{h.next.WithAttrs(as)} }

func (h ownHandler) WithGroup(name string) slog.Handler { return ownHandler{h.next.WithGroup(name)} }
