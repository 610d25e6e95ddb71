package tgtest_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"hpcbot/bot/tgtest"
)

// apiAnswer is a Bot API answer.
type apiAnswer struct {
	OK          bool            `json:"ok"`
	Result      json.RawMessage `json:"result"`
	ErrorCode   int             `json:"error_code"`
	Description string          `json:"description"`
	Parameters  struct {
		RetryAfter int `json:"retry_after"`
	} `json:"parameters"`
}

// call posts params as JSON to method, as hpcbot's client does.
func call(t *testing.T, s *tgtest.Server, method string, params map[string]any) apiAnswer {
	t.Helper()
	body, _ := json.Marshal(params)
	resp, err := http.Post(s.URL+"/bot"+s.Token+"/"+method, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	var a apiAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatalf("%s: decode: %v", method, err)
	}
	if a.OK != (resp.StatusCode == 200) || (!a.OK && a.ErrorCode != resp.StatusCode) {
		t.Fatalf("%s: HTTP %d but answer %+v", method, resp.StatusCode, a)
	}
	return a
}

func keyboard(rows ...[]tgtest.InlineButton) map[string]any {
	return map[string]any{"inline_keyboard": rows}
}

func btn(text, data string) tgtest.InlineButton {
	return tgtest.InlineButton{Text: text, CallbackData: data}
}

// sendCard sends a text with a keyboard to alice and returns its message_id.
func sendCard(t *testing.T, s *tgtest.Server, text string, kb map[string]any) int64 {
	t.Helper()
	a := call(t, s, "sendMessage", map[string]any{"chat_id": alice.ID, "text": text, "reply_markup": kb})
	if !a.OK {
		t.Fatalf("sendMessage: %+v", a)
	}
	var m tgtest.Message
	if err := json.Unmarshal(a.Result, &m); err != nil {
		t.Fatal(err)
	}
	if m.ReplyMarkup == nil || len(m.ReplyMarkup.InlineKeyboard) == 0 {
		t.Fatalf("sendMessage answered a message without its keyboard: %s", a.Result)
	}
	return m.MessageID
}

const notModified = "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message"

func TestEditMessageTextAndKeyboard(t *testing.T) {
	s := tgtest.New(t)
	kb := keyboard([]tgtest.InlineButton{btn("Cancel", "cancel:1"), btn("Log", "log:1")})
	id := sendCard(t, s, "running", kb)
	m, ok := s.Message(alice.ID, id)
	if !ok || m.Text != "running" || m.ReplyMarkup.InlineKeyboard[0][1] != btn("Log", "log:1") {
		t.Fatalf("stored message %+v %v", m, ok)
	}

	// The same text and keyboard: Telegram's 400.
	a := call(t, s, "editMessageText", map[string]any{"chat_id": alice.ID, "message_id": id, "text": "running", "reply_markup": kb})
	if a.OK || a.ErrorCode != 400 || a.Description != notModified {
		t.Fatalf("identical edit: %+v", a)
	}
	// A new text keeping the keyboard.
	a = call(t, s, "editMessageText", map[string]any{"chat_id": alice.ID, "message_id": id, "text": "finished", "reply_markup": kb})
	if !a.OK {
		t.Fatalf("edit: %+v", a)
	}
	var edited tgtest.Message
	json.Unmarshal(a.Result, &edited)
	if edited.Text != "finished" || edited.EditDate == 0 || edited.ReplyMarkup == nil {
		t.Fatalf("edit answered %s", a.Result)
	}
	// The same text without reply_markup removes the keyboard: a change.
	a = call(t, s, "editMessageText", map[string]any{"chat_id": alice.ID, "message_id": id, "text": "finished"})
	if !a.OK {
		t.Fatalf("edit without keyboard: %+v", a)
	}
	if m, _ := s.Message(alice.ID, id); m.ReplyMarkup != nil || m.Text != "finished" {
		t.Fatalf("after an edit without reply_markup: %+v", m)
	}

	// editMessageReplyMarkup: sets, then the same is not modified, then an
	// empty keyboard removes it.
	kb2 := keyboard([]tgtest.InlineButton{btn("Run again", "again:1")})
	if a := call(t, s, "editMessageReplyMarkup", map[string]any{"chat_id": alice.ID, "message_id": id, "reply_markup": kb2}); !a.OK {
		t.Fatalf("editMessageReplyMarkup: %+v", a)
	}
	if m, _ := s.Message(alice.ID, id); m.ReplyMarkup == nil || m.ReplyMarkup.InlineKeyboard[0][0].CallbackData != "again:1" || m.Text != "finished" {
		t.Fatalf("after editMessageReplyMarkup: %+v", m)
	}
	if a := call(t, s, "editMessageReplyMarkup", map[string]any{"chat_id": alice.ID, "message_id": id, "reply_markup": kb2}); a.OK || a.Description != notModified {
		t.Fatalf("identical keyboard: %+v", a)
	}
	if a := call(t, s, "editMessageReplyMarkup", map[string]any{"chat_id": alice.ID, "message_id": id, "reply_markup": keyboard()}); !a.OK {
		t.Fatalf("remove keyboard: %+v", a)
	}
	if m, _ := s.Message(alice.ID, id); m.ReplyMarkup != nil {
		t.Fatalf("keyboard not removed: %+v", m.ReplyMarkup)
	}
}

