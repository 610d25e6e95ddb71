package bot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"hpcbot/bot/tgtest"
	"hpcbot/store"
)

func testSenderOptions() SenderOptions {
	return SenderOptions{RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond, OutboxEvery: time.Hour}
}

func newTestSender(t *testing.T, srv *tgtest.Server, st *store.Store, opts SenderOptions) *Sender {
	t.Helper()
	s := NewSender(NewClient(srv.URL, srv.Token, nil), st, nil, opts)
	t.Cleanup(s.Close)
	return s
}

func TestSenderSendsHTMLAndEscapes(t *testing.T) {
	srv := tgtest.New(t)
	s := newTestSender(t, srv, openTestStore(t, ""), testSenderOptions())
	name := `a<b>&"c".inp`
	if err := s.Send(context.Background(), tAlice.ID, "<b>Accepted:</b> "+Escape(name)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if err := s.Send(context.Background(), tAlice.ID, "raw <tags> stay", Plain()); err != nil {
		t.Fatalf("Send plain: %v", err)
	}
	sent := srv.Sent(tAlice.ID)
	if len(sent) != 2 || sent[0].Params["parse_mode"] != "HTML" || sent[1].Params["parse_mode"] != "" {
		t.Fatalf("sent %+v", sent)
	}
	// Unescaped, the fake refuses it as Telegram would.
	err := s.Send(context.Background(), tAlice.ID, "<b>Accepted:</b> "+name)
	if err == nil || !strings.Contains(err.Error(), "can't parse entities") {
		t.Fatalf("unescaped: %v", err)
	}
}

func TestSenderSplitsLongTexts(t *testing.T) {
	srv := tgtest.New(t)
	s := newTestSender(t, srv, openTestStore(t, ""), SenderOptions{PerChatBurst: 10})
	var b strings.Builder
	b.WriteString("<b>Your calculations</b>\n<pre>")
	for i := range 400 {
		fmt.Fprintf(&b, "%4d  h2o_%d.inp  orca  finished  ✓ ёжик\n", i, i)
	}
	b.WriteString("</pre>\nend")
	text := b.String()
	if err := s.Send(context.Background(), tAlice.ID, text); err != nil {
		t.Fatalf("Send: %v", err)
	}
	sent := srv.Sent(tAlice.ID)
	if len(sent) < 4 {
		t.Fatalf("%d messages for %d characters", len(sent), tgLen(text))
	}
	var lines []string
	for _, c := range sent {
		if n := tgLen(c.Text()); n > maxTextLen {
			t.Fatalf("a piece of %d characters", n)
		}
		if !strings.Contains(c.Text(), "<pre>") && c.Text() != "end" {
			t.Fatalf("a piece lost its <pre>: %.80q", c.Text())
		}
		lines = append(lines, strings.Split(strings.NewReplacer("<pre>", "", "</pre>", "").Replace(c.Text()), "\n")...)
	}
	want := strings.Split(strings.NewReplacer("<pre>", "", "</pre>", "").Replace(text), "\n")
	if !slices.Equal(nonEmpty(lines), nonEmpty(want)) {
		t.Fatal("the pieces do not add up to the text")
	}
}

func nonEmpty(ss []string) []string {
	var out []string
	for _, s := range ss {
		if strings.TrimSpace(s) != "" {
			out = append(out, s)
		}
	}
	return out
}

func TestSplitMessage(t *testing.T) {
	long := strings.Repeat("word ", 30)
	tests := []struct {
		name  string
		text  string
		limit int
		html  bool
		want  []string
	}{
		{"short", "hello", 10, true, []string{"hello"}},
		{"blank", " \n ", 10, true, nil},
		{"lines", "aaaa\nbbbb\ncccc", 10, false, []string{"aaaa\nbbbb", "cccc"}},
		{"spaces", "aaa bbb ccc ddd", 8, false, []string{"aaa bbb", "ccc ddd"}},
		{"no spaces", "abcdefghij", 4, false, []string{"abcd", "efgh", "ij"}},
		{"tag reopened", "<b>aaaa\nbbbb</b>", 12, true, []string{"<b>aaaa</b>", "<b>bbbb</b>"}},
		{"entity kept whole", "ab&amp;cd", 5, true, []string{"ab", "&amp;", "cd"}},
		{"utf-16", "😀😀😀", 4, false, []string{"😀😀", "😀"}},
		{"long words", long, 40, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := splitMessage(tt.text, tt.limit, tt.html)
			if tt.want != nil || tt.name == "blank" {
				if !slices.Equal(got, tt.want) {
					t.Fatalf("got %q, want %q", got, tt.want)
				}
			}
			for _, p := range got {
				if tgLen(p) > tt.limit {
					t.Fatalf("piece %q over %d", p, tt.limit)
				}
			}
		})
	}
}

