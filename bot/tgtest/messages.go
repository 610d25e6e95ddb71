package tgtest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

func (s *Server) seeMessageLocked(m *Message) {
	s.chats[m.Chat.ID] = m.Chat
	s.msgIDs[m.Chat.ID] = max(s.msgIDs[m.Chat.ID], m.MessageID)
	s.storeLocked(m)
}

// storeLocked keeps a copy of m as the message (chat, id) reads now.
func (s *Server) storeLocked(m *Message) {
	c := *m
	c.ReplyMarkup = cloneKeyboard(m.ReplyMarkup)
	s.messages[[2]int64{m.Chat.ID, m.MessageID}] = &c
}

// messageText is what a message says: its text, or its caption.
func messageText(m *Message) string {
	if m.Text != "" {
		return m.Text
	}
	return m.Caption
}

// Message returns the message (chatID, messageID) as it reads now (its text
// or caption after edits, its inline keyboard), and false when the server
// does not know it or it was deleted.
func (s *Server) Message(chatID, messageID int64) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.messages[[2]int64{chatID, messageID}]
	if !ok {
		return Message{}, false
	}
	c := *m
	c.ReplyMarkup = cloneKeyboard(m.ReplyMarkup)
	return c, true
}

// UserDelete deletes a message as its chat's user does (the bot is not
// told): later edits of it get 400 "message to edit not found". It reports
// whether the message existed.
func (s *Server) UserDelete(chatID, messageID int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := [2]int64{chatID, messageID}
	_, ok := s.messages[key]
	delete(s.messages, key)
	s.notifyLocked()
	return ok
}

func (s *Server) nextMessageIDLocked(chatID int64) int64 {
	s.msgIDs[chatID]++
	return s.msgIDs[chatID]
}

// checkText validates text under parse_mode and returns its visible length.
func checkText(text, parseMode string) (int, *apiError) {
	switch parseMode {
	case "":
	case "HTML":
		plain, err := parseHTML(text)
		if err != nil {
			return 0, badRequest("can't parse entities: %v", err)
		}
		text = plain
	case "Markdown", "MarkdownV2":
	default:
		return 0, badRequest("unsupported parse_mode")
	}
	return utf16Len(text), nil
}

