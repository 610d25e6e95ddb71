// request.go: one update being handled (the request), the answers and refusals
// it gets, and wrap, which turns a handler into a telebot handler.

package bot

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"unicode"

	tele "gopkg.in/telebot.v3"

	"hpcbot/store"
)

// request is one update being handled: who sent it, where, in which language,
// and what the store knows of them.
type request struct {
	ctx    context.Context
	b      *Bot
	c      tele.Context
	what   string // the command or kind of update, for logs
	update int64
	msg    *tele.Message  // nil for my_chat_member and callback queries
	cb     *tele.Callback // a callback query (cb.Message: the message with the button)
	from   *tele.User
	chat   *tele.Chat
	lang   string
	admin  bool
	log    *slog.Logger

	replies  int  // replies queued so far (send's outbox keys)
	answered bool // the callback query was answered (answerCallback)

	known bool // registered
	user  store.User
	acc   store.TelegramAccount
}

// private reports whether the update came from a private chat.
func (r *request) private() bool { return r.chat != nil && r.chat.Type == tele.ChatPrivate }

// payload is the text after the command, all of its lines (telebot's
// Message.Payload keeps only the first line).
func (r *request) payload() string {
	if r.msg == nil {
		return ""
	}
	return commandArgs(r.msg.Text)
}

// commandArgs is what follows the first word of a command message.
func commandArgs(text string) string {
	text = strings.TrimSpace(text)
	i := strings.IndexFunc(text, unicode.IsSpace)
	if i < 0 {
		return ""
	}
	return strings.TrimSpace(text[i:])
}

// reply sends catalog message key to the chat of the update.
func (r *request) reply(key string, p P) {
	r.send(tr(r.lang, key, p))
}

// send queues an HTML text for the chat of the update and returns at once:
// a handler never waits for Telegram's pace (1 message a second to a chat),
// so a chat that is sent much to holds up neither its own next update nor
// polling. The text goes to the store's outbox before the handler returns
// (and so before its update is marked handled), under a key made of the update
// id and the reply's number: a reply not yet sent when the bot stops or is
// killed is sent after the restart, and handling the update again queues
// nothing twice. The sender keeps a chat's messages in the order queued and
// logs a failure (the user cannot be told about it anyway).
func (r *request) send(text string) {
	if r.chat == nil {
		return
	}
	if r.update == 0 { // not from an update: nothing to key it by
		r.post(Outgoing{Text: text})
		return
	}
	r.replies++
	key := fmt.Sprintf("update/%d/reply/%03d", r.update, r.replies)
	if err := r.b.queue(key, store.OutMsg{ChatID: r.chat.ID, Kind: "reply", Params: map[string]string{paramText: text}}); err != nil {
		r.log.Error("reply not queued", "chat", r.chat.ID, "err", err)
	}
}

// post queues o for the chat of the update in memory (a chart, say): like
// send, but lost if the bot stops before it is sent.
func (r *request) post(o Outgoing) {
	if r.chat == nil {
		return
	}
	o.ChatID = r.chat.ID
	if err := r.b.out.Post(o); err != nil {
		r.log.Warn("reply not queued", "chat", r.chat.ID, "err", err)
	}
}

// mayRefuse tells whether the sender may be told now why they are refused,
// and if so counts it: at most once per refuseEvery, so that a stranger (or a
// blocked user) who floods the bot is answered once, not at every message.
func (b *Bot) mayRefuse(r *request) bool {
	if r.from == nil {
		return true
	}
	if !b.refused.allow(r.from.ID, b.now()) {
		r.log.Debug("refusal not repeated within its interval")
		return false
	}
	return true
}

// refuse replies catalog message key when mayRefuse allows it, and says
// whether it did.
func (r *request) refuse(key string, p P) bool {
	if !r.b.mayRefuse(r) {
		return false
	}
	r.reply(key, p)
	return true
}

// refused replies catalog message key and tells the log chat (logRefusal):
// what is what the sender tried (their file and caption, or their command).
func (r *request) refused(key string, p P, what string) {
	r.reply(key, p)
	r.logRefusal(what, tr(r.b.lang, key, p))
}

// refusalReasonLen caps the reason quoted in the log chat, in characters.
const refusalReasonLen = 600

// logRefusal tells the log chat who was refused, what they tried (escaped
// here) and why (reason: the answer they got, HTML, in the log chat's
// language), once per refuseEvery per sender; the next line counts those
// left out meanwhile, so a flood cannot fill the log chat.
func (r *request) logRefusal(what, reason string) {
	b := r.b
	var id int64
	if r.from != nil {
		id = r.from.ID
	}
	ok, skipped := b.refusedLog.take(id, b.now())
	if !ok {
		return
	}
	if what == "" && r.msg != nil {
		what = truncate(r.msg.Text, 200)
	}
	if pieces := splitMessage(reason, refusalReasonLen, true); len(pieces) > 1 {
		reason = pieces[0] + "…"
	}
	more := ""
	if skipped > 0 {
		more = " " + tr(b.lang, "log.refused_more", P{"refusals": plural(b.lang, int64(skipped), "more refusal", "more refusals", "отказ", "отказа", "отказов")})
	}
	b.toLogChat(slog.LevelWarn, r.logKey("refused"), "log.refused", P{"who": r.who(), "what": what, "reason": HTML(reason), "more": HTML(more)})
}