// FuzzSplitMessage: every piece fits, pieces of balanced HTML are balanced,
// and no visible character is lost or added.
func FuzzSplitMessage(f *testing.F) {
	f.Add("<b>bold</b> text &amp; more\nnext line <i>it</i>", 12, true)
	f.Add("plain text without markup but long enough to be split", 7, false)
	f.Add("<a href=\"https://x\">link text</a>", 5, true)
	f.Fuzz(func(t *testing.T, text string, limit int, html bool) {
		if limit < 1 || limit > 5000 {
			return
		}
		if html && limit < 64 {
			limit = 64 // room for the tags a piece reopens
		}
		if html && longestTag(text) > limit/4 {
			return // a tag alone (with its closing tag) would not fit
		}
		pieces := splitMessage(text, limit, html)
		var got strings.Builder
		for _, p := range pieces {
			if n := tgLen(p); n > limit && tgLen(text) > limit {
				t.Fatalf("piece of %d over %d: %q", n, limit, p)
			}
			if html && len(applyTags(nil, text, true)) == 0 && balanced(text) && !balanced(p) {
				t.Fatalf("unbalanced piece %q of %q", p, text)
			}
			got.WriteString(visible(p, html))
		}
		if strip(got.String()) != strip(visible(text, html)) {
			t.Fatalf("content changed:\n got %q\nwant %q", strip(got.String()), strip(visible(text, html)))
		}
	})
}

func longestTag(s string) int {
	longest := 0
	for i := 0; i < len(s); {
		n := atomLen(s[i:], true)
		if s[i] == '<' {
			longest = max(longest, n)
		}
		i += n
	}
	return longest
}

// balanced tells whether every tag of s is closed in order.
func balanced(s string) bool {
	var open []string
	for i := 0; i < len(s); {
		n := atomLen(s[i:], true)
		if a := s[i : i+n]; len(a) > 2 && a[0] == '<' && a[len(a)-1] == '>' {
			if a[1] == '/' {
				if len(open) == 0 || open[len(open)-1] != tagName(a) {
					return false
				}
				open = open[:len(open)-1]
			} else {
				open = append(open, tagName(a))
			}
		}
		i += n
	}
	return len(open) == 0
}

// visible drops the tags of s.
func visible(s string, html bool) string {
	if !html {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		n := atomLen(s[i:], true)
		if a := s[i : i+n]; !(len(a) > 2 && a[0] == '<' && a[len(a)-1] == '>') {
			b.WriteString(a)
		}
		i += n
	}
	return b.String()
}

func strip(s string) string { return strings.Join(strings.Fields(s), "") }

func TestTokenBucketWindows(t *testing.T) {
	// Any window of length T lets at most burst + rate·T through: checked
	// on a simulated clock with a send whenever the bucket allows.
	for _, tc := range []struct {
		name   string
		rate   float64
		burst  int
		window time.Duration
		max    int
	}{
		{"per chat", 1, 3, time.Second, 4},
		{"per group", float64(20-3) / 60, 3, time.Minute, 20},
		{"global", 24, 1, time.Second, 25},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newTokenBucket(tc.rate, tc.burst)
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			var at []time.Time
			for range 200 {
				now = now.Add(b.reserve(now))
				at = append(at, now)
			}
			for i := range at {
				n := 0
				for j := i; j < len(at) && at[j].Sub(at[i]) < tc.window; j++ {
					n++
				}
				if n > tc.max {
					t.Fatalf("%d sends within %v from send %d", n, tc.window, i)
				}
			}
		})
	}
}

