package tgtest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	tele "gopkg.in/telebot.v3"

	"hpcbot/bot/tgtest"
)

var (
	alice = tgtest.User{ID: 1001, FirstName: "Alice", Username: "alice", LanguageCode: "en"}
	group = tgtest.Group(-4001, "Lab")
)

func newBot(t *testing.T, s *tgtest.Server) *tele.Bot {
	t.Helper()
	b, err := tele.NewBot(tele.Settings{URL: s.URL, Token: s.Token, Synchronous: true})
	if err != nil {
		t.Fatalf("NewBot: %v", err)
	}
	return b
}

// getUpdates calls the method with JSON numbers, as hpcbot's poller does.
func getUpdates(t *testing.T, s *tgtest.Server, offset, timeout int64) (int, []tele.Update) {
	t.Helper()
	code, ups, err := poll(s, offset, timeout)
	if err != nil {
		t.Fatalf("getUpdates: %v", err)
	}
	return code, ups
}

// poll may run in its own goroutine.
func poll(s *tgtest.Server, offset, timeout int64) (int, []tele.Update, error) {
	body, _ := json.Marshal(map[string]any{"offset": offset, "timeout": timeout, "limit": 100})
	resp, err := http.Post(s.URL+"/bot"+s.Token+"/getUpdates", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out struct {
		OK     bool          `json:"ok"`
		Result []tele.Update `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, out.Result, nil
}

func TestGetMeAndToken(t *testing.T) {
	s := tgtest.New(t)
	b := newBot(t, s)
	if b.Me.Username != s.Bot.Username || !b.Me.IsBot {
		t.Fatalf("getMe = %+v, want %+v", b.Me, s.Bot)
	}
	_, err := tele.NewBot(tele.Settings{URL: s.URL, Token: "1:wrong"})
	if !errors.Is(err, tele.ErrUnauthorized) {
		t.Fatalf("wrong token: err = %v, want ErrUnauthorized", err)
	}
}

func TestGetUpdatesOffsetConfirms(t *testing.T) {
	s := tgtest.New(t)
	id1 := s.PushText(alice, tgtest.Private(alice), "/start")
	id2 := s.PushText(alice, tgtest.Private(alice), "hello")

	_, got := getUpdates(t, s, 0, 0)
	if len(got) != 2 || int64(got[0].ID) != id1 || int64(got[1].ID) != id2 {
		t.Fatalf("first poll: %+v", got)
	}
	if got[0].Message.Text != "/start" || got[0].Message.Sender.ID != alice.ID || got[0].Message.Chat.ID != alice.ID {
		t.Fatalf("decoded message: %+v", got[0].Message)
	}
	// Not confirmed yet: asked again, they come again.
	if _, again := getUpdates(t, s, id1, 0); len(again) != 2 {
		t.Fatalf("offset=id1 must confirm nothing, got %d updates", len(again))
	}
	if _, rest := getUpdates(t, s, id1+1, 0); len(rest) != 1 || int64(rest[0].ID) != id2 {
		t.Fatalf("offset=id1+1: %+v", rest)
	}
	if u := s.Unconfirmed(); len(u) != 1 || u[0] != id2 {
		t.Fatalf("Unconfirmed = %v", u)
	}
	if _, none := getUpdates(t, s, id2+1, 0); len(none) != 0 {
		t.Fatalf("all confirmed, got %+v", none)
	}
}

func TestGetUpdatesNegativeOffsetForgets(t *testing.T) {
	s := tgtest.New(t)
	for range 3 {
		s.PushText(alice, tgtest.Private(alice), "x")
	}
	last := s.PushText(alice, tgtest.Private(alice), "last")
	if _, got := getUpdates(t, s, -1, 0); len(got) != 1 || int64(got[0].ID) != last {
		t.Fatalf("offset -1: %+v", got)
	}
	if u := s.Unconfirmed(); len(u) != 1 {
		t.Fatalf("earlier updates not forgotten: %v", u)
	}
}

func TestGetUpdatesLongPollWakesOnPush(t *testing.T) {
	s := tgtest.New(t)
	done := make(chan []tele.Update)
	go func() {
		_, got, _ := poll(s, 0, 50)
		done <- got
	}()
	s.Wait(t, func(calls []tgtest.Call) bool { return len(calls) == 1 })
	id := s.PushText(alice, tgtest.Private(alice), "late")
	got := <-done
	if len(got) != 1 || int64(got[0].ID) != id {
		t.Fatalf("long poll returned %+v", got)
	}
}

func TestGetUpdatesTimeoutReturnsEmpty(t *testing.T) {
	s := tgtest.New(t)
	code, got := getUpdates(t, s, 0, 1)
	if code != 200 || len(got) != 0 {
		t.Fatalf("code %d, %d updates", code, len(got))
	}
}

func TestSecondPollerGetsConflict(t *testing.T) {
	s := tgtest.New(t)
	first, second := make(chan int), make(chan int)
	go func() {
		code, _, _ := poll(s, 0, 50)
		first <- code
	}()
	s.Wait(t, func(calls []tgtest.Call) bool { return len(calls) == 1 })
	go func() {
		code, _, _ := poll(s, 0, 1)
		second <- code
	}()
	if code := <-first; code != http.StatusConflict {
		t.Fatalf("the older poll answered %d, want 409", code)
	}
	if code := <-second; code != http.StatusOK {
		t.Fatalf("the newer poll answered %d, want 200", code)
	}
}

func TestSendMessageChecks(t *testing.T) {
	s := tgtest.New(t)
	b := newBot(t, s)
	to := &tele.Chat{ID: alice.ID}
	tests := []struct {
		name, text string
		mode       tele.ParseMode
		wantErr    string
	}{
		{"plain", "hello <world>", "", ""},
		{"html", "<b>bold</b> &lt;x&gt; &amp; <a href=\"https://x\">l</a>", tele.ModeHTML, ""},
		{"html unescaped", "file <input.inp> refused", tele.ModeHTML, "Unsupported start tag"},
		{"html unclosed", "<b>bold", tele.ModeHTML, "Can't find end tag"},
		{"html misnested", "<b><i>x</b></i>", tele.ModeHTML, "Unmatched end tag"},
		{"max length", strings.Repeat("я", tgtest.MaxTextLen), "", ""},
		{"too long", strings.Repeat("я", tgtest.MaxTextLen+1), "", "message is too long"},
		{"too long in utf-16", strings.Repeat("😀", tgtest.MaxTextLen/2+1), "", "message is too long"},
		{"entities do not count", "<b>" + strings.Repeat("a", tgtest.MaxTextLen) + "</b>", tele.ModeHTML, ""},
		{"empty", " ", "", "message text is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.Send(to, tt.text, tt.mode)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
	sent := s.Sent(alice.ID)
	if len(sent) != 4 || sent[1].Params["parse_mode"] != "HTML" {
		t.Fatalf("recorded %d successful sends: %+v", len(sent), sent)
	}
}

func TestReplyToUnknownMessageRefused(t *testing.T) {
	s := tgtest.New(t)
	b := newBot(t, s)
	u := s.TextUpdate(alice, tgtest.Private(alice), "hi")
	s.Push(u)
	chat := &tele.Chat{ID: alice.ID}
	if _, err := b.Send(chat, "re", &tele.SendOptions{ReplyTo: &tele.Message{ID: int(u.Message.MessageID)}}); err != nil {
		t.Fatalf("reply to a known message: %v", err)
	}
	if _, err := b.Send(chat, "re", &tele.SendOptions{ReplyTo: &tele.Message{ID: 9999}}); err == nil {
		t.Fatal("reply to an unknown message accepted")
	}
	if got := s.Sent(alice.ID)[0].Params["reply_to_message_id"]; got != "1" {
		t.Fatalf("reply_to_message_id recorded as %q", got)
	}
}

func TestDocumentDownloadAndUpload(t *testing.T) {
	s := tgtest.New(t)
	b := newBot(t, s)
	content := []byte("%chk=water\n#P HF/6-31G\n")
	id := s.PushDocument(alice, tgtest.Private(alice), "water.gjf", content, "g16 {}")
	_, ups := getUpdates(t, s, 0, 0)
	if len(ups) != 1 || int64(ups[0].ID) != id {
		t.Fatalf("updates %+v", ups)
	}
	doc := ups[0].Message.Document
	if doc == nil || doc.FileName != "water.gjf" || doc.FileSize != int64(len(content)) || ups[0].Message.Caption != "g16 {}" {
		t.Fatalf("document %+v caption %q", doc, ups[0].Message.Caption)
	}
	rc, err := b.File(&doc.File)
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, content) {
		t.Fatalf("downloaded %q", got)
	}

	out := &tele.Document{File: tele.FromReader(strings.NewReader("result")), FileName: "water.log", Caption: "<b>done</b>"}
	if _, err := b.Send(&tele.Chat{ID: alice.ID}, out, tele.ModeHTML); err != nil {
		t.Fatalf("sendDocument: %v", err)
	}
	if _, err := b.Send(&tele.Chat{ID: alice.ID}, &tele.Photo{File: tele.FromReader(strings.NewReader("PNG")), Caption: "chart"}); err != nil {
		t.Fatalf("sendPhoto: %v", err)
	}
	docs := s.Calls("sendDocument")
	if len(docs) != 1 || docs[0].Files["document"].Name != "water.log" || string(docs[0].Files["document"].Data) != "result" || docs[0].Params["caption"] != "<b>done</b>" {
		t.Fatalf("recorded sendDocument %+v", docs)
	}
	if ph := s.Calls("sendPhoto"); len(ph) != 1 || string(ph[0].Files["photo"].Data) != "PNG" {
		t.Fatalf("recorded sendPhoto %+v", ph)
	}
	long := &tele.Document{File: tele.FromReader(strings.NewReader("x")), FileName: "a", Caption: strings.Repeat("c", tgtest.MaxCaptionLen+1)}
	if _, err := b.Send(&tele.Chat{ID: alice.ID}, long); err == nil || !strings.Contains(err.Error(), "caption is too long") {
		t.Fatalf("long caption: %v", err)
	}
}

func TestGetFileTooBig(t *testing.T) {
	s := tgtest.New(t)
	b := newBot(t, s)
	doc := s.AddFile("big.inp", make([]byte, tgtest.MaxDownloadLen+1))
	if _, err := b.FileByID(doc.FileID); err == nil || !strings.Contains(err.Error(), "file is too big") {
		t.Fatalf("getFile over 20 MB: %v", err)
	}
	s.SetMaxDownload(0) // a local Bot API server
	if _, err := b.FileByID(doc.FileID); err != nil {
		t.Fatalf("getFile without limit: %v", err)
	}
}

func TestFaults(t *testing.T) {
	s := tgtest.New(t)
	b := newBot(t, s)
	bob := tgtest.User{ID: 1002, FirstName: "Bob"}
	s.Inject(tgtest.TooManyRequests("sendMessage", 2, 3))
	s.Inject(tgtest.Blocked(bob.ID))

	for range 2 {
		_, err := b.Send(&tele.Chat{ID: alice.ID}, "x")
		var flood tele.FloodError
		if !errors.As(err, &flood) || flood.RetryAfter != 3 {
			t.Fatalf("err = %#v, want FloodError retry_after 3", err)
		}
	}
	if _, err := b.Send(&tele.Chat{ID: alice.ID}, "x"); err != nil {
		t.Fatalf("after the 429s: %v", err)
	}
	if _, err := b.Send(&tele.Chat{ID: bob.ID}, "x"); !errors.Is(err, tele.ErrBlockedByUser) {
		t.Fatalf("blocked chat: %v", err)
	}
	s.Inject(tgtest.ServerError("sendMessage", 1))
	if _, err := b.Send(&tele.Chat{ID: alice.ID}, "x"); err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("5xx: %v", err)
	}
	s.Inject(tgtest.Drop("sendMessage", 1))
	if _, err := b.Send(&tele.Chat{ID: alice.ID}, "x"); err == nil {
		t.Fatal("dropped connection: no error")
	}
	s.Inject(tgtest.BadGateway("getMe", 1))
	resp, err := http.Get(s.URL + "/bot" + s.Token + "/getMe")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Content-Type") != "text/html" {
		t.Fatalf("502: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	codes := map[int]int{}
	for _, c := range s.Calls("sendMessage") {
		codes[c.Code]++
	}
	if codes[429] != 2 || codes[403] != 1 || codes[500] != 1 || codes[-1] != 1 || codes[200] != 1 {
		t.Fatalf("recorded codes %v", codes)
	}
	calls := s.Calls("sendMessage")
	if !calls[1].Time.After(calls[0].Time) && !calls[1].Time.Equal(calls[0].Time) {
		t.Fatal("calls not recorded in arrival order")
	}
}

func TestCommandsLeaveAndMembers(t *testing.T) {
	s := tgtest.New(t)
	b := newBot(t, s)
	user := []tele.Command{{Text: "help", Description: "what I do"}}
	admin := append(user, tele.Command{Text: "approve", Description: "approve a user"})
	if err := b.SetCommands(user); err != nil {
		t.Fatal(err)
	}
	scope := tele.CommandScope{Type: tele.CommandScopeChat, ChatID: 42}
	if err := b.SetCommands(admin, scope, "ru"); err != nil {
		t.Fatal(err)
	}
	if got, ok := s.Commands(tgtest.CommandScope{Type: "default"}, ""); !ok || len(got) != 1 || got[0].Command != "help" {
		t.Fatalf("default commands %+v", got)
	}
	if got, ok := s.Commands(tgtest.CommandScope{Type: "chat", ChatID: 42}, "ru"); !ok || len(got) != 2 {
		t.Fatalf("admin commands %+v", got)
	}
	if err := b.SetCommands([]tele.Command{{Text: "Bad-Name", Description: "x"}}); err == nil {
		t.Fatal("invalid command accepted")
	}
	if err := b.DeleteCommands(scope, "ru"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Commands(tgtest.CommandScope{Type: "chat", ChatID: 42}, "ru"); ok {
		t.Fatal("commands not deleted")
	}

	s.Push(s.MyChatMemberUpdate(alice, group, "left", "member"))
	s.SetChatMember(group.ID, tgtest.ChatMember{Status: "administrator", User: alice})
	m, err := b.ChatMemberOf(&tele.Chat{ID: group.ID}, &tele.User{ID: alice.ID})
	if err != nil || m.Role != tele.Administrator {
		t.Fatalf("getChatMember: %+v %v", m, err)
	}
	c, err := b.ChatByID(group.ID)
	if err != nil || c.Title != "Lab" || c.Type != tele.ChatGroup {
		t.Fatalf("getChat: %+v %v", c, err)
	}
	if err := b.Leave(&tele.Chat{ID: group.ID}); err != nil || !s.Left(group.ID) {
		t.Fatalf("leaveChat: %v", err)
	}
	if _, err := b.Send(&tele.Chat{ID: group.ID}, "still here?"); err == nil {
		t.Fatal("sent to a group the bot left")
	}
}

func TestEditAndForward(t *testing.T) {
	s := tgtest.New(t)
	b := newBot(t, s)
	m, err := b.Send(&tele.Chat{ID: alice.ID}, "queued")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Edit(m, "running"); err != nil {
		t.Fatalf("edit: %v", err)
	}
	if _, err := b.Edit(m, "running"); err == nil {
		t.Fatal("edit to the same text accepted")
	}
	in := s.TextUpdate(alice, tgtest.Private(alice), "input")
	s.Push(in)
	fwd, err := b.Forward(&tele.Chat{ID: group.ID}, &tele.Message{ID: int(in.Message.MessageID), Chat: &tele.Chat{ID: alice.ID}})
	if err != nil || fwd.Text != "input" {
		t.Fatalf("forward: %+v %v", fwd, err)
	}
}

func TestTelebotDecodesEveryBuilder(t *testing.T) {
	s := tgtest.New(t)
	s.Push(s.MyChatMemberUpdate(alice, tgtest.Private(alice), "member", "kicked"))
	s.Push(s.MigrationUpdate(alice, group, -1001234567890))
	s.PushText(alice, group, "/access@hpcbot_test_bot")
	_, ups := getUpdates(t, s, 0, 0)
	if len(ups) != 3 {
		t.Fatalf("%d updates", len(ups))
	}
	if mc := ups[0].MyChatMember; mc == nil || mc.NewChatMember.Role != tele.Kicked || mc.NewChatMember.User.ID != s.Bot.ID {
		t.Fatalf("my_chat_member %+v", ups[0].MyChatMember)
	}
	if ups[1].Message.MigrateTo != -1001234567890 {
		t.Fatalf("migration %+v", ups[1].Message)
	}
	if e := ups[2].Message.Entities; len(e) != 1 || e[0].Type != tele.EntityCommand || e[0].Length != len("/access@hpcbot_test_bot") {
		t.Fatalf("entities %+v", e)
	}
}

func TestGetUpdatesAllowedUpdates(t *testing.T) {
	s := tgtest.New(t)
	s.Push(tgtest.Update{ChatMember: &tgtest.ChatMemberUpdated{Chat: group, From: alice,
		OldChatMember: tgtest.ChatMember{Status: "left", User: alice}, NewChatMember: tgtest.ChatMember{Status: "member", User: alice}}})
	edited := s.TextUpdate(alice, tgtest.Private(alice), "typo")
	edited.EditedMessage, edited.Message = edited.Message, nil
	s.Push(edited)
	msg := s.PushText(alice, tgtest.Private(alice), "/help")
	// The default leaves chat_member out.
	if _, got := getUpdates(t, s, 0, 0); len(got) != 2 {
		t.Fatalf("default allowed_updates: %d updates", len(got))
	}
	body := strings.NewReader(`{"allowed_updates":["message"]}`)
	resp, err := http.Post(s.URL+"/bot"+s.Token+"/getUpdates", "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// The setting persists across calls.
	if _, got := getUpdates(t, s, 0, 0); len(got) != 1 || int64(got[0].ID) != msg {
		t.Fatalf("allowed_updates [message]: %+v", got)
	}
}
