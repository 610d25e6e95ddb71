package bot

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"hpcbot/bot/tgtest"
	"hpcbot/plugins"
	"hpcbot/store"
)

// fakePost collects what LogHandler posts, and lets the test move the clock
// and fire the end-of-minute timer itself.
type fakePost struct {
	mu    sync.Mutex
	out   []Outgoing
	now   time.Time
	timer func()
}

func (p *fakePost) post(o Outgoing) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out = append(p.out, o)
	return nil
}

func (p *fakePost) texts() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, o := range p.out {
		out = append(out, o.Text)
	}
	return out
}

func (p *fakePost) advance(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.now = p.now.Add(d)
}

// forwardingBot is an offline bot whose LogHandler posts to a fakePost;
// attached false leaves it as before Run.
func forwardingBot(t *testing.T, level string, attached bool) (*Bot, *fakePost, *slog.Logger) {
	t.Helper()
	b, _, _ := offlineBot(t, level)
	p := &fakePost{now: time.Unix(1732640000, 0)}
	b.fwd.now = func() time.Time { p.mu.Lock(); defer p.mu.Unlock(); return p.now }
	b.fwd.after = func(_ time.Duration, f func()) { p.mu.Lock(); p.timer = f; p.mu.Unlock() }
	if attached {
		b.fwd.attach(p.post)
	}
	return b, p, slog.New(b.LogHandler())
}

func TestLogHandlerForwards(t *testing.T) {
	b, p, log := forwardingBot(t, "info", true)
	log = log.With("component", "scheduler")
	log.Error("cluster refused our login", "cluster", "hpc <1>", "err", fmt.Errorf("ssh: handshake failed & gave up"))
	log.WithGroup("plugin").Warn("plugin process exited", "name", "slurm", slog.Group("exit", "code", 2))
	got := p.texts()
	want := []string{
		"<b>❗ Error:</b> cluster refused our login\ncomponent: scheduler\ncluster: hpc &lt;1&gt;\nerr: ssh: handshake failed &amp; gave up",
		"<b>⚠️ Warning:</b> plugin process exited\ncomponent: scheduler\nplugin.name: slurm\nplugin.exit.code: 2",
	}
	if strings.Join(got, "\n--\n") != strings.Join(want, "\n--\n") {
		t.Fatalf("forwarded:\n%s\nwant:\n%s", strings.Join(got, "\n--\n"), strings.Join(want, "\n--\n"))
	}
	for _, o := range p.out {
		if o.ChatID != -42 || o.Plain || !o.DisablePreview {
			t.Errorf("posted %+v", o)
		}
	}
	// The log chat follows its group to a supergroup.
	b.moveLogChat(-42, -1009)
	log.Error("another")
	if o := p.out[len(p.out)-1]; o.ChatID != -1009 {
		t.Errorf("posted to %d after the log chat moved", o.ChatID)
	}
}

func TestLogHandlerLevel(t *testing.T) {
	for _, tt := range []struct {
		level string
		want  []string // messages forwarded of debug, info, warn, error
	}{
		{"debug", []string{"w", "e"}}, // never Debug or Info noise
		{"info", []string{"w", "e"}},
		{"warn", []string{"w", "e"}},
		{"error", []string{"e"}},
	} {
		_, p, log := forwardingBot(t, tt.level, true)
		log.Debug("d")
		log.Info("i")
		log.Warn("w")
		log.Error("e")
		var got []string
		for _, text := range p.texts() {
			got = append(got, text[strings.Index(text, "</b> ")+5:])
		}
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("log_chat_level %s: forwarded %q, want %q", tt.level, got, tt.want)
		}
	}
	// No log chat: the handler is off.
	b, _, _ := offlineBot(t, "debug", func(o *Options) { o.Bot.LogChatID = 0 })
	if b.LogHandler().Enabled(context.Background(), slog.LevelError) {
		t.Error("enabled without a log chat")
	}
}

func TestLogHandlerRateLimit(t *testing.T) {
	_, p, log := forwardingBot(t, "warn", true)
	for i := range 15 {
		log.Error("step failed", "calc", i)
	}
	if n := len(p.texts()); n != logChatPerMinute {
		t.Fatalf("%d records forwarded in a minute, want %d", n, logChatPerMinute)
	}
	if p.timer == nil {
		t.Fatal("no end-of-minute report scheduled")
	}
	p.advance(time.Minute)
	p.timer()
	got := p.texts()
	if len(got) != logChatPerMinute+1 || !strings.Contains(got[len(got)-1], "left out this minute") ||
		!strings.Contains(got[len(got)-1], ": 5.") {
		t.Fatalf("after the minute: %q", got[logChatPerMinute:])
	}
	// A new minute: records go through again, and nothing more is reported.
	log.Error("step failed", "calc", 99)
	p.timer()
	if got := p.texts(); len(got) != logChatPerMinute+2 || !strings.Contains(got[len(got)-1], "calc: 99") {
		t.Errorf("next minute: %q", got[logChatPerMinute:])
	}
	// Suppressed records are reported with the next record when the timer is late.
	for i := range logChatPerMinute + 2 {
		log.Error("again", "calc", i)
	}
	p.advance(time.Minute)
	log.Error("later")
	got = p.texts()
	if tail := got[len(got)-2:]; !strings.Contains(tail[0], ": 3.") || !strings.Contains(tail[1], "later") {
		t.Errorf("report before the next record: %q", tail)
	}
}

