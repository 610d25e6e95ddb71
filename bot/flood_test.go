package bot

import (
	"context"
	"path/filepath"
	"strconv"
	"sync"
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

func startFloodBot(tb testing.TB) *floodEnv {
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
			LogChatID: logChat, LogChatLevel: "info"},
		Language:    "en",
		PollTimeout: time.Second,
	}, st, nil)
	if err != nil {
		tb.Fatal(err)
	}
	e.bot = b
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); b.Run(ctx, fakeClusters{}) }()
	tb.Cleanup(func() { cancel(); wg.Wait() })
	e.srv.Wait(tb, func(calls []tgtest.Call) bool { return countOK(calls, "setMyCommands") >= 2 })
	return e
}

// register registers a Telegram user (not approved, the default quota).
func (e *floodEnv) register(tb testing.TB, u tgtest.User) {
	tb.Helper()
	if _, _, err := e.st.RegisterUser(store.TelegramAccount{TelegramID: u.ID, Username: u.Username,
		DisplayName: u.FirstName, LanguageCode: u.LanguageCode}, 3); err != nil {
		tb.Fatal(err)
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
			e := startFloodBot(b)
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
