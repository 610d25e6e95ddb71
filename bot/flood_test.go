package bot

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hpcbot/bot/tgtest"
	"hpcbot/plugins"
	"hpcbot/store"
)

// floodEnv is a bot against the fake Bot API with Telegram's real pacing (1
// message a second to a chat, bursts of 3; 25 a second in all): the pace a
// flood of one chat must not impose on the others. No scheduler: the clusters
// are empty (fakeClusters).
type floodEnv struct {
	srv *tgtest.Server
	st  *store.Store
	bot *Bot
}

func startFloodBot(tb testing.TB, now func() time.Time) *floodEnv {
	tb.Helper()
	e := &floodEnv{srv: tgtest.New(tb)}
	st, err := store.Open(filepath.Join(tb.TempDir(), "hpcbot.db"), store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	e.st = st
	b, err := New(Options{
		Bot: Config{Token: plugins.Secret(e.srv.Token), APIURL: e.srv.URL, Admins: []int64{tgAdmin.ID},
			LogChatID: logChat, LogChatLevel: "info", Groups: []int64{groupChat.ID}},
		Language:    "en",
		PollTimeout: time.Second,
	}, st, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if now != nil {
		b.now = now
	}
	e.bot = b
	e.register(tb, floodMarker)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); b.Run(ctx, fakeClusters{}) }()
	tb.Cleanup(func() { cancel(); wg.Wait() })
	e.srv.Wait(tb, func(calls []tgtest.Call) bool { return countOK(calls, "setMyCommands") >= 2 })
	return e
}

// floodMarker is a registered user whose update marks "all pushed so far".
var floodMarker = tgtest.User{ID: 9009, FirstName: "Mark", LanguageCode: "en"}

// register registers a Telegram user (not approved, the default quota).
func (e *floodEnv) register(tb testing.TB, u tgtest.User) {
	tb.Helper()
	if _, _, err := e.st.RegisterUser(store.TelegramAccount{TelegramID: u.ID, Username: u.Username,
		DisplayName: u.FirstName, LanguageCode: u.LanguageCode}, 3); err != nil {
		tb.Fatal(err)
	}
}

// queuedTo is how many messages to a chat wait in the bot's sender.
func (e *floodEnv) queuedTo(chat int64) int {
	s := e.bot.out
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.chats[chat]; q != nil {
		return len(q.jobs)
	}
	return 0
}

// drained waits until every update pushed so far is handled (or dropped)
// and the outbox is empty.
func (e *floodEnv) drained(t *testing.T) {
	t.Helper()
	last := e.srv.PushText(floodMarker, tgtest.Private(floodMarker), "/jobs")
	polledPast(t, e.srv, last)
	waitFor(t, func() bool {
		in, err := e.st.InboxPending()
		if err != nil {
			t.Fatal(err)
		}
		out, err := e.st.OutboxPending()
		if err != nil {
			t.Fatal(err)
		}
		return len(in) == 0 && len(out) == 0
	})
}

// textsTo are the texts sent to a chat (sendMessage calls, answered or not).
func textsTo(calls []tgtest.Call, chat int64) []string {
	var out []string
	want := strconv.FormatInt(chat, 10)
	for _, c := range calls {
		if c.Method == "sendMessage" && c.Params["chat_id"] == want {
			out = append(out, c.Text())
		}
	}
	return out
}

