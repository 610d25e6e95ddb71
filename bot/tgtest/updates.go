package tgtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

type queued struct {
	id  int64
	raw json.RawMessage
}

// Push queues an update for getUpdates and returns its update_id (assigned
// when u.UpdateID is 0).
func (s *Server) Push(u Update) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pushUpdateLocked(u)
}

// PushBatch queues several updates at once, so that the next getUpdates
// returns them together (as Telegram does with what piled up while the bot
// was busy), and returns their update_ids.
func (s *Server) PushBatch(us ...Update) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int64, len(us))
	for i, u := range us {
		ids[i] = s.pushUpdateLocked(u)
	}
	return ids
}

func (s *Server) pushUpdateLocked(u Update) int64 {
	if u.UpdateID == 0 {
		u.UpdateID = s.nextUpd
	}
	for _, m := range []*Message{u.Message, u.EditedMessage} {
		if m != nil {
			s.seeMessageLocked(m)
		}
	}
	if u.MyChatMember != nil {
		s.chats[u.MyChatMember.Chat.ID] = u.MyChatMember.Chat
	}
	raw, err := json.Marshal(u)
	if err != nil {
		panic(fmt.Sprintf("tgtest: marshal update: %v", err))
	}
	s.pushLocked(u.UpdateID, raw)
	return u.UpdateID
}

// PushRaw queues an update given as JSON; it must have an update_id.
func (s *Server) PushRaw(raw []byte) int64 {
	var u struct {
		UpdateID int64 `json:"update_id"`
	}
	if err := json.Unmarshal(raw, &u); err != nil || u.UpdateID == 0 {
		panic(fmt.Sprintf("tgtest: PushRaw needs a JSON update with an update_id: %v", err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pushLocked(u.UpdateID, slices.Clone(raw))
	return u.UpdateID
}

func (s *Server) pushLocked(id int64, raw []byte) {
	s.queue = append(s.queue, queued{id: id, raw: raw})
	s.nextUpd = max(s.nextUpd, id+1)
	s.notifyLocked()
}

// SetNextUpdateID makes the next pushed update take id: Telegram picks a
// random id after a week without updates
// (https://core.telegram.org/bots/api#update, update_id).
func (s *Server) SetNextUpdateID(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextUpd = id
}

// Unconfirmed returns the ids of the updates no getUpdates has confirmed yet.
func (s *Server) Unconfirmed() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int64, len(s.queue))
	for i, q := range s.queue {
		ids[i] = q.id
	}
	return ids
}

// NewMessage builds a message from `from` in chat, with the next message_id
// of that chat and the current date.
func (s *Server) NewMessage(from User, chat Chat) *Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &Message{MessageID: s.nextMessageIDLocked(chat.ID), From: &from, Chat: chat, Date: time.Now().Unix()}
}

// TextUpdate builds a text message update; a leading /command gets its
// bot_command entity, as Telegram sends it.
func (s *Server) TextUpdate(from User, chat Chat, text string) Update {
	m := s.NewMessage(from, chat)
	m.Text = text
	if strings.HasPrefix(text, "/") {
		cmd, _, _ := strings.Cut(text, " ")
		cmd, _, _ = strings.Cut(cmd, "\n")
		m.Entities = []MessageEntity{{Type: "bot_command", Offset: 0, Length: utf16Len(cmd)}}
	}
	return Update{Message: m}
}

// PushText queues a text message and returns its update_id.
func (s *Server) PushText(from User, chat Chat, text string) int64 {
	return s.Push(s.TextUpdate(from, chat, text))
}

// DocumentUpdate builds a message carrying doc with a caption.
func (s *Server) DocumentUpdate(from User, chat Chat, doc Document, caption string) Update {
	m := s.NewMessage(from, chat)
	m.Document = &doc
	m.Caption = caption
	return Update{Message: m}
}

// PushDocument stores a file named name and queues a message carrying it.
func (s *Server) PushDocument(from User, chat Chat, name string, data []byte, caption string) int64 {
	return s.Push(s.DocumentUpdate(from, chat, s.AddFile(name, data), caption))
}

