package tgtest

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Limits of the public Bot API server (https://core.telegram.org/bots/api#sendmessage,
// #senddocument, #getfile).
const (
	MaxTextLen     = 4096     // sendMessage text, after entity parsing
	MaxCaptionLen  = 1024     // caption, after entity parsing
	MaxUploadSize  = 50 << 20 // multipart upload
	MaxDownloadLen = 20 << 20 // getFile
)

// WaitTimeout bounds Server.Wait: a deadlock guard, not a speed assertion.
var WaitTimeout = 60 * time.Second

// DefaultToken is the token New gives the fake bot.
const DefaultToken = "123456789:AAFakeTokenForTestsOnly-abcdefghijkl"

// Upload is a file sent to the server as a multipart part.
type Upload struct {
	Name string // the part's file name
	Data []byte
}

// Call is one request the server received.
type Call struct {
	Method string            // as the client spelled it (method names are case-insensitive)
	Params map[string]string // JSON strings unquoted; numbers, objects and arrays as raw JSON
	Files  map[string]Upload // multipart file parts by field name
	Time   time.Time         // arrival
	Code   int               // HTTP status answered (0 while a long poll waits; -1 dropped)
}

// ChatID is the call's chat_id (0 when absent or not a number).
func (c Call) ChatID() int64 {
	id, _ := strconv.ParseInt(c.Params["chat_id"], 10, 64)
	return id
}

// Text is the call's text, or its caption.
func (c Call) Text() string {
	if t, ok := c.Params["text"]; ok {
		return t
	}
	return c.Params["caption"]
}

// OK tells whether the call was answered with "ok": true.
func (c Call) OK() bool { return c.Code == http.StatusOK }

// Fault makes the server answer matching calls with an error instead of doing them.
type Fault struct {
	Method string // case-insensitive; "" matches every method
	ChatID int64  // 0 matches any chat (and calls without chat_id)
	Times  int    // how many matching calls it answers; 0 means all of them, for good

	Code        int    // error_code and HTTP status
	Description string // e.g. "Too Many Requests: retry after 3"
	RetryAfter  int    // parameters.retry_after
	MigrateTo   int64  // parameters.migrate_to_chat_id
	Body        string // answer this raw body instead of JSON (a proxy's HTML error page)
	Drop        bool   // close the connection without answering
}

// TooManyRequests answers the next times calls of method with 429 and
// retry_after, as Telegram's flood control does
// (https://core.telegram.org/bots/api#responseparameters).
func TooManyRequests(method string, times, retryAfter int) Fault {
	return Fault{Method: method, Times: times, Code: http.StatusTooManyRequests,
		Description: fmt.Sprintf("Too Many Requests: retry after %d", retryAfter), RetryAfter: retryAfter}
}

// ServerError answers the next times calls of method with 500.
func ServerError(method string, times int) Fault {
	return Fault{Method: method, Times: times, Code: http.StatusInternalServerError, Description: "Internal Server Error"}
}

// BadGateway answers the next times calls of method with the HTML 502 page
// of the proxy in front of the Bot API.
func BadGateway(method string, times int) Fault {
	return Fault{Method: method, Times: times, Code: http.StatusBadGateway,
		Body: "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n"}
}

// Blocked answers every call for chatID with 403, as when the user blocked the bot.
func Blocked(chatID int64) Fault {
	return Fault{ChatID: chatID, Code: http.StatusForbidden, Description: "Forbidden: bot was blocked by the user"}
}

// Kicked answers every call for the group chatID with 403, as when the bot was removed.
func Kicked(chatID int64) Fault {
	return Fault{ChatID: chatID, Code: http.StatusForbidden, Description: "Forbidden: bot was kicked from the group chat"}
}

// Conflict answers the next times getUpdates with 409, as when another
// process polls with the same token.
func Conflict(times int) Fault {
	return Fault{Method: "getUpdates", Times: times, Code: http.StatusConflict, Description: conflictDesc}
}

// Drop closes the connection of the next times calls of method without an answer.
func Drop(method string, times int) Fault {
	return Fault{Method: method, Times: times, Drop: true}
}

const conflictDesc = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"

type storedFile struct {
	File
	data []byte
}

type queued struct {
	id  int64
	raw json.RawMessage
}

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

// Server is the fake Bot API. Its methods are safe for concurrent use.
type Server struct {
	URL   string // base URL: tele.Settings{URL: s.URL}
	Token string
	Bot   User // what getMe answers

	srv *httptest.Server

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every change
	closed   bool
	calls    []Call
	queue    []queued // unconfirmed updates, in the order pushed
	nextUpd  int64
	pollGen  int64
	msgIDs   map[int64]int64         // last message id per chat
	messages map[[2]int64]string     // texts of known messages by (chat, message id)
	chats    map[int64]Chat          // chats seen in updates
	left     map[int64]bool          // chats the bot left
	members  map[[2]int64]ChatMember // getChatMember answers by (chat, user)
	files    map[string]*storedFile  // by file_id
	paths    map[string]*storedFile  // by file_path
	commands map[commandsKey][]BotCommand
	faults   []*Fault
	nextFile int
	maxDown  int64           // getFile's size limit; 0: none
	allowed  map[string]bool // allowed_updates; nil: Telegram's default
}

// New starts a fake Bot API server, closed when the test ends.
func New(t testing.TB) *Server {
	s := &Server{
		Token:    DefaultToken,
		Bot:      User{ID: 123456789, IsBot: true, FirstName: "hpcbot test", Username: "hpcbot_test_bot"},
		maxDown:  MaxDownloadLen,
		changed:  make(chan struct{}),
		nextUpd:  100000,
		msgIDs:   map[int64]int64{},
		messages: map[[2]int64]string{},
		chats:    map[int64]Chat{},
		left:     map[int64]bool{},
		members:  map[[2]int64]ChatMember{},
		files:    map[string]*storedFile{},
		paths:    map[string]*storedFile{},
		commands: map[commandsKey][]BotCommand{},
	}
	s.srv = httptest.NewServer(s)
	s.URL = s.srv.URL
	t.Cleanup(s.Close)
	return s
}

// Close wakes waiting long polls and stops the server.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.notifyLocked()
	s.mu.Unlock()
	s.srv.CloseClientConnections()
	s.srv.Close()
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Inject adds a fault; faults are tried in the order added.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Calls returns the calls of the given methods (all calls when none is
// given), in arrival order.
func (s *Server) Calls(methods ...string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return filterCalls(s.calls, methods)
}

func filterCalls(calls []Call, methods []string) []Call {
	var out []Call
	for _, c := range calls {
		if len(methods) == 0 || slices.ContainsFunc(methods, func(m string) bool { return strings.EqualFold(m, c.Method) }) {
			out = append(out, c)
		}
	}
	return out
}

// sendMethods deliver something to a chat.
var sendMethods = []string{"sendMessage", "sendDocument", "sendPhoto", "forwardMessage", "copyMessage"}

// Sent returns the successful calls that delivered something to chatID
// (sendMessage, sendDocument, sendPhoto, forwardMessage, copyMessage).
func (s *Server) Sent(chatID int64) []Call {
	var out []Call
	for _, c := range s.Calls(sendMethods...) {
		if c.OK() && c.ChatID() == chatID {
			out = append(out, c)
		}
	}
	return out
}

// Wait blocks until cond holds for the calls so far, and fails the test
// after WaitTimeout (a guard against a hang, not a speed check). Call it
// from the test's goroutine.
func (s *Server) Wait(t testing.TB, cond func(calls []Call) bool) []Call {
	t.Helper()
	timer := time.NewTimer(WaitTimeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		calls := slices.Clone(s.calls)
		ch := s.changed
		s.mu.Unlock()
		if cond(calls) {
			return calls
		}
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("tgtest: condition not met after %v; calls:\n%s", WaitTimeout, summary(calls))
			return nil
		}
	}
}

// WaitCalls waits until n successful calls of method were answered and returns them.
func (s *Server) WaitCalls(t testing.TB, method string, n int) []Call {
	t.Helper()
	var out []Call
	s.Wait(t, func(calls []Call) bool {
		out = out[:0]
		for _, c := range filterCalls(calls, []string{method}) {
			if c.OK() {
				out = append(out, c)
			}
		}
		return len(out) >= n
	})
	return out
}

func summary(calls []Call) string {
	var b strings.Builder
	for _, c := range calls {
		fmt.Fprintf(&b, "  %s %s %d chat=%s %.60q\n", c.Time.Format("15:04:05.000"), c.Method, c.Code, c.Params["chat_id"], c.Text())
	}
	return b.String()
}

// ---- updates ----

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

// AddFile stores data as a file Telegram holds, for getFile and the download path.
func (s *Server) AddFile(name string, data []byte) Document {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addFileLocked(name, data, "documents")
}

func (s *Server) addFileLocked(name string, data []byte, dir string) Document {
	s.nextFile++
	id := fmt.Sprintf("BQACAgIAAxkBAAI%06d", s.nextFile)
	f := &storedFile{
		File: File{FileID: id, FileUniqueID: fmt.Sprintf("AgAD%06d", s.nextFile), FileSize: int64(len(data)),
			FilePath: fmt.Sprintf("%s/file_%d%s", dir, s.nextFile, path.Ext(name))},
		data: slices.Clone(data),
	}
	s.files[id] = f
	s.paths[f.FilePath] = f
	mt := mime.TypeByExtension(path.Ext(name))
	if mt == "" {
		mt = "application/octet-stream"
	}
	return Document{FileID: id, FileUniqueID: f.FileUniqueID, FileName: name, MimeType: mt, FileSize: int64(len(data))}
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

// SetMaxDownload sets getFile's size limit (MaxDownloadLen at first); 0 lifts
// it, as a local Bot API server does.
func (s *Server) SetMaxDownload(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxDown = n
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

// ---- HTTP ----

type apiError struct {
	code   int
	desc   string
	params map[string]any
}

func (e *apiError) Error() string { return e.desc }

func badRequest(format string, a ...any) *apiError {
	return &apiError{code: http.StatusBadRequest, desc: "Bad Request: " + fmt.Sprintf(format, a...)}
}

// ServeHTTP answers one Bot API request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if rest, ok := strings.CutPrefix(r.URL.Path, "/file/bot"); ok {
		s.serveFile(w, rest)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/bot")
	i := strings.LastIndexByte(rest, '/')
	if !ok || i < 0 {
		writeJSON(w, http.StatusNotFound, map[string]any{"ok": false, "error_code": 404, "description": "Not Found"})
		return
	}
	token, method := rest[:i], rest[i+1:]
	params, files, perr := parseParams(r)
	s.mu.Lock()
	idx := len(s.calls)
	s.calls = append(s.calls, Call{Method: method, Params: params, Files: files, Time: time.Now()})
	s.notifyLocked()
	var fault *Fault
	if token == s.Token && perr == nil {
		fault = s.matchFaultLocked(method, params)
	}
	s.mu.Unlock()

	var result any
	var err *apiError
	switch {
	case token != s.Token:
		err = &apiError{code: http.StatusUnauthorized, desc: "Unauthorized"}
	case perr != nil:
		err = badRequest("%v", perr)
	case fault != nil && fault.Drop:
		s.setCode(idx, -1)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, herr := hj.Hijack(); herr == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	case fault != nil && fault.Body != "":
		s.setCode(idx, fault.Code)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(fault.Code)
		io.WriteString(w, fault.Body)
		return
	case fault != nil:
		err = &apiError{code: fault.Code, desc: fault.Description, params: map[string]any{}}
		if fault.RetryAfter > 0 {
			err.params["retry_after"] = fault.RetryAfter
		}
		if fault.MigrateTo != 0 {
			err.params["migrate_to_chat_id"] = fault.MigrateTo
		}
	default:
		result, err = s.call(r, strings.ToLower(method), params, files)
	}
	if err != nil {
		body := map[string]any{"ok": false, "error_code": err.code, "description": err.desc}
		if len(err.params) > 0 {
			body["parameters"] = err.params
		}
		s.setCode(idx, err.code)
		writeJSON(w, err.code, body)
		return
	}
	s.setCode(idx, http.StatusOK)
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "result": result})
}

