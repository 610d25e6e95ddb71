package bot

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"hpcbot/bot/tgtest"
)

// idle waits until every update pushed so far was handled.
func (e *env) idle() {
	e.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		pending, err := e.st.InboxPending()
		if err != nil {
			e.t.Fatal(err)
		}
		if len(e.srv.Unconfirmed()) == 0 && len(pending) == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.t.Fatalf("updates not handled within %v", waitLimit)
}

// card sends a message with a button to the private chat of u, as the bot,
// and returns its id.
func (e *env) card(u tgtest.User, data string) int {
	e.t.Helper()
	m, err := e.bot.api.SendMessage(context.Background(), u.ID, "card",
		MessageOptions{Keyboard: [][]Button{{{Text: "Press", Data: data}}}})
	if err != nil {
		e.t.Fatal(err)
	}
	return m.ID
}

func TestCallbackQueriesAnsweredOnce(t *testing.T) {
	e := newEnv(t)
	type press struct {
		user    uint64
		arg     string
		message int
	}
	var mu sync.Mutex
	var presses []press
	e.bot.onCallbackData("t:", func(r *request, arg string) (string, bool, error) {
		return "", false, errors.New("the shorter prefix must not take t:ok: data")
	})
	e.bot.onCallbackData("t:ok:", func(r *request, arg string) (string, bool, error) {
		mu.Lock()
		presses = append(presses, press{r.user.ID, arg, r.cb.Message.ID})
		mu.Unlock()
		return "done " + arg, false, nil
	})
	e.bot.onCallbackData("t:err:", func(r *request, arg string) (string, bool, error) {
		return "never shown", false, errors.New("injected handler error")
	})
	e.bot.onCallbackData("t:panic:", func(r *request, arg string) (string, bool, error) {
		panic("injected handler panic")
	})
	e.bot.onCallbackData("t:silent:", func(r *request, arg string) (string, bool, error) {
		return "", false, nil
	})

	cases := []struct {
		name      string
		from      tgtest.User
		data      string
		text      string
		alert     bool
		handlerOK bool // the t:ok: handler ran
	}{
		{"handled", tgUser, "t:ok:5", "done 5", false, true},
		{"admin registered on the spot", tgAdmin, "t:ok:9", "done 9", false, true},
		{"handler error", tgUser, "t:err:1", tr("en", "error.internal", nil), true, false},
		{"handler panic", tgUser, "t:panic:1", tr("en", "error.internal", nil), true, false},
		{"silent answer", tgUser, "t:silent:", "", false, false},
		{"unknown data", tgUser, "gone:1", "This button is out of date; nothing was done.", false, false},
		{"unknown data in Russian", tgRuUser, "gone:1", "Эта кнопка устарела, ничего не сделано.", false, false},
		{"stranger", tgStranger, "t:ok:1", tr("en", "callback.unregistered", nil), true, false},
		{"blocked", tgBlocked, "t:ok:1", tr("en", "callback.blocked", nil), true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mu.Lock()
			before := len(presses)
			mu.Unlock()
			msg := e.card(c.from, c.data)
			sentBefore := len(e.srv.Sent(c.from.ID))
			q := e.srv.PushCallback(c.from, c.from.ID, int64(msg), c.data)
			a := e.srv.WaitAnswer(t, q)
			e.idle()
			if a.Text != c.text || a.ShowAlert != c.alert {
				t.Errorf("answer %q (alert %v), want %q (alert %v)", a.Text, a.ShowAlert, c.text, c.alert)
			}
			if n := e.srv.AnswerCalls(q); n != 1 {
				t.Errorf("answerCallbackQuery called %d times", n)
			}
			if sent := e.srv.Sent(c.from.ID)[sentBefore:]; len(sent) != 0 {
				t.Errorf("a button press sent messages to the chat: %v", sentTexts(sent))
			}
			mu.Lock()
			ran := len(presses) > before
			if ran && (presses[before].arg != strings.TrimPrefix(c.data, "t:ok:") || presses[before].message != msg) {
				t.Errorf("handler got %+v", presses[before])
			}
			mu.Unlock()
			if ran != c.handlerOK {
				t.Errorf("t:ok: handler ran: %v, want %v", ran, c.handlerOK)
			}
		})
	}
	if u := e.srv.Unanswered(); len(u) != 0 {
		t.Fatalf("callback queries never answered: %v", u)
	}
	// The log chat hears of the failures and of the stranger.
	e.waitSent(logChat, "injected handler error")
	e.waitSent(logChat, "injected handler panic")
	e.waitSent(logChat, "Unregistered", "Eve", "t:ok:1")
	e.waitSent(logChat, "Refused", "bob_blocked", "t:ok:1")
	if logs := e.logs.String(); strings.Contains(logs, e.srv.Token) {
		t.Fatal("the token is in the log")
	}
}

// A button on a message Telegram no longer shows the bot (an inaccessible
// message, date 0) still reaches its handler, and is answered.
func TestCallbackOnInaccessibleMessage(t *testing.T) {
	e := newEnv(t)
	got := make(chan int64, 1)
	e.bot.onCallbackData("old:", func(r *request, arg string) (string, bool, error) {
		got <- r.cb.Message.Unixtime
		return "ok", false, nil
	})
	q := e.srv.PushCallback(tgUser, tgUser.ID, 12345, "old:1")
	if a := e.srv.WaitAnswer(t, q); a.Text != "ok" {
		t.Fatalf("answer %+v", a)
	}
	if d := <-got; d != 0 {
		t.Fatalf("message date %d", d)
	}
}

func TestCallbackPrefixRegisteredOnce(t *testing.T) {
	b := &Bot{}
	b.onCallbackData("x:", func(*request, string) (string, bool, error) { return "", false, nil })
	defer func() {
		if recover() == nil {
			t.Fatal("a second registration of x: was accepted")
		}
	}()
	b.onCallbackData("x:", func(*request, string) (string, bool, error) { return "", false, nil })
}