// who names the sender for the log chat: "Ada Lovelace (@ada, 42)".
func (r *request) who() string { return describeUser(r.from) }

func describeUser(u *tele.User) string {
	if u == nil {
		return "?"
	}
	name := displayName(u)
	if name == "" {
		name = "?"
	}
	if u.Username != "" {
		return fmt.Sprintf("%s (@%s, %d)", name, u.Username, u.ID)
	}
	return fmt.Sprintf("%s (%d)", name, u.ID)
}

func describeChat(c *tele.Chat) string {
	if c == nil {
		return "?"
	}
	if c.Title != "" {
		return fmt.Sprintf("%s (%d)", c.Title, c.ID)
	}
	return strconv.FormatInt(c.ID, 10)
}

// wrap turns a handler into a telebot handler: it builds the request, looks
// the sender up, recovers from a panic (logged with its stack; the user gets a
// generic error and the log chat hears of it) and does the same for an
// error the handler returns. A callback query is answered exactly once, at
// the latest when the handler returns (or panics).
func (b *Bot) wrap(what string, h func(*request) error) tele.HandlerFunc {
	return func(c tele.Context) error {
		r := b.newRequest(c, what)
		defer r.answerCallback("", false) // runs last: after the recovery below
		defer func() {
			if p := recover(); p != nil {
				r.log.Error("handler panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				r.failed(fmt.Errorf("panic: %v", p))
			}
		}()
		if b.ignored(r) {
			return nil
		}
		if err := b.identify(r); err != nil {
			r.log.Error("look up sender", "err", err)
			r.failed(err)
			return nil
		}
		if err := h(r); err != nil {
			r.log.Error("handler failed", "err", err)
			r.failed(err)
		}
		return nil
	}
}

// failed tells the user that something went wrong (for a button they
// pressed, in the callback query's answer) and the log chat what.
func (r *request) failed(err error) {
	switch {
	case r.cb != nil:
		r.answerCallback(tr(r.lang, "error.internal", nil), true)
	case r.private() || r.msg != nil:
		r.reply("error.internal", nil)
	}
	r.b.toLogChat(slog.LevelError, r.logKey("failure"), "log.failure", P{"what": r.what, "error": r.b.redact(err.Error())})
}

func (b *Bot) newRequest(c tele.Context, what string) *request {
	u := c.Update()
	r := &request{ctx: b.ctx, b: b, c: c, what: what, update: int64(u.ID), msg: c.Message(), from: c.Sender(), chat: c.Chat()}
	if r.ctx == nil {
		r.ctx = context.Background()
	}
	if u.Callback != nil { // the message is the bot's own, with the button
		r.cb, r.msg = u.Callback, nil
	}
	r.admin = b.isAdmin(r.from)
	r.lang = b.lang
	if r.from != nil {
		if l := SupportedLanguage(r.from.LanguageCode); l != "" {
			r.lang = l
		}
	}
	attrs := []any{"update", r.update, "what", what}
	if r.from != nil {
		attrs = append(attrs, "telegram", r.from.ID)
	}
	r.log = b.log.With(attrs...)
	return r
}

// ignored reports whether the update is dropped unanswered (logged at debug):
//
//   - a message sent by a bot, or on behalf of a chat (sender_chat: an
//     anonymous group admin, a channel posting in its discussion group), has
//     no person behind it who could be registered or held to account;
//   - anything from a group the bot refused (it left) but membership changes:
//     updates Telegram had queued before the bot left change nothing.
//
// Membership changes and migrations are facts about a chat, not requests, and
// are always handled (a bot that adds this one to a group is not an admin, so
// the bot leaves).
func (b *Bot) ignored(r *request) bool {
	u := r.c.Update()
	if u.MyChatMember != nil || (r.msg != nil && r.msg.MigrateTo != 0) {
		return false
	}
	if (r.msg != nil && r.msg.SenderChat != nil) || (r.from != nil && r.from.IsBot) {
		r.log.Debug("ignored: sent by a bot or on behalf of a chat", "chat", chatID(r.chat))
		return true
	}
	if r.chat != nil && r.chat.Type != tele.ChatPrivate && b.groupState(r.chat.ID) == store.GroupRefused {
		r.log.Debug("ignored: from a group the bot refused", "chat", r.chat.ID)
		return true
	}
	return false
}

func chatID(c *tele.Chat) int64 {
	if c == nil {
		return 0
	}
	return c.ID
}