func (s *Server) setCode(idx, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[idx].Code = code
	s.notifyLocked()
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func (s *Server) matchFaultLocked(method string, params map[string]string) *Fault {
	chat, _ := strconv.ParseInt(params["chat_id"], 10, 64)
	for i, f := range s.faults {
		if f.Method != "" && !strings.EqualFold(f.Method, method) {
			continue
		}
		if f.ChatID != 0 && f.ChatID != chat {
			continue
		}
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
		}
		return f
	}
	return nil
}

// parseParams reads the parameters the ways https://core.telegram.org/bots/api#making-requests
// allows: query string, urlencoded form, JSON, multipart form.
func parseParams(r *http.Request) (map[string]string, map[string]Upload, error) {
	params := map[string]string{}
	for k, v := range r.URL.Query() {
		params[k] = v[0]
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		var m map[string]json.RawMessage
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, nil, err
		}
		if len(strings.TrimSpace(string(body))) > 0 && string(body) != "null\n" && string(body) != "null" {
			if err := json.Unmarshal(body, &m); err != nil {
				return nil, nil, fmt.Errorf("can't parse JSON object: %v", err)
			}
		}
		for k, v := range m {
			var str string
			switch {
			case string(v) == "null":
			case json.Unmarshal(v, &str) == nil:
				params[k] = str
			default:
				params[k] = string(v)
			}
		}
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return nil, nil, err
		}
		for k, v := range r.PostForm {
			params[k] = v[0]
		}
	case "multipart/form-data":
		// Read part by part: a part with a filename parameter is a file even
		// when the name is empty (telebot sends photos from readers so), which
		// Request.ParseMultipartForm would take for a plain value.
		mr, err := r.MultipartReader()
		if err != nil {
			return nil, nil, err
		}
		files := map[string]Upload{}
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, nil, err
			}
			data, err := io.ReadAll(io.LimitReader(part, MaxUploadSize+1))
			if err != nil {
				return nil, nil, err
			}
			_, cd, _ := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
			if name, isFile := cd["filename"]; isFile {
				files[part.FormName()] = Upload{Name: name, Data: data}
			} else {
				params[part.FormName()] = string(data)
			}
		}
		return params, files, nil
	}
	return params, nil, nil
}

