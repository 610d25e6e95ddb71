package bot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	tele "gopkg.in/telebot.v3"
)

// GetMe returns the bot the token belongs to
// (https://core.telegram.org/bots/api#getme): Run connects with it, and
// `hpcbot check` proves the token with it. A refused token's error wraps
// ErrUnauthorized.
func (c *Client) GetMe(ctx context.Context) (*tele.User, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var u tele.User
	if err := c.callJSON(ctx, "getMe", map[string]any{}, &u); err != nil {
		return nil, err
	}
	if u.ID == 0 {
		return nil, errors.New("telegram getMe: the answer names no user")
	}
	return &u, nil
}

// GetFile is https://core.telegram.org/bots/api#getfile: the file's size and
// its file_path for DownloadFile (an absolute path on this host from a local
// Bot API server).
func (c *Client) GetFile(ctx context.Context, fileID string) (tele.File, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var f tele.File
	if err := c.callJSON(ctx, "getFile", map[string]any{"file_id": fileID}, &f); err != nil {
		return tele.File{}, err
	}
	if f.FilePath == "" {
		return tele.File{}, errors.New("telegram getFile: the answer has no file_path")
	}
	return f, nil
}

// DownloadFile opens a file getFile named, at
// <server>/file/bot<token>/<file_path> (https://core.telegram.org/bots/api#getfile),
// with the client's HTTP client; ctx bounds the whole download. The caller
// closes the body. Errors never contain the token.
func (c *Client) DownloadFile(ctx context.Context, filePath string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/file/bot"+c.token+"/"+filePath, nil)
	if err != nil {
		return nil, fmt.Errorf("telegram download: %w", c.scrub(err))
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("telegram download: %w", c.scrub(err))
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, &APIError{Method: "download", Code: resp.StatusCode, Description: http.StatusText(resp.StatusCode)}
	}
	return resp.Body, nil
}

// SetMyCommands is https://core.telegram.org/bots/api#setmycommands: the
// command menu for scope, in language lang ("": every language without its own).
func (c *Client) SetMyCommands(ctx context.Context, cmds []tele.Command, scope tele.CommandScope, lang string) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if cmds == nil {
		cmds = []tele.Command{}
	}
	p := map[string]any{"commands": cmds, "scope": scope}
	if lang != "" {
		p["language_code"] = lang
	}
	return c.callJSON(ctx, "setMyCommands", p, nil)
}

// LeaveChat is https://core.telegram.org/bots/api#leavechat.
func (c *Client) LeaveChat(ctx context.Context, chatID int64) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	return c.callJSON(ctx, "leaveChat", map[string]any{"chat_id": chatID}, nil)
}
