package bot

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"hpcbot/bot/tgtest"
)

func TestClientEditsAndKeyboards(t *testing.T) {
	srv := tgtest.New(t)
	c := NewClient(srv.URL, srv.Token, nil)
	ctx := context.Background()
	kb := [][]Button{{{Text: "Cancel", Data: "cancel:7"}, {Text: "Log", Data: "log:7"}}}
	m, err := c.SendMessage(ctx, tAlice.ID, "<b>running</b>", MessageOptions{ParseMode: "HTML", Keyboard: kb})
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	stored, _ := srv.Message(tAlice.ID, int64(m.ID))
	if stored.ReplyMarkup == nil || len(stored.ReplyMarkup.InlineKeyboard[0]) != 2 || stored.ReplyMarkup.InlineKeyboard[0][1].CallbackData != "log:7" {
		t.Fatalf("keyboard not sent: %+v", stored.ReplyMarkup)
	}

	kb2 := [][]Button{{{Text: "Run again", Data: "again:7"}}}
	e, err := c.EditMessageText(ctx, tAlice.ID, m.ID, "<b>finished</b>", MessageOptions{ParseMode: "HTML", Keyboard: kb2})
	if err != nil || e.Text != "<b>finished</b>" {
		t.Fatalf("EditMessageText: %+v, %v", e, err)
	}
	if stored, _ := srv.Message(tAlice.ID, int64(m.ID)); stored.ReplyMarkup.InlineKeyboard[0][0].CallbackData != "again:7" {
		t.Fatalf("keyboard after edit: %+v", stored.ReplyMarkup)
	}
	_, err = c.EditMessageText(ctx, tAlice.ID, m.ID, "<b>finished</b>", MessageOptions{ParseMode: "HTML", Keyboard: kb2})
	if !IsNotModified(err) || IsMessageGone(err) {
		t.Fatalf("the same edit again: %v (IsNotModified %v)", err, IsNotModified(err))
	}

	// An empty keyboard removes it; nil does too.
	if err := c.EditMessageReplyMarkup(ctx, tAlice.ID, m.ID, [][]Button{}); err != nil {
		t.Fatalf("EditMessageReplyMarkup(empty): %v", err)
	}
	if stored, _ := srv.Message(tAlice.ID, int64(m.ID)); stored.ReplyMarkup != nil {
		t.Fatalf("keyboard not removed: %+v", stored.ReplyMarkup)
	}
	if err := c.EditMessageReplyMarkup(ctx, tAlice.ID, m.ID, nil); !IsNotModified(err) {
		t.Fatalf("removing a keyboard that is not there: %v", err)
	}

	srv.UserDelete(tAlice.ID, int64(m.ID))
	_, err = c.EditMessageText(ctx, tAlice.ID, m.ID, "gone?", MessageOptions{})
	if !IsMessageGone(err) || IsNotModified(err) {
		t.Fatalf("edit of a deleted message: %v", err)
	}
	if err := c.EditMessageReplyMarkup(ctx, tAlice.ID, m.ID, kb); !IsMessageGone(err) {
		t.Fatalf("keyboard edit of a deleted message: %v", err)
	}
	if strings.Contains(err.Error(), srv.Token) {
		t.Fatalf("the token is in an error: %v", err)
	}
}

func TestClientRefusesBadButtons(t *testing.T) {
	srv := tgtest.New(t)
	c := NewClient(srv.URL, srv.Token, nil)
	for _, kb := range [][][]Button{
		{{{Text: "x", Data: strings.Repeat("d", 65)}}},
		{{{Text: "x", Data: ""}}},
		{{{Text: " ", Data: "d"}}},
	} {
		if _, err := c.SendMessage(context.Background(), tAlice.ID, "t", MessageOptions{Keyboard: kb}); err == nil {
			t.Errorf("keyboard %+v accepted", kb)
		}
		if err := c.EditMessageReplyMarkup(context.Background(), tAlice.ID, 1, kb); err == nil {
			t.Errorf("keyboard %+v accepted by EditMessageReplyMarkup", kb)
		}
	}
	if calls := srv.Calls(); len(calls) != 0 {
		t.Fatalf("a refused keyboard reached the API: %v", calls)
	}
	// 64 bytes is the limit, not past it.
	if _, err := c.SendMessage(context.Background(), tAlice.ID, "t", MessageOptions{Keyboard: [][]Button{{{Text: "x", Data: strings.Repeat("ж", 32)}}}}); err != nil {
		t.Fatalf("64-byte data: %v", err)
	}
}

func TestClientAnswerCallbackQuery(t *testing.T) {
	srv := tgtest.New(t)
	c := NewClient(srv.URL, srv.Token, nil)
	m, err := c.SendMessage(context.Background(), tAlice.ID, "card", MessageOptions{Keyboard: [][]Button{{{Text: "Cancel", Data: "cancel:1"}}}})
	if err != nil {
		t.Fatal(err)
	}
	q := srv.PushCallback(tAlice, tAlice.ID, int64(m.ID), "cancel:1")
	long := strings.Repeat("слово ", 60) // 360 characters
	if err := c.AnswerCallbackQuery(context.Background(), q, long, true); err != nil {
		t.Fatalf("AnswerCallbackQuery: %v", err)
	}
	a, ok := srv.Answer(q)
	if !ok || !a.ShowAlert || !strings.HasSuffix(a.Text, "…") || tgLen(a.Text) > 200 || !strings.HasPrefix(a.Text, "слово слово") {
		t.Fatalf("answer %+v %v (%d characters)", a, ok, tgLen(a.Text))
	}
	err = c.AnswerCallbackQuery(context.Background(), q, "", false)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != 400 {
		t.Fatalf("second answer: %v", err)
	}
	q2 := srv.PushCallback(tAlice, tAlice.ID, int64(m.ID), "cancel:1")
	if err := c.AnswerCallbackQuery(context.Background(), q2, "", false); err != nil {
		t.Fatalf("empty answer: %v", err)
	}
	if a, _ := srv.Answer(q2); a.Text != "" || a.ShowAlert {
		t.Fatalf("empty answer recorded as %+v", a)
	}
}

