package tgtest

import (
	"strconv"
	"testing"
	"time"
)

// CallbackAnswer is what the bot answered to a callback query
// (https://core.telegram.org/bots/api#answercallbackquery).
type CallbackAnswer struct {
	Text      string // the notification; "" shows nothing
	ShowAlert bool   // an alert instead of a notification at the top of the chat
	Time      time.Time
}

type callbackState struct {
	query    CallbackQuery
	answered bool
	answer   CallbackAnswer
}

// maxAnswerLen is the longest answer text: "0-200 characters".
const maxAnswerLen = 200

// queryInvalid is Telegram's answer to answerCallbackQuery for a query it
// does not know, or one already answered.
const queryInvalid = "query is too old and response timeout expired or query ID is invalid"

// PushCallback queues the callback_query update Telegram sends when from
// presses a button with data under the message (chatID, messageID), and
// returns the query's id. The update carries the message as it reads now;
// for a message the server does not know (deleted, or from before the test)
// it carries an inaccessible message (date 0,
// https://core.telegram.org/bots/api#inaccessiblemessage).
func (s *Server) PushCallback(from User, chatID, messageID int64, data string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := strconv.FormatInt(s.nextCallback, 10)
	s.nextCallback++
	var msg *Message
	if m, ok := s.messages[[2]int64{chatID, messageID}]; ok {
		c := *m
		c.ReplyMarkup = cloneKeyboard(m.ReplyMarkup)
		msg = &c
	} else {
		chat, ok := s.chats[chatID]
		if !ok {
			chat = Chat{ID: chatID, Type: "private"}
			if chatID < 0 {
				chat.Type = "group"
			}
		}
		msg = &Message{MessageID: messageID, Chat: chat, Date: 0}
	}
	q := CallbackQuery{ID: id, From: from, Message: msg, ChatInstance: strconv.FormatInt(-chatID, 10), Data: data}
	s.callbacks[id] = &callbackState{query: q}
	s.callbackIDs = append(s.callbackIDs, id)
	s.pushUpdateLocked(Update{CallbackQuery: &q})
	return id
}

// answerCallbackQuery: https://core.telegram.org/bots/api#answercallbackquery.
// A query can be answered once; a second answer, like an unknown id, gets 400.
func (s *Server) answerCallbackQuery(p map[string]string) (any, *apiError) {
	text := p["text"]
	if utf16Len(text) > maxAnswerLen {
		return nil, badRequest("MESSAGE_TOO_LONG")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.callbacks[p["callback_query_id"]]
	if !ok || st.answered {
		return nil, badRequest(queryInvalid)
	}
	st.answered = true
	st.answer = CallbackAnswer{Text: text, ShowAlert: p["show_alert"] == "true", Time: time.Now()}
	return true, nil
}

// Answer returns the answer to the callback query id, and whether it was answered.
func (s *Server) Answer(id string) (CallbackAnswer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.callbacks[id]
	if !ok || !st.answered {
		return CallbackAnswer{}, false
	}
	return st.answer, true
}

// WaitAnswer waits until the callback query id is answered and returns the
// answer; it fails the test after WaitTimeout.
func (s *Server) WaitAnswer(t testing.TB, id string) CallbackAnswer {
	t.Helper()
	var a CallbackAnswer
	s.Wait(t, func([]Call) bool {
		var ok bool
		a, ok = s.Answer(id)
		return ok
	})
	return a
}

// Unanswered returns the ids of the callback queries pushed and never
// answered, in the order pushed: each of them left a spinner on the user's
// button.
func (s *Server) Unanswered() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, id := range s.callbackIDs {
		if !s.callbacks[id].answered {
			out = append(out, id)
		}
	}
	return out
}

// AnswerCalls counts the answerCallbackQuery calls made for the query id,
// successful or not (a bot answers each query exactly once).
func (s *Server) AnswerCalls(id string) int {
	n := 0
	for _, c := range s.Calls("answerCallbackQuery") {
		if c.Params["callback_query_id"] == id {
			n++
		}
	}
	return n
}