// An unregistered sender floods the bot with 1,500 messages, then a
// registered user asks /status. Telegram lets the bot send one message a
// second to the stranger; before, each refusal waited for that pace and
// polling stopped at 1,000 waiting updates, so the user's answer came after
// the stranger's 500th refusal or so (minutes). Now the user is answered
// (the wait below is only a hang guard), the stranger hears the help and the
// refusal once, and all 1,500 updates end marked done.
func TestStrangerFloodDoesNotDelayUsers(t *testing.T) {
	e := startFloodBot(t, nil)
	stranger := tgtest.User{ID: 4004, FirstName: "Eve", LanguageCode: "de"}
	e.register(t, tgUser)
	e.flood(stranger, 1500)
	e.srv.PushText(tgUser, tgtest.Private(tgUser), "/status")
	calls := e.srv.Wait(t, func(calls []tgtest.Call) bool { return sentTo(calls, tgUser.ID) > 0 })
	if got := textsTo(calls, tgUser.ID); !strings.Contains(got[0], "@ivan 2002") {
		t.Errorf("the user's answer: %q", got[0])
	}
	if n := sentTo(calls, stranger.ID); n > 2 {
		t.Errorf("the stranger had been sent %d messages when the user was answered, want the help and one refusal", n)
	}
	e.drained(t)
	refusal := tr("en", "auth.unregistered", P{"admin": e.bot.adminContact("en"), "id": stranger.ID})
	calls = e.srv.Calls("sendMessage")
	got := textsTo(calls, stranger.ID)
	if len(got) != 2 || got[1] != refusal || e.queuedTo(stranger.ID) != 0 {
		t.Errorf("the stranger was sent %d messages (%d more queued), want the help and the refusal once: %.80q",
			len(got), e.queuedTo(stranger.ID), got)
	}
	// The log chat hears once of each kind of attempt: the unregistered
	// sender's messages, and their admin commands (in one message or two:
	// lines that wait for the chat are merged, each with its time).
	logLines := strings.Split(strings.Join(textsTo(calls, logChat), "\n"), "\n")
	if len(logLines) != 2 || !strings.Contains(logLines[0], "Unregistered Eve (4004) wrote") ||
		!strings.Contains(logLines[1], "tried /approve without being an admin") {
		t.Errorf("the log chat was told %.80q, want once of the stranger and once of their /approve", logLines)
	}
}

// Refusals are said once per refuseEvery to each sender: an unregistered
// one (the help and how to get access, to /start; the refusal alone, to
// anything else), a blocked one, a non-admin trying an admin command.
func TestRefusalsOncePerInterval(t *testing.T) {
	var skew atomic.Int64
	e := startFloodBot(t, func() time.Time { return time.Now().Add(time.Duration(skew.Load())) })
	stranger := tgtest.User{ID: 4004, FirstName: "Eve", LanguageCode: "de"}
	blocked := tgtest.User{ID: 3003, FirstName: "Bob", LanguageCode: "en"}
	e.register(t, tgUser)
	e.register(t, blocked)
	bu, _, _ := e.st.UserByTelegramID(blocked.ID)
	if _, err := e.st.UpdateUser(bu.ID, func(_ *store.Tx, u *store.User) error { u.Blocked = true; return nil }); err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"/start", "hello", "/status", "/approve 1", "/help", "/jobs"} {
		e.srv.PushText(stranger, tgtest.Private(stranger), text)
	}
	for range 4 {
		e.srv.PushDocument(blocked, tgtest.Private(blocked), "x.sh", []byte("echo\n"), "")
		e.srv.PushText(tgUser, tgtest.Private(tgUser), "/block 2")
	}
	e.drained(t)
	waitFor(t, func() bool { return e.queuedTo(stranger.ID)+e.queuedTo(blocked.ID)+e.queuedTo(tgUser.ID) == 0 })
	calls := e.srv.Calls("sendMessage")
	unregistered := tr("en", "auth.unregistered", P{"admin": e.bot.adminContact("en"), "id": stranger.ID})
	if got := textsTo(calls, stranger.ID); len(got) != 2 || got[1] != unregistered {
		t.Errorf("the stranger was sent %d messages, want the help and one refusal: %.80q", len(got), got)
	}
	isBlocked := tr("en", "auth.blocked", P{"admin": e.bot.adminContact("en")})
	if got := textsTo(calls, blocked.ID); len(got) != 1 || got[0] != isBlocked {
		t.Errorf("the blocked user was sent %.80q, want one refusal", got)
	}
	notAdmin := tr("en", "auth.not_admin", P{"command": "/block"})
	if got := textsTo(calls, tgUser.ID); len(got) != 1 || got[0] != notAdmin {
		t.Errorf("the user trying /block was sent %.80q, want one refusal", got)
	}
	if n := strings.Count(strings.Join(textsTo(calls, logChat), "\n"), "/block"); n > 1 {
		t.Errorf("the log chat heard of /block %d times", n)
	}

	// A refusal interval later, each is told again, once.
	skew.Add(int64(refuseEvery))
	for range 3 {
		e.srv.PushText(stranger, tgtest.Private(stranger), "hello")
		e.srv.PushDocument(blocked, tgtest.Private(blocked), "x.sh", []byte("echo\n"), "")
	}
	e.drained(t)
	waitFor(t, func() bool { return e.queuedTo(stranger.ID)+e.queuedTo(blocked.ID) == 0 })
	calls = e.srv.Calls("sendMessage")
	if got := textsTo(calls, stranger.ID); len(got) != 3 || got[2] != unregistered {
		t.Errorf("after the interval the stranger was sent %.80q, want one more refusal", got)
	}
	if got := textsTo(calls, blocked.ID); len(got) != 2 || got[1] != isBlocked {
		t.Errorf("after the interval the blocked user was sent %.80q, want one more refusal", got)
	}
}

