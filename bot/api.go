package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	tele "gopkg.in/telebot.v3"

	"hpcbot/store"
)

// Client makes every Bot API call of the bot (telebot only routes updates),
// for three reasons: every call takes a context (a 50 s long poll must end at
// once on shutdown), getUpdates must hand back each update's raw JSON for the
// inbox, and errors must be typed (*APIError with retry_after) and must never
// contain the token, which is part of every Bot API URL. It is safe for
// concurrent use.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// NewClient returns a client for the Bot API server at apiURL (e.g.
// DefaultAPIURL). hc may be nil; the client sets deadlines per call through
// the context, so hc should have no Timeout shorter than a long poll.
func NewClient(apiURL, token string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: strings.TrimRight(apiURL, "/"), token: token, hc: hc}
}

// APIError is an answer of the Bot API with "ok": false
// (https://core.telegram.org/bots/api#making-requests), or an HTTP error
// status whose body was not the API's JSON (a proxy's 502 page).
type APIError struct {
	Method      string
	Code        int    // error_code, or the HTTP status
	Description string // e.g. "Forbidden: bot was blocked by the user"
	RetryAfter  time.Duration
	MigrateTo   int64 // the supergroup a group chat became
}

func (e *APIError) Error() string {
	return fmt.Sprintf("telegram %s: %s (%d)", e.Method, e.Description, e.Code)
}

// Temporary tells whether the same call may succeed later unchanged: 429 and
// 5xx. (409 Conflict on getUpdates is temporary too, but the poller handles it.)
func (e *APIError) Temporary() bool {
	return e.Code == http.StatusTooManyRequests || e.Code >= 500
}

// IsForbidden tells whether err is a 403: the user blocked the bot, or the
// bot was removed from the group. Nothing sent to that chat can arrive.
func IsForbidden(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Code == http.StatusForbidden
}

// ErrUnauthorized is wrapped by the errors of calls the Bot API refused
// with 401: the token is wrong or was revoked.
var ErrUnauthorized = errors.New("telegram refused the bot token (401 Unauthorized): check bot.token; @BotFather shows or revokes it")

// Per-call deadlines beyond a long poll's own timeout.
const (
	callTimeout   = 30 * time.Second
	uploadTimeout = 10 * time.Minute
	pollSlack     = 15 * time.Second
	maxAnswer     = 16 << 20 // bytes of one API answer we read at most
)

func (c *Client) methodURL(method string) string {
	return c.base + "/bot" + c.token + "/" + method
}

// do posts body to method and decodes the result into out (when not nil).
func (c *Client) do(ctx context.Context, method, contentType string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.methodURL(method), body)
	if err != nil {
		return fmt.Errorf("telegram %s: %w", method, c.scrub(err))
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("telegram %s: %w", method, c.scrub(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("telegram %s: read answer: %w", method, c.scrub(err))
	}
	var ans struct {
		OK          bool            `json:"ok"`
		Result      json.RawMessage `json:"result"`
		ErrorCode   int             `json:"error_code"`
		Description string          `json:"description"`
		Parameters  struct {
			RetryAfter      int   `json:"retry_after"`
			MigrateToChatID int64 `json:"migrate_to_chat_id"`
		} `json:"parameters"`
	}
	if jerr := json.Unmarshal(data, &ans); jerr != nil || (!ans.OK && ans.ErrorCode == 0) {
		if resp.StatusCode == http.StatusOK {
			return fmt.Errorf("telegram %s: the answer is not the Bot API's JSON (%.100q)", method, data)
		}
		return &APIError{Method: method, Code: resp.StatusCode, Description: http.StatusText(resp.StatusCode)}
	}
	if !ans.OK {
		e := &APIError{Method: method, Code: ans.ErrorCode, Description: ans.Description,
			RetryAfter: time.Duration(ans.Parameters.RetryAfter) * time.Second, MigrateTo: ans.Parameters.MigrateToChatID}
		if e.Code == http.StatusUnauthorized {
			return fmt.Errorf("%w: %w", ErrUnauthorized, e)
		}
		return e
	}
	if out != nil {
		if err := json.Unmarshal(ans.Result, out); err != nil {
			return fmt.Errorf("telegram %s: decode result: %w", method, err)
		}
	}
	return nil
}

// scrub takes the URL, which holds the token, out of an HTTP client error,
// and removes the token from what is left in case it was echoed.
func (c *Client) scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if c.token != "" && strings.Contains(err.Error(), c.token) {
		return errors.New(strings.ReplaceAll(err.Error(), c.token, "[token]"))
	}
	return err
}

func (c *Client) callJSON(ctx context.Context, method string, params any, out any) error {
	body, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("telegram %s: %w", method, err)
	}
	return c.do(ctx, method, "application/json", bytes.NewReader(body), out)
}

