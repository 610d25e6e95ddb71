package tgtest

import (
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
)

func (s *Server) seeMessageLocked(m *Message) {
	s.chats[m.Chat.ID] = m.Chat
	s.msgIDs[m.Chat.ID] = max(s.msgIDs[m.Chat.ID], m.MessageID)
	text := m.Text
	if text == "" {
		text = m.Caption
	}
	s.messages[[2]int64{m.Chat.ID, m.MessageID}] = text
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

func (s *Server) newSentLocked(chat Chat, text string) *Message {
	m := &Message{MessageID: s.nextMessageIDLocked(chat.ID), From: &s.Bot, Chat: chat, Date: time.Now().Unix()}
	s.messages[[2]int64{chat.ID, m.MessageID}] = text
	return m
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
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.newSentLocked(chat, text)
	m.Text = text
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
	m := s.newSentLocked(chat, p["caption"])
	m.Caption = p["caption"]
	if field == "photo" {
		m.Photo = []PhotoSize{{FileID: doc.FileID, FileUniqueID: doc.FileUniqueID, Width: 800, Height: 600, FileSize: doc.FileSize}}
	} else {
		m.Document = &doc
	}
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
	text, ok := s.messages[[2]int64{from, id}]
	if !ok {
		return nil, badRequest("message to forward not found")
	}
	m := s.newSentLocked(chat, text)
	if cp {
		return map[string]int64{"message_id": m.MessageID}, nil
	}
	m.Text = text
	m.ForwardOrigin = map[string]any{"type": "chat", "date": m.Date, "sender_chat": s.chats[from]}
	return m, nil
}

// editMessageText: https://core.telegram.org/bots/api#editmessagetext.
func (s *Server) editMessageText(p map[string]string) (any, *apiError) {
	if p["inline_message_id"] != "" {
		return true, nil
	}
	chat, err := s.chatParam(p)
	if err != nil {
		return nil, err
	}
	id, err := intParam(p, "message_id", 0)
	if err != nil {
		return nil, err
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
	s.mu.Lock()
	defer s.mu.Unlock()
	key := [2]int64{chat.ID, id}
	old, ok := s.messages[key]
	if !ok {
		return nil, badRequest("message to edit not found")
	}
	if old == text {
		return nil, badRequest("message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message")
	}
	s.messages[key] = text
	return &Message{MessageID: id, From: &s.Bot, Chat: chat, Date: time.Now().Unix(), EditDate: time.Now().Unix(), Text: text}, nil
}

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