func TestEditRefusals(t *testing.T) {
	s := tgtest.New(t)
	id := sendCard(t, s, "card", keyboard([]tgtest.InlineButton{btn("Cancel", "cancel:1")}))

	long := strings.Repeat("x", 65)
	if a := call(t, s, "sendMessage", map[string]any{"chat_id": alice.ID, "text": "t", "reply_markup": keyboard([]tgtest.InlineButton{btn("b", long)})}); a.OK || a.Description != "Bad Request: BUTTON_DATA_INVALID" {
		t.Fatalf("65-byte callback_data: %+v", a)
	}
	// A message the user wrote is not the bot's to edit.
	s.PushText(alice, tgtest.Private(alice), "mine")
	mine := int64(0)
	for mid := int64(1); mid < 10; mid++ {
		if m, ok := s.Message(alice.ID, mid); ok && m.Text == "mine" {
			mine = mid
		}
	}
	if a := call(t, s, "editMessageText", map[string]any{"chat_id": alice.ID, "message_id": mine, "text": "x"}); a.OK || a.Description != "Bad Request: message can't be edited" {
		t.Fatalf("edit of the user's message: %+v", a)
	}

	// The user deletes the card: edits find nothing.
	if !s.UserDelete(alice.ID, id) {
		t.Fatal("UserDelete: message unknown")
	}
	for _, method := range []string{"editMessageText", "editMessageReplyMarkup"} {
		a := call(t, s, method, map[string]any{"chat_id": alice.ID, "message_id": id, "text": "new"})
		if a.OK || a.ErrorCode != 400 || a.Description != "Bad Request: message to edit not found" {
			t.Fatalf("%s after the user deleted it: %+v", method, a)
		}
	}

	// deleteMessage by the bot, then again.
	id2 := sendCard(t, s, "second", keyboard([]tgtest.InlineButton{btn("Cancel", "cancel:2")}))
	if a := call(t, s, "deleteMessage", map[string]any{"chat_id": alice.ID, "message_id": id2}); !a.OK {
		t.Fatalf("deleteMessage: %+v", a)
	}
	if a := call(t, s, "deleteMessage", map[string]any{"chat_id": alice.ID, "message_id": id2}); a.OK || a.Description != "Bad Request: message to delete not found" {
		t.Fatalf("second deleteMessage: %+v", a)
	}
	if a := call(t, s, "editMessageText", map[string]any{"chat_id": alice.ID, "message_id": id2, "text": "new"}); a.OK || a.Description != "Bad Request: message to edit not found" {
		t.Fatalf("edit after deleteMessage: %+v", a)
	}
}

