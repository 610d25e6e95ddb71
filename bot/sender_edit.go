package bot

import (
	"context"
	"fmt"
)

// Edit changes the text (HTML) and the inline keyboard (nil: none) of the
// bot's message messageID in chatID, and waits until the sender is done with
// it (Telegram applied it, or the sender gave up: after FloodWaits 429s or
// Attempts failures) or ctx ends: unlike Send, not only ReplyTimeout, so that
// a caller that edits again after Edit returned never has two edits of one
// message queued. The edit is paced
// in the chat's budget with the sends (Telegram counts edits against the same
// limits) and queued behind what was queued for the chat before it; a 429 is
// waited out (retry_after) and 5xx or network errors retried like a send. An
// edit that would change nothing returns nil. The message being gone returns
// an error for which IsMessageGone holds. A text over 4096 characters is cut.
func (s *Sender) Edit(ctx context.Context, chatID int64, messageID int, text string, kb [][]Button) error {
	if messageID <= 0 {
		return fmt.Errorf("telegram edit in %d: no message id", chatID)
	}
	return s.deliverWithin(ctx, Outgoing{ChatID: chatID, Text: text, Keyboard: kb, edit: messageID}, 0)
}

// editParts is the one call of an edit: the text cut to one message.
func editParts(o Outgoing, base MessageOptions) []sendPart {
	pieces := splitMessage(o.Text, maxTextLen-1, !o.Plain)
	if len(pieces) == 0 {
		return nil
	}
	text := pieces[0]
	if len(pieces) > 1 {
		text += "…"
	}
	base.Keyboard = o.Keyboard
	return []sendPart{{text: text, edit: o.edit, opts: base}}
}