// GetUpdates long-polls for updates (https://core.telegram.org/bots/api#getupdates)
// and returns each one's id and raw JSON. offset 0 means "from the oldest
// unconfirmed update"; calling it with offset confirms every update below.
func (c *Client) GetUpdates(ctx context.Context, offset int64, limit int, timeout time.Duration, allowed []string) ([]store.RawUpdate, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout+pollSlack)
	defer cancel()
	params := map[string]any{"timeout": int(timeout / time.Second), "limit": limit}
	if offset != 0 {
		params["offset"] = offset
	}
	if allowed != nil {
		params["allowed_updates"] = allowed
	}
	var raws []json.RawMessage
	if err := c.callJSON(ctx, "getUpdates", params, &raws); err != nil {
		return nil, err
	}
	out := make([]store.RawUpdate, 0, len(raws))
	for _, raw := range raws {
		var u struct {
			ID *int64 `json:"update_id"`
		}
		if err := json.Unmarshal(raw, &u); err != nil || u.ID == nil {
			return nil, fmt.Errorf("telegram getUpdates: an update without update_id: %.200s", raw)
		}
		out = append(out, store.RawUpdate{ID: *u.ID, Raw: raw})
	}
	return out, nil
}

// MessageOptions are the optional parameters of a send.
type MessageOptions struct {
	ParseMode string // "HTML", or "" for plain text
	ReplyTo   int    // message_id to answer; sent with allow_sending_without_reply
	// Keyboard is an inline keyboard (reply_markup), rows of buttons: the
	// one keyboard hpcbot sends. nil: no keyboard; on an edit, nil or
	// an empty slice leaves the message without one (Telegram removes the
	// keyboard of a text edited without reply_markup).
	Keyboard       [][]Button
	DisablePreview bool
	Silent         bool
}

func (o MessageOptions) params(chatID int64) map[string]any {
	p := map[string]any{"chat_id": chatID}
	if o.ParseMode != "" {
		p["parse_mode"] = o.ParseMode
	}
	if o.ReplyTo != 0 {
		p["reply_to_message_id"] = o.ReplyTo
		p["allow_sending_without_reply"] = true
	}
	if o.Keyboard != nil {
		p["reply_markup"] = inlineKeyboard(o.Keyboard)
	}
	if o.DisablePreview {
		p["disable_web_page_preview"] = true
	}
	if o.Silent {
		p["disable_notification"] = true
	}
	return p
}

// SendMessage is https://core.telegram.org/bots/api#sendmessage.
func (c *Client) SendMessage(ctx context.Context, chatID int64, text string, o MessageOptions) (*tele.Message, error) {
	if err := checkKeyboard("sendMessage", o.Keyboard); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	p := o.params(chatID)
	p["text"] = text
	var m tele.Message
	if err := c.callJSON(ctx, "sendMessage", p, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// OutFile is a file to send as a document or a photo: the bytes in Data, or
// the local file at Path, or a file Telegram already holds (FileID).
type OutFile struct {
	Photo  bool   // sendPhoto instead of sendDocument
	Name   string // the file name the chat shows; base of Path when empty
	Path   string
	Data   []byte
	FileID string
}

func (f OutFile) name() string {
	if f.Name != "" {
		return f.Name
	}
	if f.Path != "" {
		return f.Path[strings.LastIndexAny(f.Path, `/\`)+1:]
	}
	return "file"
}

// SendFile is https://core.telegram.org/bots/api#senddocument (or #sendphoto):
// a multipart upload, streamed from disk for a Path.
func (c *Client) SendFile(ctx context.Context, chatID int64, f OutFile, caption string, o MessageOptions) (*tele.Message, error) {
	method, field := "sendDocument", "document"
	if f.Photo {
		method, field = "sendPhoto", "photo"
	}
	if err := checkKeyboard(method, o.Keyboard); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, uploadTimeout)
	defer cancel()
	p := o.params(chatID)
	if caption != "" {
		p["caption"] = caption
	}
	var m tele.Message
	if f.FileID != "" {
		p[field] = f.FileID
		if err := c.callJSON(ctx, method, p, &m); err != nil {
			return nil, err
		}
		return &m, nil
	}
	var src io.Reader = bytes.NewReader(f.Data)
	if f.Path != "" {
		file, err := os.Open(f.Path)
		if err != nil {
			return nil, fmt.Errorf("telegram %s: %w", method, err)
		}
		defer file.Close()
		src = file
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		pw.CloseWithError(writeMultipart(mw, p, field, f.name(), src))
	}()
	err := c.do(ctx, method, mw.FormDataContentType(), pr, &m)
	pr.CloseWithError(errors.New("request ended"))
	if err != nil {
		return nil, err
	}
	return &m, nil
}

func writeMultipart(mw *multipart.Writer, params map[string]any, field, name string, src io.Reader) error {
	for k, v := range params {
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case int:
			s = strconv.Itoa(v)
		case int64:
			s = strconv.FormatInt(v, 10)
		case bool:
			s = strconv.FormatBool(v)
		default:
			b, err := json.Marshal(v)
			if err != nil {
				return err
			}
			s = string(b)
		}
		if err := mw.WriteField(k, s); err != nil {
			return err
		}
	}
	part, err := mw.CreateFormFile(field, name)
	if err != nil {
		return err
	}
	if _, err := io.Copy(part, src); err != nil {
		return err
	}
	return mw.Close()
}

// isNetError tells whether err is a transport failure (connection refused or
// reset, timeout, broken answer) rather than an answer of the API.
func isNetError(err error) bool {
	var ne net.Error
	var ae *APIError
	return !errors.As(err, &ae) && (errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF))
}