// floodTexts are what a stranger floods with, in turn.
var floodTexts = []string{"/start", "hello", "/status", "/approve 1", "/jobs"}

// flood pushes n messages from u in its private chat.
func (e *floodEnv) flood(u tgtest.User, n int) {
	for i := range n {
		e.srv.PushText(u, tgtest.Private(u), floodTexts[i%len(floodTexts)])
	}
}

// sentTo counts the sendMessage calls to a chat, answered or not.
func sentTo(calls []tgtest.Call, chat int64) int {
	n := 0
	want := strconv.FormatInt(chat, 10)
	for _, c := range calls {
		if c.Method == "sendMessage" && c.Params["chat_id"] == want {
			n++
		}
	}
	return n
}

// BenchmarkReplyUnderFlood measures a registered user's /status → its answer
// (the fake Bot API's record of the sendMessage), with Telegram's real
// pacing: "quiet" alone, "flood2000" right after an unregistered sender sent
// 2,000 messages. Each op has a new stranger and a new user; between ops the
// flood is left to drain (untimed). stranger-msgs/op: messages the stranger
// had been sent when the user's answer went out.
func BenchmarkReplyUnderFlood(b *testing.B) {
	for _, tc := range []struct {
		name  string
		flood int
	}{{"quiet", 0}, {"flood2000", 2000}} {
		b.Run(tc.name, func(b *testing.B) {
			e := startFloodBot(b, nil)
			strangerMsgs := 0
			b.ResetTimer()
			b.StopTimer()
			for i := range b.N {
				stranger := tgtest.User{ID: 7_000_000 + int64(i), FirstName: "Eve", LanguageCode: "de"}
				user := tgtest.User{ID: 8_000_000 + int64(i), FirstName: "Ivan", LanguageCode: "en"}
				e.register(b, user)
				e.flood(stranger, tc.flood)
				b.StartTimer()
				e.srv.PushText(user, tgtest.Private(user), "/status")
				var calls []tgtest.Call
				for {
					calls = e.srv.Calls("sendMessage")
					if sentTo(calls, user.ID) > 0 {
						break
					}
					time.Sleep(time.Millisecond)
				}
				b.StopTimer()
				strangerMsgs += sentTo(calls, stranger.ID)
				if i < b.N-1 {
					for {
						p, err := e.st.InboxPending()
						if err != nil {
							b.Fatal(err)
						}
						if len(p) == 0 {
							break
						}
						time.Sleep(10 * time.Millisecond)
					}
				}
			}
			b.ReportMetric(float64(strangerMsgs)/float64(b.N), "stranger-msgs/op")
		})
	}
}

// In an allowed group one member's stream of commands gets them one answer a
// minute, so a newcomer's /access there is answered next, not after the
// stream (the group's messages go out in order, 20 a minute).
func TestGroupRepliesOncePerSender(t *testing.T) {
	e := startFloodBot(t, nil)
	stranger := tgtest.User{ID: 4004, FirstName: "Eve", LanguageCode: "en"}
	nina := tgtest.User{ID: 5005, FirstName: "Nina", LanguageCode: "en"}
	e.register(t, tgUser)
	for i := range 90 {
		e.srv.PushText(stranger, groupChat, []string{"/help", "/status", "/jobs", "/nonsense"}[i%4])
		e.srv.PushText(tgUser, groupChat, []string{"/status", "/help"}[i%2])
	}
	e.srv.PushText(nina, groupChat, "/access")
	calls := e.srv.Wait(t, func(calls []tgtest.Call) bool {
		for _, text := range textsTo(calls, groupChat.ID) {
			if strings.Contains(text, "Welcome, Nina") {
				return true
			}
		}
		return false
	})
	got := textsTo(calls, groupChat.ID)
	if len(got) != 3 || !strings.Contains(got[2], "Welcome, Nina") {
		t.Errorf("the group was sent %d messages up to Nina's welcome, want one for each of the two others and hers: %.60q", len(got), got)
	}
}