func TestLogHandlerRepeats(t *testing.T) {
	_, p, log := forwardingBot(t, "warn", true)
	for range 3 {
		// Only a duration (a jittered retry delay) and the stack differ.
		log.Error("plugin crashed", "plugin", "slurm", "retry_in", time.Duration(len(p.texts()))*time.Second,
			"stack", fmt.Sprintf("goroutine %d [running]", len(p.texts())))
	}
	log.Error("plugin crashed", "plugin", "pbs")
	if n := len(p.texts()); n != 2 {
		t.Fatalf("%d forwarded, want 2 (one per plugin): %q", n, p.texts())
	}
	p.advance(logChatRepeat)
	log.Error("plugin crashed", "plugin", "slurm")
	if n := len(p.texts()); n != 3 {
		t.Errorf("%d forwarded, want the repeat after %v", n, logChatRepeat)
	}
}

func TestLogHandlerBeforeRun(t *testing.T) {
	b, p, log := forwardingBot(t, "warn", false)
	for i := range logChatPending + 5 {
		log.Warn("early", "n", i)
		if i%logChatPerMinute == logChatPerMinute-1 {
			p.advance(time.Minute) // not rate limited: the queue's bound is what is tested
		}
	}
	if len(p.texts()) != 0 {
		t.Fatal("posted before Run")
	}
	b.fwd.attach(p.post)
	got := p.texts()
	if len(got) != logChatPending {
		t.Fatalf("after Run: %d records, want %d", len(got), logChatPending)
	}
	if !strings.Contains(got[0], "n: 0") || !strings.Contains(got[logChatPending-1], fmt.Sprintf("n: %d", logChatPending-1)) {
		t.Fatalf("after Run: %d records, first %q", len(got), got[0])
	}
	p.advance(time.Minute)
	p.timer()
	if got := p.texts(); !strings.Contains(got[len(got)-1], ": 5.") {
		t.Errorf("the records that did not fit are not reported: %q", got[len(got)-1])
	}
}

func TestLogHandlerLeavesOutTheBot(t *testing.T) {
	b, p, log := forwardingBot(t, "warn", true)
	// The bot's own logger, as main builds it: the process handler with
	// LogHandler beside it. Nothing the bot, its sender or its poller logs is
	// forwarded (a sender failing to reach the log chat must not feed itself).
	var buf strings.Builder
	process := slog.New(slog.NewMultiHandler(slog.NewTextHandler(&buf, nil), b.LogHandler()))
	b2, err := New(Options{Bot: Config{Token: "1:secret", LogChatID: -42, LogChatLevel: "warn"}, Language: "en"}, b.st, process)
	if err != nil {
		t.Fatal(err)
	}
	b2.log.Error("cannot send a message; gave up", "chat", -42)
	b2.log.With("component", "sender").Warn("telegram flood control")
	log.With("component", "sender").Error("x")
	log.With("component", "poller").Error("x")
	log.WithGroup("g").With("component", "bot").Error("x") // g.component: not the bot's
	if !strings.Contains(buf.String(), "gave up") {
		t.Fatalf("the process log lost the bot's record: %s", buf.String())
	}
	got := p.texts()
	if len(got) != 1 || !strings.Contains(got[0], "g.component: bot") {
		t.Errorf("forwarded %q", got)
	}
}

func TestLogHandlerNoSecrets(t *testing.T) {
	_, p, log := forwardingBot(t, "warn", true) // token "1:secret"
	log.Error("post https://api/bot1:secret/sendMessage failed", "url", "https://api/bot1:secret/getMe",
		"err", fmt.Errorf("Get \"https://api/bot1:secret/x\": timeout"), "password", plugins.Secret("hunter2"),
		slog.Group("nc", "pass", plugins.Secret("hunter3")))
	got := strings.Join(p.texts(), "\n")
	for _, s := range []string{"1:secret", "hunter2", "hunter3"} {
		if strings.Contains(got, s) {
			t.Errorf("%q forwarded: %s", s, got)
		}
	}
	if !strings.Contains(got, "[redacted]") {
		t.Errorf("nothing redacted: %s", got)
	}
}