func TestEditFloodControl(t *testing.T) {
	s := tgtest.New(t)
	id := sendCard(t, s, "card", keyboard([]tgtest.InlineButton{btn("Cancel", "cancel:1")}))
	s.Inject(tgtest.TooManyRequests("editMessageText", 1, 7))
	a := call(t, s, "editMessageText", map[string]any{"chat_id": alice.ID, "message_id": id, "text": "new"})
	if a.OK || a.ErrorCode != 429 || a.Parameters.RetryAfter != 7 {
		t.Fatalf("injected 429: %+v", a)
	}
	if m, _ := s.Message(alice.ID, id); m.Text != "card" {
		t.Fatalf("a refused edit changed the message: %q", m.Text)
	}
	if a := call(t, s, "editMessageText", map[string]any{"chat_id": alice.ID, "message_id": id, "text": "new"}); !a.OK {
		t.Fatalf("after the 429: %+v", a)
	}
}

func TestCallbackQueries(t *testing.T) {
	s := tgtest.New(t)
	id := sendCard(t, s, "card", keyboard([]tgtest.InlineButton{btn("Cancel", "cancel:1")}))
	q := s.PushCallback(alice, alice.ID, id, "cancel:1")
	old := s.PushCallback(alice, alice.ID, 999, "cancel:0") // a message the server never saw

	_, ups := getUpdates(t, s, 0, 0)
	if len(ups) != 2 || ups[0].Callback == nil || ups[1].Callback == nil {
		t.Fatalf("updates: %+v", ups)
	}
	cb := ups[0].Callback
	if cb.ID != q || cb.Data != "cancel:1" || cb.Sender.ID != alice.ID || cb.Message == nil ||
		cb.Message.ID != int(id) || cb.Message.Text != "card" || cb.Message.ReplyMarkup == nil ||
		cb.Message.ReplyMarkup.InlineKeyboard[0][0].Data != "cancel:1" {
		t.Fatalf("telebot decoded %+v (message %+v)", cb, cb.Message)
	}
	if m := ups[1].Callback.Message; m == nil || m.ID != 999 || m.Unixtime != 0 || m.Chat.ID != alice.ID {
		t.Fatalf("inaccessible message: %+v", m)
	}
	if u := s.Unanswered(); len(u) != 2 || u[0] != q || u[1] != old {
		t.Fatalf("Unanswered = %v", u)
	}

	if a := call(t, s, "answerCallbackQuery", map[string]any{"callback_query_id": q, "text": strings.Repeat("я", 201)}); a.OK || a.Description != "Bad Request: MESSAGE_TOO_LONG" {
		t.Fatalf("201 characters: %+v", a)
	}
	if a := call(t, s, "answerCallbackQuery", map[string]any{"callback_query_id": q, "text": "Cancelled", "show_alert": true}); !a.OK {
		t.Fatalf("answer: %+v", a)
	}
	if ans, ok := s.Answer(q); !ok || ans.Text != "Cancelled" || !ans.ShowAlert {
		t.Fatalf("Answer = %+v, %v", ans, ok)
	}
	const invalid = "Bad Request: query is too old and response timeout expired or query ID is invalid"
	if a := call(t, s, "answerCallbackQuery", map[string]any{"callback_query_id": q}); a.OK || a.Description != invalid {
		t.Fatalf("second answer: %+v", a)
	}
	if a := call(t, s, "answerCallbackQuery", map[string]any{"callback_query_id": "nope"}); a.OK || a.Description != invalid {
		t.Fatalf("unknown query: %+v", a)
	}
	if n := s.AnswerCalls(q); n != 3 {
		t.Fatalf("AnswerCalls = %d, want 3", n)
	}
	if u := s.Unanswered(); len(u) != 1 || u[0] != old {
		t.Fatalf("Unanswered = %v", u)
	}
	if _, ok := s.Answer(old); ok {
		t.Fatal("an unanswered query has an answer")
	}
}
