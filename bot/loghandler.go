package bot

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// The log chat hears the bot's own events from the bot itself, translated
// (toLogChat). Everything else an operator must know of (a plugin process that
// crashed, a cluster refusing our login, the scheduler giving up, a panic
// recovered) is a log record of another component: LogHandler forwards those.

// Limits of what LogHandler forwards.
const (
	// logChatPerMinute records a minute at most; the rest are counted and one
	// line says how many were left out.
	logChatPerMinute = 10
	// logChatRepeat: a record identical to one forwarded this recently is dropped.
	logChatRepeat = 5 * time.Minute
	// logChatPending records wait for Run at most (the rest are counted).
	logChatPending = 2 * logChatPerMinute
	// logChatValueLen and logChatTextLen cap an attribute value and a whole
	// record, in characters: the process log has everything.
	logChatValueLen = 300
	logChatTextLen  = 3000
	// logChatSeen bounds the records remembered for logChatRepeat.
	logChatSeen = 1000
)

// ownRecordKey marks, in a record's context, a record the bot logged itself
// (its sender and poller included): such records are never forwarded, so a
// failure to send to the log chat cannot feed itself.
type ownRecordKey struct{}

func isOwnRecord(ctx context.Context) bool {
	if ctx == nil {
		return false
	}
	v, _ := ctx.Value(ownRecordKey{}).(bool)
	return v
}

// ownContext marks ctx as carrying a record the bot logged itself.
func ownContext(ctx context.Context) context.Context {
	if ctx == nil {
		ctx = context.Background()
	}
	return context.WithValue(ctx, ownRecordKey{}, true)
}

// quietComponents are the values of a "component" attribute whose records are
// never forwarded: the bot's own parts (for a logger built for them without
// going through New).
var quietComponents = map[string]bool{"bot": true, "sender": true, "poller": true}

// LogHandler returns a slog.Handler that forwards records at or above
// bot.log_chat_level, but never below Warn, to the log chat. Put it beside the
// process log's handler, behind the secret scrubber, before the loggers of the
// other components are made (New needs only the store):
//
//	log = slog.New(slog.NewMultiHandler(log.Handler(), plugins.Redact(b.LogHandler(), cfg.Secrets()...)))
//
// It never blocks and never logs: a record becomes a message queued in the
// sender (Post); before Run it waits in memory (at most logChatPending). It
// forwards at most logChatPerMinute records a minute (then one line says how
// many more there were), drops a record identical to one forwarded in the last
// logChatRepeat (durations, times and stacks aside), removes the bot's token,
// escapes the text for HTML, and cuts long values. Records the bot logs itself,
// and those of a "component" bot, sender or poller, are left out: they are
// about the bot, whose own events reach the log chat translated, and about the
// log chat itself, which must not feed on its own failures.
func (b *Bot) LogHandler() slog.Handler { return &logHandler{f: b.fwd} }

// logForwarder is the state LogHandler and its derived handlers share.
type logForwarder struct {
	min    slog.Level
	chat   func() int64
	lang   string
	redact func(string) string
	now    func() time.Time
	after  func(time.Duration, func()) // time.AfterFunc

	mu          sync.Mutex
	post        func(Outgoing) error // nil until Run
	pending     []string             // texts waiting for post
	windowStart time.Time
	inWindow    int  // records forwarded in the current minute
	suppressed  int  // records left out in it
	armed       bool // a timer will report the suppressed ones
	seen        map[string]time.Time
	posted      int // messages handed to post (tests read it)
}

func newLogForwarder(min slog.Level, chat func() int64, lang string, redact func(string) string) *logForwarder {
	return &logForwarder{
		min: max(min, slog.LevelWarn), chat: chat, lang: lang, redact: redact, now: time.Now,
		after: func(d time.Duration, f func()) { time.AfterFunc(d, f) },
		seen:  map[string]time.Time{},
	}
}

// attach starts forwarding through post (nil: queue again), first the
// records that waited.
func (f *logForwarder) attach(post func(Outgoing) error) {
	f.mu.Lock()
	f.post = post
	var texts []string
	if post != nil {
		texts, f.pending = f.pending, nil
	}
	f.mu.Unlock()
	f.send(post, texts)
}

// send posts texts to the log chat; a failure is not logged (that would be a
// record about the log chat, for the log chat): the sender logs its own.
func (f *logForwarder) send(post func(Outgoing) error, texts []string) {
	chat := f.chat()
	if post == nil || chat == 0 {
		return
	}
	for _, t := range texts {
		if post(Outgoing{ChatID: chat, Text: t, DisablePreview: true}) == nil {
			f.mu.Lock()
			f.posted++
			f.mu.Unlock()
		}
	}
}

// forward takes one formatted record: repeat, rate limit, queue or post.
func (f *logForwarder) forward(key, text string) {
	f.mu.Lock()
	now := f.now()
	if at, ok := f.seen[key]; ok && now.Sub(at) < logChatRepeat {
		f.mu.Unlock()
		return
	}
	f.forgetLocked(now)
	f.seen[key] = now
	texts := f.rollLocked(now)
	switch {
	case f.inWindow >= logChatPerMinute, f.post == nil && len(f.pending) >= logChatPending:
		f.suppressed++
		if !f.armed {
			f.armed = true
			f.after(f.windowStart.Add(time.Minute).Sub(now), f.tick)
		}
	default:
		f.inWindow++
		texts = append(texts, text)
	}
	post := f.queueLocked(texts)
	f.mu.Unlock()
	f.send(post, texts)
}

