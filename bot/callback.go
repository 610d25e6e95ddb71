package bot

import (
	"context"
	"strings"
	"sync"
	"time"
)

// CallbackHandler handles a press of an inline keyboard button (a callback
// query, https://core.telegram.org/bots/api#callbackquery) whose data began
// with the prefix it was registered for; arg is the rest of the data. The
// presser is registered and not blocked (r.user); r.cb is the query, and
// r.cb.Message the message with the button (its date is 0 when Telegram no
// longer shows it to the bot). answer is shown to the presser (plain text,
// at most 200 characters; "" shows nothing), as an alert when alert is set.
// An error is logged, the log chat hears of it, and the presser is answered
// with error.internal. It must be quick: Telegram drops an answer that comes
// too late, and the user sees a spinner until then.
type CallbackHandler func(r *request, arg string) (answer string, alert bool, err error)

// callbacks maps callback data prefixes to their handlers.
type callbacks struct {
	mu sync.RWMutex
	m  map[string]CallbackHandler
}

// onCallbackData routes the callback queries whose data starts with prefix
// (e.g. "cancel:") to h; the longest matching prefix wins. A prefix is
// registered once.
func (b *Bot) onCallbackData(prefix string, h CallbackHandler) {
	b.cbs.mu.Lock()
	defer b.cbs.mu.Unlock()
	if b.cbs.m == nil {
		b.cbs.m = map[string]CallbackHandler{}
	}
	if _, dup := b.cbs.m[prefix]; dup || prefix == "" {
		panic("bot: callback prefix registered twice, or empty: " + prefix)
	}
	b.cbs.m[prefix] = h
}

// callbackFor finds the handler of data and the argument it gets.
func (b *Bot) callbackFor(data string) (CallbackHandler, string, bool) {
	b.cbs.mu.RLock()
	defer b.cbs.mu.RUnlock()
	best := ""
	for p := range b.cbs.m {
		if strings.HasPrefix(data, p) && len(p) > len(best) {
			best = p
		}
	}
	if best == "" {
		return nil, "", false
	}
	return b.cbs.m[best], strings.TrimPrefix(data, best), true
}

// onCallback is the one handler of callback queries (wrapped, so each query
// is answered exactly once): the presser must be registered and not
// blocked, and the data must name a handler; otherwise the presser is told
// why nothing happened.
func (b *Bot) onCallback(r *request) error {
	if r.cb == nil {
		return nil
	}
	r.log = r.log.With("data", r.cb.Data)
	if !r.known && r.admin {
		if err := b.registerAdmin(r); err != nil {
			return err
		}
	}
	switch {
	case !r.known:
		r.answerCallback(tr(r.lang, "callback.unregistered", nil), true)
		b.refuseUnregistered(r, false)
		return nil
	case r.user.Blocked:
		r.answerCallback(tr(r.lang, "callback.blocked", nil), true)
		r.logRefusal(r.cb.Data, tr(b.lang, "callback.blocked", nil))
		return nil
	}
	h, arg, ok := b.callbackFor(r.cb.Data)
	if !ok {
		r.log.Info("callback query with data no handler takes (an old button)")
		r.answerCallback(tr(r.lang, "callback.unknown", nil), false)
		return nil
	}
	answer, alert, err := h(r, arg)
	if err != nil {
		return err
	}
	r.answerCallback(answer, alert)
	return nil
}

// callbackAnswerTimeout bounds answerCallbackQuery.
const callbackAnswerTimeout = 10 * time.Second

// answerCallback answers the request's callback query, once: later calls
// do nothing. A failure is logged (a query answered too late, say).
func (r *request) answerCallback(text string, alert bool) {
	if r.cb == nil || r.answered {
		return
	}
	r.answered = true
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), callbackAnswerTimeout)
	defer cancel()
	if err := r.b.api.AnswerCallbackQuery(ctx, r.cb.ID, text, alert); err != nil {
		r.log.Warn("answer callback query", "err", err)
	}
}
