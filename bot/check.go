package bot

import (
	"context"

	tele "gopkg.in/telebot.v3"
)

// GetMe returns the bot the token belongs to
// (https://core.telegram.org/bots/api#getme); `hpcbot check` proves the token
// with it. A refused token's error wraps ErrUnauthorized.
func (c *Client) GetMe(ctx context.Context) (*tele.User, error) {
	var me tele.User
	if err := c.callJSON(ctx, "getMe", map[string]any{}, &me); err != nil {
		return nil, err
	}
	return &me, nil
}