func (s *Server) serveFile(w http.ResponseWriter, rest string) {
	token, fpath, _ := strings.Cut(rest, "/")
	s.mu.Lock()
	s.calls = append(s.calls, Call{Method: "file", Params: map[string]string{"file_path": fpath}, Time: time.Now()})
	idx := len(s.calls) - 1
	f := s.paths[fpath]
	s.mu.Unlock()
	if token != s.Token || f == nil {
		s.setCode(idx, http.StatusNotFound)
		http.NotFound(w, nil)
		return
	}
	s.setCode(idx, http.StatusOK)
	w.Header().Set("Content-Length", strconv.Itoa(len(f.data)))
	w.Write(f.data)
}

func intParam(params map[string]string, name string, def int64) (int64, *apiError) {
	v, ok := params[name]
	if !ok || v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, badRequest("invalid %s specified", name)
	}
	return n, nil
}

// call does method; method is lower case.
func (s *Server) call(r *http.Request, method string, p map[string]string, files map[string]Upload) (any, *apiError) {
	switch method {
	case "getme":
		return s.Bot, nil
	case "getupdates":
		return s.getUpdates(r, p)
	case "logout", "close", "deletewebhook", "sendchataction", "answercallbackquery":
		return true, nil
	case "getwebhookinfo":
		s.mu.Lock()
		defer s.mu.Unlock()
		return map[string]any{"url": "", "has_custom_certificate": false, "pending_update_count": len(s.queue)}, nil
	case "sendmessage":
		return s.sendMessage(p)
	case "senddocument":
		return s.sendFile(p, files, "document")
	case "sendphoto":
		return s.sendFile(p, files, "photo")
	case "forwardmessage", "copymessage":
		return s.forward(p, method == "copymessage")
	case "editmessagetext":
		return s.editMessageText(p)
	case "deletemessage":
		return s.deleteMessage(p)
	case "getfile":
		return s.getFile(p)
	case "leavechat":
		chat, err := s.chatParam(p)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.left[chat.ID] = true
		s.mu.Unlock()
		return true, nil
	case "getchat":
		chat, err := s.chatParam(p)
		if err != nil {
			return nil, err
		}
		return chat, nil
	case "getchatmember":
		return s.getChatMember(p)
	case "setmycommands", "getmycommands", "deletemycommands":
		return s.myCommands(method, p)
	}
	return nil, &apiError{code: http.StatusNotFound, desc: "Not Found"}
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

// getFile: https://core.telegram.org/bots/api#getfile ("bots can download
// files of up to 20MB in size").
func (s *Server) getFile(p map[string]string) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.files[p["file_id"]]
	if !ok {
		return nil, badRequest("invalid file_id")
	}
	if s.maxDown > 0 && f.FileSize > s.maxDown {
		return nil, badRequest("file is too big")
	}
	return f.File, nil
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
