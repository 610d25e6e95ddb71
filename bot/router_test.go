package bot

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"hpcbot/bot/tgtest"
	"hpcbot/store"
)

// countingTransport counts the requests of the bot's HTTP client (Options.Client).
type countingTransport struct{ n atomic.Int64 }

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return http.DefaultTransport.RoundTrip(req)
}

// TestOneTelegramStack runs the bot through a full flow (connect, command
// menus, a command, a document downloaded and run with its results sent,
// the log chat's copy by file_id, a button pressed and the message edited, a
// group refused and left) and checks that every request reached the fake Bot
// API through the one Client, and that telebot never tried a call itself.
func TestOneTelegramStack(t *testing.T) {
	var ct countingTransport
	e := newEnv(t, func(o *Options) { o.Client = &http.Client{Transport: &ct} })
	if e.bot.guard == nil {
		t.Fatal("telebot has no refusing transport")
	}

	e.private(tgUser, "/start")
	_, _ = e.sendFile(tgUser, "flow.sh", []byte("echo result > out.txt\n"), "")
	c := e.calcsOf(e.user)[0]
	waitState(t, e.st, c.ID, store.StateNotified)

	card := e.card(tgUser, "flow:1")
	e.bot.onCallbackData("flow:", func(r *request, arg string) (string, bool, error) {
		err := e.bot.out.Edit(r.ctx, r.chat.ID, r.cb.Message.ID, "pressed "+arg, nil)
		return "edited", false, err
	})
	q := e.srv.PushCallback(tgUser, tgUser.ID, int64(card), "flow:1")
	if a := e.srv.WaitAnswer(t, q); a.Text != "edited" {
		t.Fatalf("answer %+v", a)
	}
	if m, _ := e.srv.Message(tgUser.ID, int64(card)); m.Text != "pressed 1" || m.ReplyMarkup != nil {
		t.Fatalf("card after the press: %+v", m)
	}

	lab := tgtest.Group(-700, "Lab of Eve")
	e.handled(e.srv.Push(e.srv.MyChatMemberUpdate(tgStranger, lab, "left", "member")))
	if !e.srv.Left(lab.ID) {
		t.Fatal("the bot did not leave a group a stranger added it to")
	}
	e.quiesce()
	e.stop()

	calls := e.srv.Calls()
	for _, m := range []string{"getMe", "setMyCommands", "getUpdates", "sendMessage", "sendDocument", "getFile", "file",
		"answerCallbackQuery", "editMessageText", "leaveChat"} {
		if countOK(calls, m) == 0 {
			t.Errorf("no successful %s call in the flow", m)
		}
	}
	if n := ct.n.Load(); n != int64(len(calls)) {
		t.Errorf("the bot's HTTP client made %d requests, the fake saw %d", n, len(calls))
	}
	if n := e.bot.guard.tries.Load(); n != 0 {
		t.Errorf("telebot tried %d Bot API calls of its own", n)
	}
	if strings.Contains(e.logs.String(), "telebot tried") {
		t.Errorf("telebot tried a call:\n%s", e.logs.String())
	}
}

// A call telebot makes by itself is refused before it leaves the process,
// logged with the method, and counted; the fake sees nothing.
func TestTelebotCannotCallTheAPI(t *testing.T) {
	srv := tgtest.New(t)
	var logs bytes.Buffer
	b, err := New(Options{Bot: Config{Token: "1:secret", APIURL: srv.URL, Admins: []int64{1}}, Language: "en"},
		openTestStore(t, ""), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	tb, err := b.newRouter(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tb.Raw("sendMessage", map[string]string{"chat_id": "1", "text": "x"})
	if err == nil || !strings.Contains(err.Error(), "every call goes through bot.Client") {
		t.Fatalf("telebot's own call: %v", err)
	}
	if _, err := tb.ChatByID(1); err == nil {
		t.Fatal("telebot's getChat went through")
	}
	if n := b.guard.tries.Load(); n != 2 {
		t.Fatalf("%d refused calls counted, want 2", n)
	}
	if !strings.Contains(logs.String(), "method=sendMessage") || !strings.Contains(logs.String(), "method=getChat") ||
		strings.Contains(logs.String(), "secret") {
		t.Fatalf("log:\n%s", logs.String())
	}
	if calls := srv.Calls(); len(calls) != 0 {
		t.Fatalf("the fake saw %v", calls)
	}
}