// sendable checks the chat and the reply target of a send and returns the chat.
func (s *Server) sendable(p map[string]string) (Chat, *apiError) {
	chat, err := s.chatParam(p)
	if err != nil {
		return Chat{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.left[chat.ID] {
		return Chat{}, &apiError{code: http.StatusForbidden, desc: "Forbidden: bot is not a member of the group chat"}
	}
	if v := p["reply_to_message_id"]; v != "" && p["allow_sending_without_reply"] != "true" {
		id, _ := strconv.ParseInt(v, 10, 64)
		if _, ok := s.messages[[2]int64{chat.ID, id}]; !ok {
			return Chat{}, badRequest("message to be replied not found")
		}
	}
	return chat, nil
}

// newSentLocked is a new message of the bot in chat; the caller fills it in
// and stores it (storeLocked).
func (s *Server) newSentLocked(chat Chat) *Message {
	bot := s.Bot
	return &Message{MessageID: s.nextMessageIDLocked(chat.ID), From: &bot, Chat: chat, Date: time.Now().Unix()}
}

// sendMessage: https://core.telegram.org/bots/api#sendmessage ("Text of the
// message to be sent, 1-4096 characters after entities parsing").
func (s *Server) sendMessage(p map[string]string) (any, *apiError) {
	chat, err := s.sendable(p)
	if err != nil {
		return nil, err
	}
	text := p["text"]
	if strings.TrimSpace(text) == "" {
		return nil, badRequest("message text is empty")
	}
	n, err := checkText(text, p["parse_mode"])
	if err != nil {
		return nil, err
	}
	if n > MaxTextLen {
		return nil, badRequest("message is too long")
	}
	kb, err := keyboardParam(p)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.newSentLocked(chat)
	m.Text = text
	m.ReplyMarkup = kb
	s.storeLocked(m)
	return m, nil
}

// sendFile: https://core.telegram.org/bots/api#senddocument and #sendphoto: the
// file is a multipart upload, a file_id or an HTTP URL; "Caption ... 0-1024
// characters after entities parsing".
func (s *Server) sendFile(p map[string]string, files map[string]Upload, field string) (any, *apiError) {
	chat, err := s.sendable(p)
	if err != nil {
		return nil, err
	}
	if caption := p["caption"]; caption != "" {
		n, err := checkText(caption, p["parse_mode"])
		if err != nil {
			return nil, err
		}
		if n > MaxCaptionLen {
			return nil, badRequest("message caption is too long")
		}
	}
	kb, err := keyboardParam(p)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var doc Document
	if up, ok := files[field]; ok {
		if len(up.Data) > MaxUploadSize {
			return nil, &apiError{code: http.StatusRequestEntityTooLarge, desc: "Request Entity Too Large"}
		}
		if len(up.Data) == 0 {
			return nil, badRequest("file must be non-empty")
		}
		doc = s.addFileLocked(up.Name, up.Data, field+"s")
	} else if ref := p[field]; ref != "" {
		if f, ok := s.files[ref]; ok {
			doc = Document{FileID: f.FileID, FileUniqueID: f.FileUniqueID, FileSize: f.FileSize}
		} else if u, err := url.Parse(ref); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
			doc = Document{FileID: "URL", FileUniqueID: "URL", FileName: path.Base(u.Path)}
		} else {
			return nil, badRequest("wrong file identifier/HTTP URL specified")
		}
	} else {
		return nil, badRequest("there is no %s in the request", field)
	}
	m := s.newSentLocked(chat)
	m.Caption = p["caption"]
	m.ReplyMarkup = kb
	if field == "photo" {
		m.Photo = []PhotoSize{{FileID: doc.FileID, FileUniqueID: doc.FileUniqueID, Width: 800, Height: 600, FileSize: doc.FileSize}}
	} else {
		m.Document = &doc
	}
	s.storeLocked(m)
	return m, nil
}

// forward: https://core.telegram.org/bots/api#forwardmessage and #copymessage.
func (s *Server) forward(p map[string]string, cp bool) (any, *apiError) {
	chat, err := s.sendable(p)
	if err != nil {
		return nil, err
	}
	from, err := intParam(p, "from_chat_id", 0)
	if err != nil {
		return nil, err
	}
	id, err := intParam(p, "message_id", 0)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	src, ok := s.messages[[2]int64{from, id}]
	if !ok {
		return nil, badRequest("message to forward not found")
	}
	m := s.newSentLocked(chat)
	m.Text = messageText(src)
	s.storeLocked(m)
	if cp {
		return map[string]int64{"message_id": m.MessageID}, nil
	}
	m.ForwardOrigin = map[string]any{"type": "chat", "date": m.Date, "sender_chat": s.chats[from]}
	return m, nil
}

// editMessageText: https://core.telegram.org/bots/api#editmessagetext. An
// edit without reply_markup removes the message's inline keyboard, as
// Telegram does (https://github.com/TelegramBots/Telegram.Bot/issues/402).
func (s *Server) editMessageText(p map[string]string) (any, *apiError) {
	if p["inline_message_id"] != "" {
		return true, nil
	}
	text := p["text"]
	n, err := checkText(text, p["parse_mode"])
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, badRequest("message text is empty")
	}
	if n > MaxTextLen {
		return nil, badRequest("message is too long")
	}
	return s.edit(p, func(m *Message) *apiError {
		if m.Text == "" { // a file's caption is editMessageCaption's
			return badRequest("there is no text in the message to edit")
		}
		m.Text = text
		return nil
	})
}

// editMessageReplyMarkup: https://core.telegram.org/bots/api#editmessagereplymarkup
// (without reply_markup, or with an empty keyboard, the keyboard is removed).
func (s *Server) editMessageReplyMarkup(p map[string]string) (any, *apiError) {
	if p["inline_message_id"] != "" {
		return true, nil
	}
	return s.edit(p, func(*Message) *apiError { return nil })
}

