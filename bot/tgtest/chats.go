package tgtest

import (
	"encoding/json"
	"strconv"
)

// CommandScope is https://core.telegram.org/bots/api#botcommandscope.
type CommandScope struct {
	Type   string `json:"type"`
	ChatID int64  `json:"chat_id,omitempty"`
	UserID int64  `json:"user_id,omitempty"`
}

type commandsKey struct {
	scope CommandScope
	lang  string
}

// SetChatMember sets what getChatMember answers for (chatID, m.User.ID).
func (s *Server) SetChatMember(chatID int64, m ChatMember) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.members[[2]int64{chatID, m.User.ID}] = m
}

// Commands returns the commands set for scope and language ("" for all languages).
func (s *Server) Commands(scope CommandScope, lang string) ([]BotCommand, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.commands[commandsKey{scope, lang}]
	return c, ok
}

// Left tells whether the bot called leaveChat for chatID.
func (s *Server) Left(chatID int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.left[chatID]
}

func (s *Server) chatParam(p map[string]string) (Chat, *apiError) {
	v := p["chat_id"]
	if v == "" {
		return Chat{}, badRequest("chat_id is empty")
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return Chat{}, badRequest("chat not found")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.chats[id]; ok {
		return c, nil
	}
	// A chat the tests never showed the server: accepted, like a chat the
	// bot knows from before the test.
	if id > 0 {
		return Chat{ID: id, Type: "private"}, nil
	}
	return Chat{ID: id, Type: "group"}, nil
}

func (s *Server) getChatMember(p map[string]string) (any, *apiError) {
	chat, err := s.chatParam(p)
	if err != nil {
		return nil, err
	}
	uid, err := intParam(p, "user_id", 0)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.members[[2]int64{chat.ID, uid}]; ok {
		return m, nil
	}
	return ChatMember{Status: "member", User: User{ID: uid, FirstName: "user"}}, nil
}

// myCommands: https://core.telegram.org/bots/api#setmycommands, #getmycommands,
// #deletemycommands; "At most 100 commands can be specified"; command "1-32
// characters. Can contain only lowercase English letters, digits and
// underscores"; description "1-256 characters".
func (s *Server) myCommands(method string, p map[string]string) (any, *apiError) {
	scope := CommandScope{Type: "default"}
	if v := p["scope"]; v != "" {
		if err := json.Unmarshal([]byte(v), &scope); err != nil || scope.Type == "" {
			return nil, badRequest("can't parse BotCommandScope")
		}
	}
	key := commandsKey{scope, p["language_code"]}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch method {
	case "getmycommands":
		cmds := s.commands[key]
		if cmds == nil {
			cmds = []BotCommand{}
		}
		return cmds, nil
	case "deletemycommands":
		delete(s.commands, key)
		return true, nil
	}
	var cmds []BotCommand
	if err := json.Unmarshal([]byte(p["commands"]), &cmds); err != nil {
		return nil, badRequest("can't parse commands JSON object")
	}
	if len(cmds) > 100 {
		return nil, badRequest("BOT_COMMANDS_TOO_MUCH")
	}
	for _, c := range cmds {
		if !validCommand(c.Command) {
			return nil, badRequest("BOT_COMMAND_INVALID")
		}
		if n := utf16Len(c.Description); n < 1 || n > 256 {
			return nil, badRequest("BOT_COMMAND_DESCRIPTION_INVALID")
		}
	}
	if len(cmds) == 0 {
		delete(s.commands, key)
	} else {
		s.commands[key] = cmds
	}
	return true, nil
}

func validCommand(c string) bool {
	if len(c) < 1 || len(c) > 32 {
		return false
	}
	for _, r := range c {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}
