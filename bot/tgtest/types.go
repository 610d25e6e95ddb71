package tgtest

// The wire types below are the subset of https://core.telegram.org/bots/api
// ("Available types") that hpcbot receives, with the same JSON field names.
// They are written out here rather than borrowed from telebot, so that
// decoding the real JSON is part of what the tests check.

// User is https://core.telegram.org/bots/api#user.
type User struct {
	ID           int64  `json:"id"`
	IsBot        bool   `json:"is_bot"`
	FirstName    string `json:"first_name"`
	LastName     string `json:"last_name,omitempty"`
	Username     string `json:"username,omitempty"`
	LanguageCode string `json:"language_code,omitempty"`
}

// Chat is https://core.telegram.org/bots/api#chat. Type is "private",
// "group", "supergroup" or "channel"; group ids are negative.
type Chat struct {
	ID        int64  `json:"id"`
	Type      string `json:"type"`
	Title     string `json:"title,omitempty"`
	Username  string `json:"username,omitempty"`
	FirstName string `json:"first_name,omitempty"`
	LastName  string `json:"last_name,omitempty"`
}

// Private is the private chat with u (its id is the user's id).
func Private(u User) Chat {
	return Chat{ID: u.ID, Type: "private", Username: u.Username, FirstName: u.FirstName, LastName: u.LastName}
}

// Group is a basic group chat; id must be negative.
func Group(id int64, title string) Chat {
	return Chat{ID: id, Type: "group", Title: title}
}

// Supergroup is a supergroup chat (ids look like -100xxxxxxxxxx).
func Supergroup(id int64, title string) Chat {
	return Chat{ID: id, Type: "supergroup", Title: title}
}

// MessageEntity is https://core.telegram.org/bots/api#messageentity. Offset
// and Length count UTF-16 code units.
type MessageEntity struct {
	Type   string `json:"type"`
	Offset int    `json:"offset"`
	Length int    `json:"length"`
}

// Document is https://core.telegram.org/bots/api#document.
type Document struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	FileName     string `json:"file_name,omitempty"`
	MimeType     string `json:"mime_type,omitempty"`
	FileSize     int64  `json:"file_size,omitempty"`
}

// PhotoSize is https://core.telegram.org/bots/api#photosize.
type PhotoSize struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	FileSize     int64  `json:"file_size,omitempty"`
}

// Message is https://core.telegram.org/bots/api#message.
type Message struct {
	MessageID         int64           `json:"message_id"`
	From              *User           `json:"from,omitempty"`
	SenderChat        *Chat           `json:"sender_chat,omitempty"` // sent on behalf of a chat: an anonymous group admin, a channel
	Chat              Chat            `json:"chat"`
	Date              int64           `json:"date"`
	EditDate          int64           `json:"edit_date,omitempty"`
	ReplyToMessage    *Message        `json:"reply_to_message,omitempty"`
	Text              string          `json:"text,omitempty"`
	Entities          []MessageEntity `json:"entities,omitempty"`
	Caption           string          `json:"caption,omitempty"`
	CaptionEntities   []MessageEntity `json:"caption_entities,omitempty"`
	Document          *Document       `json:"document,omitempty"`
	Photo             []PhotoSize     `json:"photo,omitempty"`
	NewChatMembers    []User          `json:"new_chat_members,omitempty"`
	LeftChatMember    *User           `json:"left_chat_member,omitempty"`
	GroupChatCreated  bool            `json:"group_chat_created,omitempty"`
	MigrateToChatID   int64           `json:"migrate_to_chat_id,omitempty"`
	MigrateFromChatID int64           `json:"migrate_from_chat_id,omitempty"`
	ForwardOrigin     any             `json:"forward_origin,omitempty"`
	ReplyMarkup       *InlineKeyboard `json:"reply_markup,omitempty"` // the inline keyboard under the message
}

// InlineKeyboard is https://core.telegram.org/bots/api#inlinekeyboardmarkup.
type InlineKeyboard struct {
	InlineKeyboard [][]InlineButton `json:"inline_keyboard"`
}

// InlineButton is https://core.telegram.org/bots/api#inlinekeyboardbutton
// (the kinds hpcbot uses: callback_data, url).
type InlineButton struct {
	Text         string `json:"text"`
	CallbackData string `json:"callback_data,omitempty"`
	URL          string `json:"url,omitempty"`
}

// ChatMember is https://core.telegram.org/bots/api#chatmember. Status is
// "creator", "administrator", "member", "restricted", "left" or "kicked".
type ChatMember struct {
	Status string `json:"status"`
	User   User   `json:"user"`
}

// ChatMemberUpdated is https://core.telegram.org/bots/api#chatmemberupdated
// (the my_chat_member update: the bot's own membership changed, for example
// it was added to a group or a user blocked it).
type ChatMemberUpdated struct {
	Chat          Chat       `json:"chat"`
	From          User       `json:"from"`
	Date          int64      `json:"date"`
	OldChatMember ChatMember `json:"old_chat_member"`
	NewChatMember ChatMember `json:"new_chat_member"`
}

// CallbackQuery is https://core.telegram.org/bots/api#callbackquery.
type CallbackQuery struct {
	ID           string   `json:"id"`
	From         User     `json:"from"`
	Message      *Message `json:"message,omitempty"`
	ChatInstance string   `json:"chat_instance"`
	Data         string   `json:"data,omitempty"`
}

// Update is https://core.telegram.org/bots/api#update. Exactly one of the
// optional fields is set.
type Update struct {
	UpdateID      int64              `json:"update_id"`
	Message       *Message           `json:"message,omitempty"`
	EditedMessage *Message           `json:"edited_message,omitempty"`
	MyChatMember  *ChatMemberUpdated `json:"my_chat_member,omitempty"`
	ChatMember    *ChatMemberUpdated `json:"chat_member,omitempty"`
	CallbackQuery *CallbackQuery     `json:"callback_query,omitempty"`
}

// File is https://core.telegram.org/bots/api#file, as getFile answers.
type File struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	FileSize     int64  `json:"file_size,omitempty"`
	FilePath     string `json:"file_path,omitempty"`
}

// BotCommand is https://core.telegram.org/bots/api#botcommand.
type BotCommand struct {
	Command     string `json:"command"`
	Description string `json:"description"`
}