// MyChatMemberUpdate builds the update Telegram sends when the bot's status
// in chat changes from oldStatus to newStatus because of from: "left" →
// "member" when added to a group, "member" → "kicked" when a user blocks it
// or a group removes it.
func (s *Server) MyChatMemberUpdate(from User, chat Chat, oldStatus, newStatus string) Update {
	return Update{MyChatMember: &ChatMemberUpdated{
		Chat: chat, From: from, Date: time.Now().Unix(),
		OldChatMember: ChatMember{Status: oldStatus, User: s.Bot},
		NewChatMember: ChatMember{Status: newStatus, User: s.Bot},
	}}
}

// MigrationUpdate builds the service message a group sends when it becomes
// the supergroup newID.
func (s *Server) MigrationUpdate(from User, group Chat, newID int64) Update {
	m := s.NewMessage(from, group)
	m.MigrateToChatID = newID
	return Update{Message: m}
}

// getUpdates: https://core.telegram.org/bots/api#getupdates. "An update is
// considered confirmed as soon as getUpdates is called with an offset higher
// than its update_id. The negative offset can be specified to retrieve
// updates starting from -offset update from the end of the updates queue. All
// previous updates will be forgotten." A newer getUpdates ends a waiting one
// with 409 Conflict.
func (s *Server) getUpdates(r *http.Request, p map[string]string) (any, *apiError) {
	offset, err := intParam(p, "offset", 0)
	if err != nil {
		return nil, err
	}
	limit, err := intParam(p, "limit", 100)
	if err != nil {
		return nil, err
	}
	limit = min(max(limit, 1), 100)
	timeout, err := intParam(p, "timeout", 0)
	if err != nil {
		return nil, err
	}
	deadline := time.NewTimer(time.Duration(max(timeout, 0)) * time.Second)
	defer deadline.Stop()

	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := p["allowed_updates"]; ok {
		var kinds []string
		if err := json.Unmarshal([]byte(v), &kinds); err != nil && v != "" {
			return nil, badRequest("can't parse allowed updates")
		}
		// "Specify an empty list to receive all update types except
		// chat_member, message_reaction, and message_reaction_count
		// (default). If not specified, the previous setting will be used."
		s.allowed = nil
		if len(kinds) > 0 {
			s.allowed = map[string]bool{}
			for _, k := range kinds {
				s.allowed[k] = true
			}
		}
	}
	s.pollGen++
	gen := s.pollGen
	switch {
	case offset > 0:
		s.queue = slices.DeleteFunc(s.queue, func(q queued) bool { return q.id < offset })
	case offset < 0:
		if keep := int(-offset); keep < len(s.queue) {
			s.queue = slices.Clone(s.queue[len(s.queue)-keep:])
		}
	}
	s.notifyLocked()
	for {
		if s.pollGen != gen {
			return nil, &apiError{code: http.StatusConflict, desc: conflictDesc}
		}
		// Kinds the bot did not ask for are never delivered.
		s.queue = slices.DeleteFunc(s.queue, func(q queued) bool { return !s.allowedLocked(q.raw) })
		if len(s.queue) > 0 || timeout <= 0 || s.closed {
			n := min(int(limit), len(s.queue))
			out := make([]json.RawMessage, n)
			for i := range n {
				out[i] = s.queue[i].raw
			}
			return out, nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			timeout = 0
		case <-r.Context().Done():
			timeout = 0
		}
		s.mu.Lock()
	}
}

// allowedLocked tells whether an update's kind passes allowed_updates.
func (s *Server) allowedLocked(raw json.RawMessage) bool {
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		return true
	}
	for k := range fields {
		if k == "update_id" {
			continue
		}
		if s.allowed == nil {
			return k != "chat_member" && k != "message_reaction" && k != "message_reaction_count"
		}
		return s.allowed[k]
	}
	return true
}
