package bot

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"

	tele "gopkg.in/telebot.v3"
)

// newRouter is the telebot instance that routes updates to the handlers
// (Handle, ProcessUpdate through the Poller) and provides the Bot API types.
// It makes no Bot API call: every call goes through Client (contexts, typed
// errors, the token kept out of errors, one HTTP client). telebot gets an
// HTTP client whose transport refuses every request, so a telebot call
// slipped in by mistake fails at once and is logged, instead of reaching
// Telegram unnoticed.
func (b *Bot) newRouter(apiURL string) (*tele.Bot, error) {
	b.guard = &refuseTransport{log: b.log}
	tb, err := tele.NewBot(tele.Settings{
		URL:         apiURL,
		Token:       string(b.opts.Bot.Token),
		Client:      &http.Client{Transport: b.guard},
		Offline:     true, // no getMe: connect asks it through Client
		Synchronous: true, // ProcessUpdate returns when the handler has finished (Poller's contract)
		OnError: func(err error, c tele.Context) {
			b.log.Error("telegram handler", "err", err)
		},
		Poller: b.poller,
	})
	if err != nil {
		return nil, fmt.Errorf("bot: %s", b.redact(err.Error()))
	}
	return tb, nil
}

// refuseTransport is telebot's HTTP transport: it refuses every request,
// logging the Bot API method telebot tried, and counts them.
type refuseTransport struct {
	log   *slog.Logger
	tries atomic.Int64
}

func (t *refuseTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	// The last path element is the method (…/bot<token>/<method>), or a
	// file's name on the download path: never the token.
	method := req.URL.Path[strings.LastIndexByte(req.URL.Path, '/')+1:]
	t.tries.Add(1)
	t.log.Error("telebot tried a Bot API call of its own; refused: every call goes through bot.Client", "method", method)
	return nil, fmt.Errorf("telebot may not call the Bot API (%s): every call goes through bot.Client", method)
}
