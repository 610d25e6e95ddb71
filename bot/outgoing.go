// outgoing.go: what the sender sends (Outgoing) and the options of a send.

package bot

import (
	"strings"
	"time"

	tele "gopkg.in/telebot.v3"
)

// Escape makes a user-supplied string safe inside a text in Telegram's HTML
// parse mode: "All <, > and & symbols that are not a part of a tag or an HTML
// entity must be replaced with the corresponding HTML entities"
// (core.telegram.org/bots/api#html-style); quotes too, for attributes.
func Escape(s string) string { return tgEscaper.Replace(s) }

var tgEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")

// Outgoing is one message for the Sender: a text, files, or a text followed
// by files. Texts and captions are in Telegram's HTML parse mode (escape what
// users wrote with Escape) unless Plain is set; a text over 4096 characters is
// sent as several messages cut at line breaks, and a caption over 1024 goes
// on in text messages after its file.
type Outgoing struct {
	ChatID         int64
	Text           string
	Files          []OutFile
	Caption        string     // of the first file
	Plain          bool       // no parse mode
	ReplyTo        int        // message_id the first part answers
	Keyboard       [][]Button // inline keyboard of the last part
	DisablePreview bool
	Silent         bool
	// At is when the event the message reports happened (its line's time in
	// a merged message, see SenderOptions.Merge); zero: when it was queued.
	At time.Time
	// Sent, when set, is called with the message of the last part once
	// Telegram accepted it (by the chat's worker, before the message counts
	// as sent: an outbox item is marked done after it returns), so that the
	// caller can keep the message's id (the calculation's card).
	Sent func(*tele.Message)

	edit int // message_id whose text and keyboard become Text and Keyboard (Sender.Edit)
}

// SendOption adjusts an Outgoing.
type SendOption func(*Outgoing)

// Plain sends the text without parse mode.
func Plain() SendOption { return func(o *Outgoing) { o.Plain = true } }

// ReplyTo makes the message an answer to messageID.
func ReplyTo(messageID int) SendOption { return func(o *Outgoing) { o.ReplyTo = messageID } }

// WithKeyboard attaches an inline keyboard to the last part.
func WithKeyboard(kb [][]Button) SendOption { return func(o *Outgoing) { o.Keyboard = kb } }

// NoPreview turns link previews off.
func NoPreview() SendOption { return func(o *Outgoing) { o.DisablePreview = true } }

// Silent sends without notification sound.
func Silent() SendOption { return func(o *Outgoing) { o.Silent = true } }