func TestLogHandlerCutsLongRecords(t *testing.T) {
	_, p, log := forwardingBot(t, "warn", true)
	log.Error("step panicked <here>", "stack", strings.Repeat("main.go:1 <x> & ", 400), "a", strings.Repeat("é", 5000))
	got := p.texts()[0]
	if n := len([]rune(got)); n > logChatTextLen+1 {
		t.Errorf("%d characters", n)
	}
	if !strings.Contains(got, "stack: "+strings.Repeat("main.go:1 &lt;x&gt; &amp; ", 10)) {
		t.Errorf("stack not shown: %.200s", got)
	}
	// Well-formed: Telegram's entities and <b> are XML's.
	d := xml.NewDecoder(strings.NewReader("<r>" + got + "</r>"))
	for {
		_, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed HTML (%v): …%s", err, got[len(got)-60:])
		}
	}
	// However the cut falls.
	b, _, _ := offlineBot(t, "warn")
	for n := 1; n < 60; n++ {
		_, text := b.fwd.format(slog.LevelError, "a <b> & c", []slog.Attr{slog.String("k", "x&y<z>")})
		cutText := cutHTML(text, n)
		d := xml.NewDecoder(strings.NewReader("<r>" + cutText + "</r>"))
		for {
			_, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("cut at %d: %q: %v", n, cutText, err)
			}
		}
	}
}

// noCalcs is the scheduler of a bot that gets no updates: Run needs one.
type noCalcs struct{ Calculations }

// When the log chat itself cannot be reached (blocked, flood control, 5xx),
// what the sender logs about it is never forwarded: no loop, and the next
// record still goes out. The bot's own logger holds LogHandler, the worst
// wiring main could choose.
func TestLogHandlerLogChatFails(t *testing.T) {
	for _, tt := range []struct {
		name   string
		fault  tgtest.Fault
		failed string // what the sender logs
	}{
		{"403", tgtest.Blocked(logChat), "chat blocked the bot"},
		{"429", tgtest.TooManyRequests("sendMessage", 1, 1), "telegram flood control"},
		{"5xx", tgtest.ServerError("sendMessage", 2), "cannot send a message; gave up"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := tgtest.New(t)
			st, err := store.Open(filepath.Join(t.TempDir(), "hpcbot.db"), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			logs := &syncBuffer{}
			text := slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})
			b, err := New(Options{
				Bot: Config{Token: plugins.Secret(srv.Token), APIURL: srv.URL, Admins: []int64{tgAdmin.ID},
					LogChatID: logChat, LogChatLevel: "debug"},
				Language: "en", PollTimeout: time.Second,
				sender: SenderOptions{PerChat: 1000, PerChatBurst: 1000, PerGroupMinute: 100000, Global: 100000,
					Attempts: 2, RetryMin: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond},
			}, st, slog.New(text))
			if err != nil {
				t.Fatal(err)
			}
			// LogHandler first: once the text handler has written a record,
			// LogHandler has seen it.
			b.log = slog.New(newRedactor(slog.NewMultiHandler(b.LogHandler(), text), newScrubber(srv.Token, nil)))
			process := slog.New(slog.NewMultiHandler(b.LogHandler(), text)).With("component", "scheduler")

			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- b.Run(ctx, noCalcs{}) }()
			t.Cleanup(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run: %v", err)
				}
			})
			srv.Wait(t, func(calls []tgtest.Call) bool { return countOK(calls, "setMyCommands") >= 2 })

			srv.Inject(tt.fault)
			process.Error("cluster refused our login", "cluster", "loc")
			for deadline := time.Now().Add(waitLimit); !strings.Contains(logs.String(), tt.failed); {
				if time.Now().After(deadline) {
					t.Fatalf("the sender did not log %q:\n%s", tt.failed, logs.String())
				}
				time.Sleep(5 * time.Millisecond)
			}
			// One chat's messages go out in order: once the next record has
			// been tried, so has anything forwarded before it.
			process.Error("the next record")
			srv.Wait(t, func(calls []tgtest.Call) bool {
				for _, c := range calls {
					if c.Code != 0 && c.ChatID() == logChat && strings.Contains(c.Text(), "the next record") {
						return true
					}
				}
				return false
			})
			for _, c := range srv.Calls("sendMessage") {
				if !strings.Contains(c.Text(), "cluster refused our login") && !strings.Contains(c.Text(), "the next record") {
					t.Errorf("sent to %d: %s", c.ChatID(), c.Text())
				}
			}
			b.fwd.mu.Lock()
			posted := b.fwd.posted
			b.fwd.mu.Unlock()
			if posted != 2 {
				t.Errorf("%d records forwarded, want 2; process log:\n%s", posted, logs.String())
			}
		})
	}
}
