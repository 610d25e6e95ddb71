package bot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	tele "gopkg.in/telebot.v3"
)

// Button is a button of an inline keyboard that sends Data back to the bot
// as a callback query when pressed
// (https://core.telegram.org/bots/api#inlinekeyboardbutton). Data is 1-64
// bytes.
type Button struct{ Text, Data string }

// maxCallbackData is the longest callback_data Telegram takes, in bytes.
const maxCallbackData = 64

// maxAnswerLen is the longest answerCallbackQuery text, in characters
// (https://core.telegram.org/bots/api#answercallbackquery: "0-200 characters").
const maxAnswerLen = 200

// inlineKeyboard is kb as an InlineKeyboardMarkup
// (https://core.telegram.org/bots/api#inlinekeyboardmarkup); an empty kb is
// {"inline_keyboard":[]}, which leaves a message without keyboard.
func inlineKeyboard(kb [][]Button) map[string]any {
	rows := make([][]map[string]string, 0, len(kb))
	for _, row := range kb {
		r := make([]map[string]string, 0, len(row))
		for _, b := range row {
			r = append(r, map[string]string{"text": b.Text, "callback_data": b.Data})
		}
		rows = append(rows, r)
	}
	return map[string]any{"inline_keyboard": rows}
}

// checkKeyboard refuses a keyboard Telegram would refuse, with an error that
// says which button (Telegram's own answer is "BUTTON_DATA_INVALID").
func checkKeyboard(method string, kb [][]Button) error {
	for _, row := range kb {
		for _, b := range row {
			switch {
			case strings.TrimSpace(b.Text) == "":
				return fmt.Errorf("telegram %s: a button without text (data %q)", method, b.Data)
			case b.Data == "" || len(b.Data) > maxCallbackData:
				return fmt.Errorf("telegram %s: button %q: callback data must be 1-%d bytes, not %d", method, b.Text, maxCallbackData, len(b.Data))
			}
		}
	}
	return nil
}

// EditMessageText is https://core.telegram.org/bots/api#editmessagetext: the
// message's new text, and its inline keyboard o.Keyboard (a text edited
// without one loses its keyboard). An edit that changes nothing fails with
// IsNotModified, one of a deleted message with IsMessageGone.
func (c *Client) EditMessageText(ctx context.Context, chatID int64, messageID int, text string, o MessageOptions) (*tele.Message, error) {
	if err := checkKeyboard("editMessageText", o.Keyboard); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	o.ReplyTo, o.Silent = 0, false // not parameters of an edit
	p := o.params(chatID)
	p["message_id"] = messageID
	p["text"] = text
	var m tele.Message
	if err := c.callJSON(ctx, "editMessageText", p, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// EditMessageReplyMarkup is https://core.telegram.org/bots/api#editmessagereplymarkup:
// the message's inline keyboard becomes kb (nil or empty: none).
func (c *Client) EditMessageReplyMarkup(ctx context.Context, chatID int64, messageID int, kb [][]Button) error {
	if err := checkKeyboard("editMessageReplyMarkup", kb); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if kb == nil {
		kb = [][]Button{}
	}
	p := map[string]any{"chat_id": chatID, "message_id": messageID, "reply_markup": inlineKeyboard(kb)}
	return c.callJSON(ctx, "editMessageReplyMarkup", p, nil)
}

// AnswerCallbackQuery is https://core.telegram.org/bots/api#answercallbackquery:
// it ends the spinner on the button the user pressed, showing text (cut to
// 200 characters; "" shows nothing) as a notification, or as an alert the
// user must dismiss.
func (c *Client) AnswerCallbackQuery(ctx context.Context, id, text string, alert bool) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	p := map[string]any{"callback_query_id": id}
	if text != "" {
		if pieces := splitMessage(text, maxAnswerLen-1, false); len(pieces) > 1 {
			text = pieces[0] + "…"
		}
		p["text"] = text
	}
	if alert {
		p["show_alert"] = true
	}
	return c.callJSON(ctx, "answerCallbackQuery", p, nil)
}

// IsNotModified tells whether err is Telegram's 400 "message is not
// modified": the edit would leave the message as it is.
func IsNotModified(err error) bool {
	return isBadRequest(err, "message is not modified")
}

// IsMessageGone tells whether err says the message cannot be edited any
// more: deleted ("message to edit not found"), too old or not the bot's
// ("message can't be edited"), or an id Telegram does not know
// ("MESSAGE_ID_INVALID").
func IsMessageGone(err error) bool {
	return isBadRequest(err, "message to edit not found", "message can't be edited", "MESSAGE_ID_INVALID")
}

// isBadRequest tells whether err is a 400 whose description contains one of texts.
func isBadRequest(err error, texts ...string) bool {
	var e *APIError
	if !errors.As(err, &e) || e.Code != http.StatusBadRequest {
		return false
	}
	for _, t := range texts {
		if strings.Contains(e.Description, t) {
			return true
		}
	}
	return false
}