// A 429 storm: every message is delivered; after each 429 the chat waited
// at least retry_after; a chat never gets more than its bucket allows.
func TestSender429Storm(t *testing.T) {
	srv := tgtest.New(t)
	s := newTestSender(t, srv, openTestStore(t, ""), testSenderOptions())
	srv.Inject(tgtest.TooManyRequests("sendMessage", 10, 1))
	chats := []int64{2001, 2002, 2003, 2004}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for _, chat := range chats {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 4 {
				errs <- s.Send(context.Background(), chat, fmt.Sprint("message ", i))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	calls := srv.Calls("sendMessage")
	if n := len(filterCode(calls, "sendMessage", 429)); n != 10 {
		t.Fatalf("%d answers were 429, want 10", n)
	}
	for _, chat := range chats {
		var mine []tgtest.Call
		for _, c := range calls {
			if c.ChatID() == chat {
				mine = append(mine, c)
			}
		}
		if got := len(srv.Sent(chat)); got != 4 {
			t.Fatalf("chat %d got %d messages", chat, got)
		}
		for i, c := range mine {
			if c.Code == 429 && i+1 < len(mine) {
				if gap := mine[i+1].Time.Sub(c.Time); gap < time.Second {
					t.Errorf("chat %d: retried %v after a 429 with retry_after 1", chat, gap)
				}
			}
			// Bucket 1/s, burst 3: four calls span at least a second, as
			// the sender reserves them. The fake stamps arrivals, which
			// trail the reservations by the request's transit (longer on a
			// loaded machine), hence the slack; without pacing the four
			// would arrive within milliseconds.
			if i+3 < len(mine) {
				if span := mine[i+3].Time.Sub(c.Time); span < time.Second-250*time.Millisecond {
					t.Errorf("chat %d: 4 calls within %v", chat, span)
				}
			}
		}
	}
}

func TestSenderForbiddenChatDoesNotStopOthers(t *testing.T) {
	srv := tgtest.New(t)
	st := openTestStore(t, "")
	s := newTestSender(t, srv, st, testSenderOptions())
	srv.Inject(tgtest.Blocked(tBob.ID))
	errBob := make(chan error, 1)
	go func() { errBob <- s.Send(context.Background(), tBob.ID, "your calculation finished") }()
	if err := s.Send(context.Background(), tAlice.ID, "hello"); err != nil {
		t.Fatalf("alice: %v", err)
	}
	if err := <-errBob; !IsForbidden(err) {
		t.Fatalf("bob: %v, want a 403", err)
	}
	if n := len(srv.Calls("sendMessage")); n != 2 {
		t.Fatalf("%d calls: a 403 must not be retried", n)
	}

	// Through the outbox: bob's message is done (nothing more to do), the
	// others are delivered.
	for i, chat := range []int64{tBob.ID, tAlice.ID, tBob.ID, tAlice.ID} {
		if _, err := st.OutboxPut(fmt.Sprint("k", i), store.OutMsg{ChatID: chat, Kind: "note", Params: map[string]string{"n": fmt.Sprint(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.DrainOutbox(ctx, renderNote)
	waitFor(t, func() bool { items, _ := st.OutboxPending(); return len(items) == 0 })
	if got := texts(srv.Sent(tAlice.ID)); !slices.Equal(got, []string{"hello", "note 1", "note 3"}) {
		t.Fatalf("alice got %q", got)
	}
}

func renderNote(it store.OutItem) (Outgoing, error) {
	if it.Msg.Kind != "note" {
		return Outgoing{}, fmt.Errorf("unknown kind %q", it.Msg.Kind)
	}
	return Outgoing{Text: "note " + Escape(it.Msg.Params["n"])}, nil
}

func texts(calls []tgtest.Call) []string {
	var out []string
	for _, c := range calls {
		out = append(out, c.Text())
	}
	return out
}

func TestSenderRetriesServerErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault tgtest.Fault
		calls int
		ok    bool
	}{
		{"5xx then success", tgtest.ServerError("sendMessage", 2), 3, true},
		{"502 page then success", tgtest.BadGateway("sendMessage", 1), 2, true},
		{"dropped connection then success", tgtest.Drop("sendMessage", 1), 2, true},
		{"5xx outlasts the attempts", tgtest.ServerError("sendMessage", 0), 3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := tgtest.New(t)
			opts := testSenderOptions()
			opts.Attempts = 3
			s := newTestSender(t, srv, openTestStore(t, ""), opts)
			srv.Inject(tc.fault)
			err := s.Send(context.Background(), tAlice.ID, "hi")
			if (err == nil) != tc.ok {
				t.Fatalf("Send = %v", err)
			}
			if n := len(srv.Calls("sendMessage")); n != tc.calls {
				t.Fatalf("%d calls, want %d", n, tc.calls)
			}
		})
	}
}

// Outbox messages that cannot be sent now stay pending, and those queued
// after them for the same chat wait with them; other chats go on.
func TestOutboxKeepsOrderThroughFailures(t *testing.T) {
	srv := tgtest.New(t)
	st := openTestStore(t, "")
	opts := testSenderOptions()
	opts.Attempts = 2
	s := newTestSender(t, srv, st, opts)
	srv.Inject(tgtest.Fault{ChatID: tAlice.ID, Code: 500, Description: "Internal Server Error"})
	for i, chat := range []int64{tAlice.ID, tBob.ID, tAlice.ID, tBob.ID} {
		if _, err := st.OutboxPut(fmt.Sprint("calc/", i), store.OutMsg{ChatID: chat, Kind: "note", Params: map[string]string{"n": fmt.Sprint(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.DrainOutbox(ctx, renderNote)
	waitFor(t, func() bool { items, _ := st.OutboxPending(); return len(items) == 2 })
	srv.Wait(t, func(calls []tgtest.Call) bool { return len(filterCode(calls, "sendMessage", 500)) == 2 })
	waitFor(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.inflight) == 0
	})
	if got := texts(srv.Sent(tBob.ID)); !slices.Equal(got, []string{"note 1", "note 3"}) {
		t.Fatalf("bob got %q", got)
	}
	for _, c := range srv.Calls("sendMessage") {
		if c.ChatID() == tAlice.ID && c.Text() != "note 0" {
			t.Fatalf("alice's second message was tried before her first: %q", c.Text())
		}
	}

	srv.ClearFaults()
	s.Wake()
	waitFor(t, func() bool { items, _ := st.OutboxPending(); return len(items) == 0 })
	if got := texts(srv.Sent(tAlice.ID)); !slices.Equal(got, []string{"note 0", "note 2"}) {
		t.Fatalf("alice got %q", got)
	}
}

func TestOutboxSendsFilesAndLongCaptions(t *testing.T) {
	srv := tgtest.New(t)
	st := openTestStore(t, "")
	s := newTestSender(t, srv, st, SenderOptions{PerChatBurst: 10})
	dir := t.TempDir()
	out := filepath.Join(dir, "h2o.out")
	if err := os.WriteFile(out, []byte("FINAL SINGLE POINT ENERGY -76.0"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := st.OutboxPut("calc/7/finished", store.OutMsg{ChatID: tAlice.ID, Kind: "done", Files: []string{out}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.OutboxPut("calc/8/broken", store.OutMsg{ChatID: tAlice.ID, Kind: "unknown"}); err != nil {
		t.Fatal(err)
	}
	caption := strings.Repeat("<i>line</i> of the summary\n", 60)
	render := func(it store.OutItem) (Outgoing, error) {
		if it.Msg.Kind != "done" {
			return Outgoing{}, errors.New("no such message")
		}
		o := Outgoing{Text: "Calculation #7 finished", Caption: caption}
		for _, f := range it.Msg.Files {
			o.Files = append(o.Files, OutFile{Path: f})
		}
		return o, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.DrainOutbox(ctx, render)
	waitFor(t, func() bool { items, _ := st.OutboxPending(); return len(items) == 0 })
	sent := srv.Sent(tAlice.ID)
	if len(sent) < 3 || sent[0].Method != "sendMessage" || sent[1].Method != "sendDocument" {
		t.Fatalf("sent %v", texts(sent))
	}
	doc := sent[1].Files["document"]
	if doc.Name != "h2o.out" || string(doc.Data) != "FINAL SINGLE POINT ENERGY -76.0" {
		t.Fatalf("document %q %q", doc.Name, doc.Data)
	}
	if n := tgLen(sent[1].Text()); n == 0 || n > maxCaptionLen {
		t.Fatalf("caption of %d characters", n)
	}
	var rest strings.Builder
	for _, c := range sent[1:] {
		rest.WriteString(c.Text())
	}
	if strip(visible(rest.String(), true)) != strip(visible(caption, true)) {
		t.Fatal("the caption was not sent whole")
	}
}

func TestSenderFollowsMigratedGroup(t *testing.T) {
	srv := tgtest.New(t)
	var from, to int64
	opts := testSenderOptions()
	opts.OnMigrate = func(f, t int64) { from, to = f, t }
	s := newTestSender(t, srv, openTestStore(t, ""), opts)
	super := int64(-1001234567890)
	srv.Inject(tgtest.Fault{ChatID: tGroup.ID, Code: 400, Description: "Bad Request: group chat was upgraded to a supergroup chat", MigrateTo: super})
	if err := s.Send(context.Background(), tGroup.ID, "new user: Alice"); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if len(srv.Sent(super)) != 1 || from != tGroup.ID || to != super {
		t.Fatalf("sent to the supergroup: %d; OnMigrate(%d, %d)", len(srv.Sent(super)), from, to)
	}
}

func TestSenderPhotoAndDocument(t *testing.T) {
	srv := tgtest.New(t)
	s := newTestSender(t, srv, openTestStore(t, ""), testSenderOptions())
	if err := s.SendPhoto(context.Background(), tAlice.ID, "stats.png", []byte("\x89PNG"), "<b>Usage</b>"); err != nil {
		t.Fatal(err)
	}
	if err := s.SendDocument(context.Background(), tGroup.ID, OutFile{Name: "in.gjf", Data: []byte("#P")}, "from "+Escape("<Alice>")); err != nil {
		t.Fatal(err)
	}
	ph, doc := srv.Calls("sendPhoto"), srv.Calls("sendDocument")
	if len(ph) != 1 || string(ph[0].Files["photo"].Data) != "\x89PNG" || ph[0].Params["parse_mode"] != "HTML" {
		t.Fatalf("photo %+v", ph)
	}
	if len(doc) != 1 || doc[0].Files["document"].Name != "in.gjf" || doc[0].Text() != "from &lt;Alice&gt;" {
		t.Fatalf("document %+v", doc)
	}
}

func TestSenderClosed(t *testing.T) {
	srv := tgtest.New(t)
	st := openTestStore(t, "")
	s := newTestSender(t, srv, st, testSenderOptions())
	// Close while a reply and an outbox message wait out a long 429.
	srv.Inject(tgtest.TooManyRequests("sendMessage", 0, 30))
	if _, err := st.OutboxPut("calc/1/finished", store.OutMsg{ChatID: tBob.ID, Kind: "note"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.DrainOutbox(ctx, renderNote)
	errc := make(chan error, 1)
	go func() { errc <- s.Send(context.Background(), tAlice.ID, "x") }()
	srv.Wait(t, func(calls []tgtest.Call) bool { return len(filterCode(calls, "sendMessage", 429)) == 2 })
	s.Close()
	if err := <-errc; !errors.Is(err, ErrSenderClosed) {
		t.Fatalf("Send cut by Close: %v", err)
	}
	if items, _ := st.OutboxPending(); len(items) != 1 {
		t.Fatalf("the outbox message must stay pending, have %d", len(items))
	}
	if err := s.Send(context.Background(), tAlice.ID, "x"); !errors.Is(err, ErrSenderClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	if err := s.Post(Outgoing{ChatID: tAlice.ID}); !errors.Is(err, ErrEmptyMessage) {
		t.Fatalf("empty: %v", err)
	}
}

// A chat that cannot receive fills its own queue only.
func TestSenderQueueBoundedPerChat(t *testing.T) {
	srv := tgtest.New(t)
	opts := testSenderOptions()
	opts.MaxQueuedPerChat = 2
	s := newTestSender(t, srv, openTestStore(t, ""), opts)
	srv.Inject(tgtest.Fault{ChatID: tGroup.ID, Code: 429, Description: "Too Many Requests: retry after 30", RetryAfter: 30})
	for i := range 2 {
		if err := s.Post(Outgoing{ChatID: tGroup.ID, Text: fmt.Sprint("log ", i)}); err != nil {
			t.Fatalf("Post %d: %v", i, err)
		}
	}
	if err := s.Post(Outgoing{ChatID: tGroup.ID, Text: "log 2"}); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third Post: %v, want ErrQueueFull", err)
	}
	if err := s.Send(context.Background(), tAlice.ID, "reply"); err != nil {
		t.Fatalf("another chat: %v", err)
	}
}

// mergeLogChat is the chat the merge tests treat as the log chat.
const mergeLogChat = int64(-100777)

// renderLogLine renders the merge tests' outbox items: "line" is a text,
// "doc" the Telegram file in Params["file_id"] with a caption.
func renderLogLine(it store.OutItem) (Outgoing, error) {
	o := Outgoing{Text: it.Msg.Params["text"], At: it.Msg.Created}
	if it.Msg.Kind == "doc" {
		o.Text, o.Caption = "", it.Msg.Params["text"]
		o.Files = []OutFile{{FileID: it.Msg.Params["file_id"]}}
	}
	return o, nil
}

// While the log chat cannot receive (here a 429 with retry_after 2 s), the
// lines that wait are merged into one message, in order, each with its time;
// a document goes on its own, between the lines queued before and after it.
// Every item is marked done once its message was accepted.
func TestSenderMergesWaitingLogLines(t *testing.T) {
	srv := tgtest.New(t)
	st := openTestStore(t, "")
	opts := testSenderOptions()
	opts.Merge = func(chat int64) bool { return chat == mergeLogChat }
	s := newTestSender(t, srv, st, opts)
	doc := srv.AddFile("h2o.inp", []byte("! HF def2-SVP"))
	srv.Inject(tgtest.TooManyRequests("sendMessage", 1, 2))
	const n = 30
	var want []string
	for i := range n {
		text := fmt.Sprintf("line %02d &lt;user&gt; text\nsecond row", i)
		msg := store.OutMsg{ChatID: mergeLogChat, Kind: "line", Params: map[string]string{"text": text}}
		if i == 20 {
			msg = store.OutMsg{ChatID: mergeLogChat, Kind: "doc", Params: map[string]string{"text": "copy of h2o.inp", "file_id": doc.FileID}}
		} else {
			want = append(want, fmt.Sprintf("line %02d", i))
		}
		if _, err := st.OutboxPut(fmt.Sprintf("log/%02d", i), msg); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.DrainOutbox(ctx, renderLogLine)
	waitFor(t, func() bool { items, _ := st.OutboxPending(); return len(items) == 0 })

	sent := srv.Sent(mergeLogChat)
	var got []string
	docAt, merged := -1, ""
	for i, c := range sent {
		if c.Method == "sendDocument" {
			docAt = len(got)
			if c.Text() != "copy of h2o.inp" {
				t.Errorf("document caption %q", c.Text())
			}
			continue
		}
		if n := tgLen(c.Text()); n > maxTextLen {
			t.Fatalf("message %d has %d characters", i, n)
		}
		lines := strings.Split(c.Text(), "\n")
		if len(lines) > 2 && merged == "" {
			merged = c.Text()
		}
		for _, l := range lines {
			if len(lines) > 2 && !strings.HasPrefix(l, "<code>") {
				t.Errorf("a merged line without its time: %q", l)
			}
			if k := strings.Index(l, "line "); k >= 0 {
				got = append(got, l[k:k+7])
			}
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("lines in the log chat:\n%q\nwant\n%q", got, want)
	}
	if docAt != 20 {
		t.Fatalf("the document came after %d lines, want 20", docAt)
	}
	// One message before the 429's wait, the lines that waited before the
	// document, the document, the lines after it.
	if len(sent) > 4 {
		t.Fatalf("%d messages for %d lines and a document: not merged", len(sent), n-1)
	}
	if !strings.Contains(merged, "&lt;user&gt; text · second row") {
		t.Fatalf("a merged line is not the message on one line, escaped: %q", merged)
	}
	// The metrics endpoint's log chat lag: what the oldest line of the last
	// merged message had waited (the lines behind the 429 waited for it).
	if lag := s.MergedLag(); lag <= 0 || lag > time.Minute {
		t.Errorf("MergedLag = %v", lag)
	}
}

// A merged line keeps a whole notification of the bot's, the longest of which
// (a reason cut to 500 characters in its template) ends with what to do
// ("/redeliver 7"): cut in the middle, the log chat would lose the instruction.
func TestSenderMergedLineKeepsANotificationWhole(t *testing.T) {
	srv := tgtest.New(t)
	st := openTestStore(t, "")
	opts := testSenderOptions()
	opts.Merge = func(chat int64) bool { return chat == mergeLogChat }
	s := newTestSender(t, srv, st, opts)
	srv.Inject(tgtest.TooManyRequests("sendMessage", 1, 2))
	long := "#7 (Olga): the cloud refused the bot's credentials: " + strings.Repeat("r", 500) +
		". I do not retry by myself. Fix storage.user and storage.password, then restart hpcbot or send <code>/redeliver 7</code>."
	for i, text := range []string{"first", long} {
		if _, err := st.OutboxPut(fmt.Sprintf("log/%d", i), store.OutMsg{ChatID: mergeLogChat, Kind: "line", Params: map[string]string{"text": text}}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.DrainOutbox(ctx, renderLogLine)
	waitFor(t, func() bool { items, _ := st.OutboxPending(); return len(items) == 0 })
	sent := srv.Sent(mergeLogChat)
	if len(sent) != 1 || !strings.Contains(sent[0].Text(), "first") || !strings.Contains(sent[0].Text(), "<code>/redeliver 7</code>.") {
		t.Fatalf("merged messages %q; want one with both lines whole", sentTexts(sent))
	}
}

// More lines wait than one message holds: the message carries the oldest that
// fit and counts the rest (they are in the process log), so the chat does not
// fall further behind; every item is done.
func TestSenderMergedMessageLeavesOutWhatDoesNotFit(t *testing.T) {
	srv := tgtest.New(t)
	st := openTestStore(t, "")
	opts := testSenderOptions()
	opts.Merge = func(chat int64) bool { return chat == mergeLogChat }
	s := newTestSender(t, srv, st, opts)
	srv.Inject(tgtest.TooManyRequests("sendMessage", 1, 2))
	const n = 100
	for i := range n {
		text := fmt.Sprintf("line %03d %s", i, strings.Repeat("x", 200))
		if _, err := st.OutboxPut(fmt.Sprintf("log/%03d", i), store.OutMsg{ChatID: mergeLogChat, Kind: "line", Params: map[string]string{"text": text}}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.DrainOutbox(ctx, renderLogLine)
	waitFor(t, func() bool { items, _ := st.OutboxPending(); return len(items) == 0 })
	sent := srv.Sent(mergeLogChat)
	if len(sent) != 1 {
		t.Fatalf("%d messages, want the one merged message", len(sent))
	}
	text := sent[0].Text()
	if tgLen(text) > maxTextLen {
		t.Fatalf("%d characters", tgLen(text))
	}
	shown := strings.Count(text, "<code>")
	if shown < 10 || !strings.Contains(text, fmt.Sprintf("…and %d more lines in the process log", n-shown)) {
		t.Fatalf("%d lines shown; message %q", shown, text)
	}
}

// The items of a merged message stay pending while it cannot be sent, and are
// all marked done when it is.
func TestSenderMergedItemsDoneOnlyWhenSent(t *testing.T) {
	srv := tgtest.New(t)
	st := openTestStore(t, "")
	opts := testSenderOptions()
	opts.Attempts = 2
	opts.Merge = func(chat int64) bool { return chat == mergeLogChat }
	s := newTestSender(t, srv, st, opts)
	srv.Inject(tgtest.Fault{ChatID: mergeLogChat, Code: 500, Description: "Internal Server Error"})
	const n = 12
	for i := range n {
		if _, err := st.OutboxPut(fmt.Sprintf("log/%02d", i), store.OutMsg{ChatID: mergeLogChat, Kind: "line", Params: map[string]string{"text": fmt.Sprintf("line %02d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.DrainOutbox(ctx, renderLogLine)
	srv.Wait(t, func(calls []tgtest.Call) bool { return len(filterCode(calls, "sendMessage", 500)) >= 2 })
	waitFor(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.inflight) == 0
	})
	if items, _ := st.OutboxPending(); len(items) != n {
		t.Fatalf("%d items pending after the merged message failed, want %d", len(items), n)
	}
	srv.ClearFaults()
	s.Wake()
	waitFor(t, func() bool { items, _ := st.OutboxPending(); return len(items) == 0 })
	var all strings.Builder
	for _, c := range srv.Sent(mergeLogChat) {
		all.WriteString(c.Text() + "\n")
	}
	for i := range n {
		if c := strings.Count(all.String(), fmt.Sprintf("line %02d", i)); c != 1 {
			t.Fatalf("line %02d reached the chat %d times:\n%s", i, c, all.String())
		}
	}
}