// tick ends the minute when records were left out in it: one line says how many.
func (f *logForwarder) tick() {
	f.mu.Lock()
	f.armed = false
	texts := f.rollLocked(f.now())
	post := f.queueLocked(texts)
	f.mu.Unlock()
	f.send(post, texts)
}

// rollLocked starts a new minute when the current one is over, and returns
// the line on the records it left out, if any.
func (f *logForwarder) rollLocked(now time.Time) []string {
	if now.Sub(f.windowStart) < time.Minute {
		return nil
	}
	n := f.suppressed
	f.windowStart, f.inWindow, f.suppressed = now, 0, 0
	if n == 0 {
		return nil
	}
	return []string{tr(f.lang, "log.suppressed", P{"count": n})}
}

// queueLocked keeps texts for Run when there is no sender yet (the records
// are bounded by forward; room is left for the lines counting the rest), and
// returns the post function otherwise.
func (f *logForwarder) queueLocked(texts []string) func(Outgoing) error {
	if f.post == nil {
		f.pending = append(f.pending, texts[:max(0, min(len(texts), logChatPending+2-len(f.pending)))]...)
	}
	return f.post
}

// forgetLocked drops the records older than logChatRepeat, and all of them
// when too many remain.
func (f *logForwarder) forgetLocked(now time.Time) {
	if len(f.seen) < logChatSeen {
		return
	}
	for k, at := range f.seen {
		if now.Sub(at) >= logChatRepeat {
			delete(f.seen, k)
		}
	}
	if len(f.seen) >= logChatSeen {
		clear(f.seen)
	}
}

// logHandler is LogHandler's slog.Handler: attrs holds what WithAttrs added,
// keys qualified by the groups open then; group is the open groups' prefix.
type logHandler struct {
	f     *logForwarder
	attrs []slog.Attr
	group string
}

var _ slog.Handler = (*logHandler)(nil)

func (h *logHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.f.min && h.f.chat() != 0 && !isOwnRecord(ctx)
}

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := &logHandler{f: h.f, group: h.group, attrs: h.attrs[:len(h.attrs):len(h.attrs)]}
	for _, a := range as {
		out.attrs = flattenAttr(out.attrs, h.group, a)
	}
	return out
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &logHandler{f: h.f, attrs: h.attrs, group: h.group + name + "."}
}

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	if !h.Enabled(ctx, r.Level) {
		return nil
	}
	attrs := h.attrs[:len(h.attrs):len(h.attrs)]
	r.Attrs(func(a slog.Attr) bool {
		attrs = flattenAttr(attrs, h.group, a)
		return true
	})
	for _, a := range attrs {
		if a.Key == "component" && quietComponents[a.Value.String()] {
			return nil
		}
	}
	key, text := h.f.format(r.Level, r.Message, attrs)
	h.f.forward(key, text)
	return nil
}

// flattenAttr appends a, resolved, with its key qualified by prefix; a group's
// members become "group.key".
func flattenAttr(out []slog.Attr, prefix string, a slog.Attr) []slog.Attr {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range v.Group() {
			out = flattenAttr(out, p, g)
		}
		return out
	}
	if a.Key == "" {
		return out
	}
	return append(out, slog.Attr{Key: prefix + a.Key, Value: v})
}

// format renders a record for the log chat (HTML: the level and message, then
// one "key: value" line per attribute) and the key that tells repeats apart: level, message and attributes, without durations, times and
// stacks, which differ between otherwise identical records.
func (f *logForwarder) format(level slog.Level, msg string, attrs []slog.Attr) (key, text string) {
	var k, t strings.Builder
	fmt.Fprintf(&k, "%d\x00%s", level, msg)
	label := tr(f.lang, "log.level_warn", nil)
	if level >= slog.LevelError {
		label = tr(f.lang, "log.level_error", nil)
	}
	fmt.Fprintf(&t, "<b>%s</b> %s", label, Escape(f.redact(msg)))
	for _, a := range attrs {
		val := attrString(a.Value)
		fmt.Fprintf(&t, "\n%s: %s", Escape(f.redact(a.Key)), Escape(cut(f.redact(val), logChatValueLen)))
		if kind := a.Value.Kind(); kind != slog.KindDuration && kind != slog.KindTime && a.Key != "stack" {
			fmt.Fprintf(&k, "\x00%s=%s", a.Key, val)
		}
	}
	return k.String(), cutHTML(t.String(), logChatTextLen)
}

// attrString is a value as text.
func attrString(v slog.Value) string {
	if v.Kind() == slog.KindAny {
		if err, ok := v.Any().(error); ok {
			return err.Error()
		}
		return fmt.Sprint(v.Any())
	}
	return v.String()
}

// cut shortens s to n characters, marking the cut.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// cutHTML shortens the rendered record to about n characters without
// cutting a tag or an entity, or leaving the bold label open.
func cutHTML(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	out := string([]rune(s)[:n])
	if i := strings.LastIndexByte(out, '<'); i > strings.LastIndexByte(out, '>') {
		out = out[:i]
	}
	if i := strings.LastIndexByte(out, '&'); i > strings.LastIndexByte(out, ';') {
		out = out[:i]
	}
	out += "…"
	if strings.Count(out, "<b>") > strings.Count(out, "</b>") {
		out += "</b>"
	}
	return out
}