// notModified is Telegram's answer to an edit that changes nothing.
const notModified = "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message"

// edit changes the message chat_id/message_id with change and sets its
// keyboard to reply_markup; it answers as Telegram does when the message is
// gone, not the bot's, or would not change.
func (s *Server) edit(p map[string]string, change func(*Message) *apiError) (any, *apiError) {
	chat, err := s.chatParam(p)
	if err != nil {
		return nil, err
	}
	id, err := intParam(p, "message_id", 0)
	if err != nil {
		return nil, err
	}
	if id <= 0 {
		return nil, badRequest("message identifier is not specified")
	}
	kb, err := keyboardParam(p)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.messages[[2]int64{chat.ID, id}]
	if !ok {
		return nil, badRequest("message to edit not found")
	}
	if old.From == nil || old.From.ID != s.Bot.ID {
		return nil, badRequest("message can't be edited")
	}
	m := *old
	if err := change(&m); err != nil {
		return nil, err
	}
	m.ReplyMarkup = kb
	if messageText(&m) == messageText(old) && sameKeyboard(m.ReplyMarkup, old.ReplyMarkup) {
		return nil, badRequest(notModified)
	}
	m.EditDate = time.Now().Unix()
	s.storeLocked(&m)
	return &m, nil
}

// deleteMessage: https://core.telegram.org/bots/api#deletemessage.
func (s *Server) deleteMessage(p map[string]string) (any, *apiError) {
	chat, err := s.chatParam(p)
	if err != nil {
		return nil, err
	}
	id, err := intParam(p, "message_id", 0)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := [2]int64{chat.ID, id}
	if _, ok := s.messages[key]; !ok {
		return nil, badRequest("message to delete not found")
	}
	delete(s.messages, key)
	return true, nil
}

// maxCallbackData is the longest callback_data, in bytes
// (https://core.telegram.org/bots/api#inlinekeyboardbutton: "1-64 bytes").
const maxCallbackData = 64

// keyboardParam reads reply_markup as an inline keyboard, checked as
// Telegram checks it; nil when absent, empty, or another kind of markup.
func keyboardParam(p map[string]string) (*InlineKeyboard, *apiError) {
	v := p["reply_markup"]
	if v == "" {
		return nil, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(v), &raw); err != nil {
		return nil, badRequest("can't parse reply keyboard markup JSON object")
	}
	if _, ok := raw["inline_keyboard"]; !ok {
		return nil, nil // a reply keyboard, force_reply, remove_keyboard: not kept
	}
	var kb InlineKeyboard
	if err := json.Unmarshal([]byte(v), &kb); err != nil {
		return nil, badRequest("can't parse inline keyboard button: %v", err)
	}
	rows := 0
	for _, row := range kb.InlineKeyboard {
		for _, b := range row {
			switch {
			case b.Text == "":
				return nil, badRequest("BUTTON_TEXT_INVALID")
			case b.CallbackData == "" && b.URL == "":
				return nil, badRequest("text buttons are unallowed in the inline keyboard")
			case len(b.CallbackData) > maxCallbackData:
				return nil, badRequest("BUTTON_DATA_INVALID")
			}
		}
		if len(row) > 0 {
			rows++
		}
	}
	if rows == 0 {
		return nil, nil
	}
	return &kb, nil
}

func cloneKeyboard(kb *InlineKeyboard) *InlineKeyboard {
	if kb == nil {
		return nil
	}
	c := &InlineKeyboard{InlineKeyboard: make([][]InlineButton, len(kb.InlineKeyboard))}
	for i, row := range kb.InlineKeyboard {
		c.InlineKeyboard[i] = slices.Clone(row)
	}
	return c
}

func sameKeyboard(a, b *InlineKeyboard) bool {
	if a == nil || b == nil {
		return a == b
	}
	return slices.EqualFunc(a.InlineKeyboard, b.InlineKeyboard, slices.Equal)
}
