package tgtest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
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
	messages map[[2]int64]*Message   // known messages by (chat, message id), as they read now
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

	callbacks    map[string]*callbackState // callback queries pushed, by id
	callbackIDs  []string                  // in the order pushed
	nextCallback int64
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
		messages: map[[2]int64]*Message{},
		chats:    map[int64]Chat{},
		left:     map[int64]bool{},
		members:  map[[2]int64]ChatMember{},
		files:    map[string]*storedFile{},
		paths:    map[string]*storedFile{},
		commands: map[commandsKey][]BotCommand{},

		callbacks:    map[string]*callbackState{},
		nextCallback: 4096000000000000001,
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