func TestSenderEdit(t *testing.T) {
	srv := tgtest.New(t)
	s := newTestSender(t, srv, openTestStore(t, ""), testSenderOptions())
	ctx := context.Background()
	m, err := s.c.SendMessage(ctx, tAlice.ID, "card", MessageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kb := [][]Button{{{Text: "Cancel", Data: "cancel:3"}}}
	if err := s.Edit(ctx, tAlice.ID, m.ID, "<b>running</b> on node01", kb); err != nil {
		t.Fatalf("Edit: %v", err)
	}
	stored, _ := srv.Message(tAlice.ID, int64(m.ID))
	if stored.Text != "<b>running</b> on node01" || stored.ReplyMarkup == nil {
		t.Fatalf("after Edit: %+v", stored)
	}
	if c := srv.Calls("editMessageText"); c[0].Params["parse_mode"] != "HTML" {
		t.Fatalf("edit without parse mode: %+v", c[0].Params)
	}

	// The same edit again: Telegram's "not modified" is no error.
	if err := s.Edit(ctx, tAlice.ID, m.ID, "<b>running</b> on node01", kb); err != nil {
		t.Fatalf("identical Edit: %v", err)
	}
	if n := len(filterCode(srv.Calls(), "editMessageText", 400)); n != 1 {
		t.Fatalf("%d edits answered 400, want the identical one", n)
	}

	// Flood control: waited out, then done.
	srv.Inject(tgtest.TooManyRequests("editMessageText", 1, 1))
	if err := s.Edit(ctx, tAlice.ID, m.ID, "finished", nil); err != nil {
		t.Fatalf("Edit after a 429: %v", err)
	}
	calls := srv.Calls("editMessageText")
	last, flood := calls[len(calls)-1], calls[len(calls)-2]
	if flood.Code != 429 || !last.OK() || last.Time.Sub(flood.Time) < time.Second {
		t.Fatalf("429 then %d after %v", last.Code, last.Time.Sub(flood.Time))
	}
	if stored, _ := srv.Message(tAlice.ID, int64(m.ID)); stored.Text != "finished" || stored.ReplyMarkup != nil {
		t.Fatalf("after Edit with no keyboard: %+v", stored)
	}

	// The user deleted the message.
	srv.UserDelete(tAlice.ID, int64(m.ID))
	if err := s.Edit(ctx, tAlice.ID, m.ID, "again", kb); !IsMessageGone(err) {
		t.Fatalf("Edit of a deleted message: %v", err)
	}
	if err := s.Edit(ctx, tAlice.ID, 0, "x", nil); err == nil {
		t.Fatal("Edit without a message id")
	}
}

// Edits take their turn in the chat's queue and budget with the sends: a
// burst of 3, then 1 a second.
func TestSenderEditPacedWithSends(t *testing.T) {
	srv := tgtest.New(t)
	s := newTestSender(t, srv, openTestStore(t, ""), testSenderOptions())
	ctx := context.Background()
	m, err := s.c.SendMessage(ctx, tAlice.ID, "card", MessageOptions{}) // outside the sender's budget
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := s.Post(Outgoing{ChatID: tAlice.ID, Text: "message " + string(rune('a'+i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Edit(ctx, tAlice.ID, m.ID, "edited", nil); err != nil {
		t.Fatalf("Edit: %v", err)
	}
	calls := srv.Calls("sendMessage", "editMessageText")[1:]
	if len(calls) != 4 || calls[3].Method != "editMessageText" {
		t.Fatalf("calls: %v", calls)
	}
	// The edit is the 4th call of a 3-burst at 1/s: about a second after the
	// first send (the fake stamps arrivals, hence the slack).
	if gap := calls[3].Time.Sub(calls[0].Time); gap < time.Second-250*time.Millisecond {
		t.Fatalf("edit %v after the first of 3 sends: not paced with them", gap)
	}
}

// Edit waits until the sender is done with the edit, past ReplyTimeout (a
// 429's retry_after here): its caller (the card's refresh) edits the message
// again only once no edit of it is queued any more.
func TestSenderEditWaitsPastReplyTimeout(t *testing.T) {
	srv := tgtest.New(t)
	o := testSenderOptions()
	o.ReplyTimeout = time.Nanosecond
	s := newTestSender(t, srv, openTestStore(t, ""), o)
	ctx := context.Background()
	m, err := s.c.SendMessage(ctx, tAlice.ID, "card", MessageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Inject(tgtest.TooManyRequests("editMessageText", 1, 1))
	if err := s.Edit(ctx, tAlice.ID, m.ID, "edited", nil); err != nil {
		t.Fatalf("Edit: %v", err)
	}
	calls := srv.Calls("editMessageText")
	if len(calls) != 2 || calls[0].Code != 429 || !calls[1].OK() {
		t.Fatalf("edits %+v, want a 429 and then the edit", calls)
	}
	if stored, _ := srv.Message(tAlice.ID, int64(m.ID)); stored.Text != "edited" {
		t.Fatalf("the message reads %q", stored.Text)
	}
}
