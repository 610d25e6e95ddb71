package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	tele "gopkg.in/telebot.v3"

	"hpcbot/bot/tgtest"
	"hpcbot/store"
)

var (
	tAlice = tgtest.User{ID: 1001, FirstName: "Alice", Username: "alice", LanguageCode: "en"}
	tBob   = tgtest.User{ID: 1002, FirstName: "Bob", LanguageCode: "ru"}
	tGroup = tgtest.Group(-4001, "Lab")
)

func openTestStore(t testing.TB, path string) *store.Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "hpcbot.db")
	}
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func testPollerOptions() PollerOptions {
	return PollerOptions{Timeout: 2 * time.Second, RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond}
}

// handled records what a handler saw, for assertions.
type handled struct {
	mu   sync.Mutex
	ids  []int64
	text map[int64]string
	ch   chan int64
}

func newHandled() *handled { return &handled{text: map[int64]string{}, ch: make(chan int64, 1000)} }

func (h *handled) handle(u tele.Update) {
	h.mu.Lock()
	h.ids = append(h.ids, int64(u.ID))
	if u.Message != nil {
		h.text[int64(u.ID)] = u.Message.Text
	}
	h.mu.Unlock()
	h.ch <- int64(u.ID)
}

func (h *handled) count(id int64) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, x := range h.ids {
		if x == id {
			n++
		}
	}
	return n
}

// next waits for the next handled update (a hang guard, not a speed check).
func (h *handled) next(t *testing.T) int64 {
	t.Helper()
	select {
	case id := <-h.ch:
		return id
	case <-time.After(tgtest.WaitTimeout):
		t.Fatal("no update handled")
		return 0
	}
}

// startPoller runs p until the returned stop is called; stop returns Run's error.
func startPoller(t *testing.T, p *Poller, handle func(tele.Update)) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx, handle) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-errc
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// polledPast waits until a getUpdates confirmed every update up to id.
func polledPast(t *testing.T, srv *tgtest.Server, id int64) {
	t.Helper()
	srv.Wait(t, func(calls []tgtest.Call) bool {
		for _, c := range calls {
			if off, _ := strconv.ParseInt(c.Params["offset"], 10, 64); c.Method == "getUpdates" && off > id {
				return true
			}
		}
		return false
	})
}

func pending(t *testing.T, st *store.Store) []int64 {
	t.Helper()
	items, err := st.InboxPending()
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, it := range items {
		ids = append(ids, it.UpdateID)
	}
	return ids
}

func TestPollerHandsEachUpdateOnceInChatOrder(t *testing.T) {
	srv := tgtest.New(t)
	st := openTestStore(t, "")
	var want []int64
	for i := range 6 {
		from := []tgtest.User{tAlice, tBob}[i%2]
		want = append(want, srv.PushText(from, tgtest.Private(from), fmt.Sprint("m", i)))
	}
	h := newHandled()
	p := NewPoller(NewClient(srv.URL, srv.Token, nil), st, nil, testPollerOptions())
	stop := startPoller(t, p, h.handle)
	for range want {
		h.next(t)
	}
	polledPast(t, srv, want[len(want)-1])
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, id := range want {
		if n := h.count(id); n != 1 {
			t.Errorf("update %d handled %d times", id, n)
		}
	}
	// Within a chat, in update order.
	var alice, bob []int64
	for _, id := range h.ids {
		if h.text[id][1]%2 == 0 {
			alice = append(alice, id)
		} else {
			bob = append(bob, id)
		}
	}
	if !slices.IsSorted(alice) || !slices.IsSorted(bob) {
		t.Errorf("out of order within a chat: alice %v bob %v", alice, bob)
	}
	if p := pending(t, st); len(p) != 0 {
		t.Errorf("pending after the handlers returned: %v", p)
	}
	off, _, _ := st.Offset()
	if off != want[len(want)-1]+1 {
		t.Errorf("stored offset %d, want %d", off, want[len(want)-1]+1)
	}
}

// The bot stops after handling an update but before the next getUpdates has
// confirmed it. The next run polls with the stored offset, which confirms it
// unseen; or, when it distrusts the offset (a week without updates), Telegram
// sends it again and the inbox must drop it. Either way: handled once.
func TestPollerRedeliveredUpdateHandledOnce(t *testing.T) {
	for _, tc := range []struct {
		name  string
		clock time.Duration
	}{
		{"stored offset confirms it", 0},
		{"sent again without offset", 8 * 24 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := tgtest.New(t)
			path := filepath.Join(t.TempDir(), "hpcbot.db")
			st := openTestStore(t, path)
			id := srv.PushText(tAlice, tgtest.Private(tAlice), "/start")

			opts := testPollerOptions()
			opts.MaxQueued = 1 // the next getUpdates waits for the handler
			h := newHandled()
			p1 := NewPoller(NewClient(srv.URL, srv.Token, nil), st, nil, opts)
			stop1 := startPoller(t, p1, func(u tele.Update) {
				// From now on getUpdates fails before it confirms anything.
				srv.Inject(tgtest.ServerError("getUpdates", 0))
				h.handle(u)
			})
			h.next(t)
			srv.Wait(t, func(calls []tgtest.Call) bool {
				return len(filterCode(calls, "getUpdates", 500)) > 0
			})
			stop1()
			if u := srv.Unconfirmed(); !slices.Contains(u, id) {
				t.Fatalf("update %d was confirmed; the test needs it unconfirmed (%v)", id, u)
			}

			srv.ClearFaults()
			st.Close()
			st2 := openTestStore(t, path)
			opts2 := testPollerOptions()
			opts2.Now = func() time.Time { return time.Now().Add(tc.clock) }
			p2 := NewPoller(NewClient(srv.URL, srv.Token, nil), st2, nil, opts2)
			before := len(srv.Calls("getUpdates"))
			stop2 := startPoller(t, p2, h.handle)
			polls := srv.Wait(t, func(calls []tgtest.Call) bool {
				for _, c := range filterCalls(calls, "getUpdates")[before:] {
					if off, _ := strconv.ParseInt(c.Params["offset"], 10, 64); off > id {
						return true
					}
				}
				return false
			})
			first := filterCalls(polls, "getUpdates")[before]
			if off, sent := first.Params["offset"]; (tc.clock == 0) != sent || sent && off != strconv.FormatInt(id+1, 10) {
				t.Fatalf("the second run's first poll sent offset %q (%v)", off, sent)
			}
			later := srv.PushText(tAlice, tgtest.Private(tAlice), "/help")
			if got := h.next(t); got != later {
				t.Fatalf("handled %d, want the new update %d", got, later)
			}
			stop2()
			if n := h.count(id); n != 1 {
				t.Fatalf("update handled %d times in total", n)
			}
		})
	}
}

func filterCalls(calls []tgtest.Call, method string) []tgtest.Call {
	var out []tgtest.Call
	for _, c := range calls {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

func filterCode(calls []tgtest.Call, method string, code int) []tgtest.Call {
	var out []tgtest.Call
	for _, c := range calls {
		if c.Method == method && c.Code == code {
			out = append(out, c)
		}
	}
	return out
}

// kill -9 while a handler runs: a copy of the store taken at that moment is
// what the next run finds. The update is pending there, and handled once.
func TestPollerKilledInHandlerHandlesAfterRestart(t *testing.T) {
	srv := tgtest.New(t)
	st := openTestStore(t, "")
	id := srv.PushDocument(tAlice, tgtest.Private(tAlice), "h2o.inp", []byte("! HF\n"), "orca {}")
	other := srv.PushText(tBob, tgtest.Private(tBob), "/status")

	entered, release := make(chan int64, 2), make(chan struct{})
	p1 := NewPoller(NewClient(srv.URL, srv.Token, nil), st, nil, testPollerOptions())
	stop1 := startPoller(t, p1, func(u tele.Update) {
		if int64(u.ID) == id {
			entered <- id
			<-release
			return
		}
		entered <- int64(u.ID)
	})
	defer close(release)
	seen := map[int64]bool{}
	for len(seen) < 2 {
		seen[<-entered] = true
	}
	polledPast(t, srv, other)
	// Bob's handler has returned when it was marked; wait for that mark so
	// the snapshot is the one a kill would leave.
	waitFor(t, func() bool { return !slices.Contains(pending(t, st), other) })
	snap := filepath.Join(t.TempDir(), "killed.db")
	if _, err := st.BackupFile(snap); err != nil {
		t.Fatal(err)
	}
	go stop1() // returns once the handler is released, at the end of the test

	st2 := openTestStore(t, snap)
	if p := pending(t, st2); !slices.Equal(p, []int64{id}) {
		t.Fatalf("pending after the kill: %v, want [%d]", p, id)
	}
	h := newHandled()
	p2 := NewPoller(NewClient(srv.URL, srv.Token, nil), st2, nil, testPollerOptions())
	stop2 := startPoller(t, p2, h.handle)
	if got := h.next(t); got != id {
		t.Fatalf("handled %d after restart, want %d", got, id)
	}
	late := srv.PushText(tAlice, tgtest.Private(tAlice), "/jobs")
	if got := h.next(t); got != late {
		t.Fatalf("handled %d, want %d", got, late)
	}
	stop2()
	if h.count(id) != 1 || h.count(other) != 0 {
		t.Fatalf("after restart handled %v", h.ids)
	}
	if p := pending(t, st2); len(p) != 0 {
		t.Fatalf("still pending: %v", p)
	}
}

// waitFor polls cond (a hang guard, not a speed check).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(tgtest.WaitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// After a week without updates Telegram picks the next update_id at random,
// possibly below the stored offset, which would then confirm it unseen.
func TestPollerDistrustsOffsetAfterAWeek(t *testing.T) {
	for _, tc := range []struct {
		name    string
		age     time.Duration
		handled bool
	}{
		{"week-old offset is dropped", 8 * 24 * time.Hour, true},
		{"recent offset is used (and drops the low id, the hazard)", time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := tgtest.New(t)
			st := openTestStore(t, "")
			if _, err := st.InboxPutBatch([]store.RawUpdate{{ID: 5000, Raw: []byte(`{"update_id":5000}`)}}, 5001); err != nil {
				t.Fatal(err)
			}
			if err := st.InboxDone(5000); err != nil {
				t.Fatal(err)
			}
			srv.SetNextUpdateID(42)
			id := srv.PushText(tAlice, tgtest.Private(tAlice), "/start")

			opts := testPollerOptions()
			opts.Now = func() time.Time { return time.Now().Add(tc.age) }
			h := newHandled()
			stop := startPoller(t, NewPoller(NewClient(srv.URL, srv.Token, nil), st, nil, opts), h.handle)
			calls := srv.Wait(t, func(calls []tgtest.Call) bool { return len(filterCalls(calls, "getUpdates")) > 0 })
			first := filterCalls(calls, "getUpdates")[0]
			if tc.handled {
				if got := h.next(t); got != id {
					t.Fatalf("handled %d, want %d", got, id)
				}
				if _, ok := first.Params["offset"]; ok {
					t.Fatalf("first poll sent offset %s", first.Params["offset"])
				}
				polledPast(t, srv, id)
				if off, _, _ := st.Offset(); off != id+1 {
					t.Fatalf("stored offset %d, want %d", off, id+1)
				}
			} else {
				if first.Params["offset"] != "5001" {
					t.Fatalf("first poll offset %q, want 5001", first.Params["offset"])
				}
				// The fake drops the update as confirmed: it never reaches the bot.
				srv.Wait(t, func([]tgtest.Call) bool { return len(srv.Unconfirmed()) == 0 })
			}
			stop()
		})
	}
}

func TestPollerIgnoresUpdatesSeenBefore(t *testing.T) {
	srv := tgtest.New(t)
	st := openTestStore(t, "")
	old := srv.TextUpdate(tAlice, tgtest.Private(tAlice), "/start")
	old.UpdateID = 700
	if _, err := st.InboxPutBatch([]store.RawUpdate{{ID: 700, Raw: []byte(`{"update_id":700}`)}}, 0); err != nil {
		t.Fatal(err)
	}
	if err := st.InboxDone(700); err != nil {
		t.Fatal(err)
	}
	srv.Push(old) // Telegram sends it again
	fresh := srv.PushText(tAlice, tgtest.Private(tAlice), "/help")
	h := newHandled()
	stop := startPoller(t, NewPoller(NewClient(srv.URL, srv.Token, nil), st, nil, testPollerOptions()), h.handle)
	if got := h.next(t); got != fresh {
		t.Fatalf("handled %d, want %d", got, fresh)
	}
	polledPast(t, srv, fresh)
	stop()
	if h.count(700) != 0 {
		t.Fatal("an update seen before was handled again")
	}
}

func TestPollerRetriesAndGivesUp(t *testing.T) {
	tests := []struct {
		name  string
		fault tgtest.Fault
	}{
		{"5xx", tgtest.ServerError("getUpdates", 3)},
		{"502 page", tgtest.BadGateway("getUpdates", 2)},
		{"dropped connection", tgtest.Drop("getUpdates", 2)},
		{"409 another poller", tgtest.Conflict(2)},
		{"429", tgtest.TooManyRequests("getUpdates", 1, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := tgtest.New(t)
			st := openTestStore(t, "")
			srv.Inject(tt.fault)
			id := srv.PushText(tAlice, tgtest.Private(tAlice), "/start")
			h := newHandled()
			stop := startPoller(t, NewPoller(NewClient(srv.URL, srv.Token, nil), st, nil, testPollerOptions()), h.handle)
			if got := h.next(t); got != id {
				t.Fatalf("handled %d", got)
			}
			if err := stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			calls := srv.Calls("getUpdates")
			if tt.fault.RetryAfter > 0 {
				if gap := calls[1].Time.Sub(calls[0].Time); gap < time.Duration(tt.fault.RetryAfter)*time.Second {
					t.Fatalf("retried %v after a 429 with retry_after %ds", gap, tt.fault.RetryAfter)
				}
			}
		})
	}
	t.Run("401 ends Run", func(t *testing.T) {
		srv := tgtest.New(t)
		p := NewPoller(NewClient(srv.URL, "1:revoked", nil), openTestStore(t, ""), nil, testPollerOptions())
		err := p.Run(context.Background(), func(tele.Update) { t.Error("handled") })
		if !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("Run = %v, want ErrUnauthorized", err)
		}
		if p.Err() != err {
			t.Fatalf("Err = %v", p.Err())
		}
	})
}

func TestPollerChatsDoNotWaitForEachOther(t *testing.T) {
	srv := tgtest.New(t)
	st := openTestStore(t, "")
	slow := srv.PushText(tAlice, tgtest.Private(tAlice), "slow")
	fast := srv.PushText(tBob, tgtest.Private(tBob), "fast")
	release := make(chan struct{})
	h := newHandled()
	stop := startPoller(t, NewPoller(NewClient(srv.URL, srv.Token, nil), st, nil, testPollerOptions()), func(u tele.Update) {
		if int64(u.ID) == slow {
			<-release
		}
		h.handle(u)
	})
	if got := h.next(t); got != fast {
		t.Fatalf("handled %d first, want %d (alice's handler still runs)", got, fast)
	}
	close(release)
	if got := h.next(t); got != slow {
		t.Fatalf("handled %d", got)
	}
	stop()
}

func TestPollerPanickingHandlerIsMarkedDone(t *testing.T) {
	srv := tgtest.New(t)
	st := openTestStore(t, "")
	bad := srv.PushText(tAlice, tgtest.Private(tAlice), "boom")
	good := srv.PushText(tAlice, tgtest.Private(tAlice), "fine")
	h := newHandled()
	stop := startPoller(t, NewPoller(NewClient(srv.URL, srv.Token, nil), st, nil, testPollerOptions()), func(u tele.Update) {
		if int64(u.ID) == bad {
			panic("handler bug")
		}
		h.handle(u)
	})
	if got := h.next(t); got != good {
		t.Fatalf("handled %d", got)
	}
	stop()
	if p := pending(t, st); len(p) != 0 {
		t.Fatalf("pending: %v", p)
	}
}

// One chat floods the bot while its handler is stuck: 1,150 updates, more
// than MaxQueued. Its queue holds MaxQueuedPerChat; the excess is marked done
// without a handler (never replayed after a restart), and polling goes on
// for the other chats: Bob is answered while Alice's handler still waits.
// (Before the per-chat cap, polling stopped at MaxQueued and Bob waited.)
func TestPollerFloodedChatDropsExcessOthersGoOn(t *testing.T) {
	srv := tgtest.New(t)
	path := filepath.Join(t.TempDir(), "hpcbot.db")
	st := openTestStore(t, path)
	const flood = 1150
	var alice []int64
	for i := range flood {
		alice = append(alice, srv.PushText(tAlice, tgtest.Private(tAlice), fmt.Sprint("flood ", i)))
	}
	bob := srv.PushText(tBob, tgtest.Private(tBob), "/status")

	var mu sync.Mutex
	var handledAlice []int64
	bobDone := make(chan struct{})
	release := make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	opts := testPollerOptions() // MaxQueued 1000, MaxQueuedPerChat 100: the defaults
	told := make(chan [3]int64, 4)
	opts.OnDropped = func(chat, sender int64, n int) { told <- [3]int64{chat, sender, int64(n)} }
	p := NewPoller(NewClient(srv.URL, srv.Token, nil), st, log, opts)
	stop := startPoller(t, p, func(u tele.Update) {
		id := int64(u.ID)
		if id == bob {
			close(bobDone)
			return
		}
		if id == alice[0] {
			<-release
		}
		mu.Lock()
		handledAlice = append(handledAlice, id)
		mu.Unlock()
	})
	t.Cleanup(free) // runs before startPoller's stop, which waits for the handler
	select {
	case <-bobDone:
	case <-time.After(tgtest.WaitTimeout): // a hang guard
		t.Fatalf("Bob's update not handled while Alice's chat is flooded; pending %d", len(pending(t, st)))
	}
	polledPast(t, srv, bob)
	waitFor(t, func() bool { return !slices.Contains(pending(t, st), bob) }) // marked after its handler returned
	// Alice's handler is still stuck. Pending: what waits for her handler, a
	// prefix of her updates; the rest is already marked done.
	held := pending(t, st)
	k := len(held)
	const limit = 100 // PollerOptions' default MaxQueuedPerChat
	if k < limit || k > limit+1 || !slices.Equal(held, alice[:k]) {
		t.Fatalf("pending while Alice's handler waits: %d updates %v…, want her first %d or %d", k, held[:min(k, 3)], limit, limit+1)
	}
	free()
	waitFor(t, func() bool { return len(pending(t, st)) == 0 })
	waitFor(t, func() bool { return strings.Contains(logs.String(), "dropped updates of a sender") })
	mu.Lock()
	got := slices.Clone(handledAlice)
	mu.Unlock()
	if !slices.Equal(got, alice[:k]) {
		t.Fatalf("Alice's handled updates: %d, want her first %d in order", len(got), k)
	}
	select {
	case got := <-told:
		if want := [3]int64{tAlice.ID, tAlice.ID, int64(flood - k)}; got != want {
			t.Errorf("OnDropped(chat, sender, n) = %v, want %v", got, want)
		}
	case <-time.After(tgtest.WaitTimeout):
		t.Error("OnDropped not called")
	}
	if n := strings.Count(logs.String(), "dropping their excess"); n != 1 {
		t.Errorf("the start of the drop logged %d times, want once", n)
	}
	if want := fmt.Sprintf("dropped=%d", flood-k); !strings.Contains(logs.String(), want) {
		t.Errorf("the count of dropped updates (%s) not logged:\n%s", want, logs.String())
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// A restart hands over nothing of the flood.
	h := newHandled()
	stop2 := startPoller(t, NewPoller(NewClient(srv.URL, srv.Token, nil), st, nil, testPollerOptions()), h.handle)
	later := srv.PushText(tAlice, tgtest.Private(tAlice), "/help")
	if id := h.next(t); id != later {
		t.Fatalf("after the restart handled %d, want only the new update %d", id, later)
	}
	stop2()
	if len(h.ids) != 1 {
		t.Fatalf("after the restart handled %v", h.ids)
	}
}

// The poller as telebot's Poller: Bot.Start/Stop, handlers registered with
// Handle, replies through telebot.
func TestPollerDrivesTelebot(t *testing.T) {
	srv := tgtest.New(t)
	st := openTestStore(t, "")
	p := NewPoller(NewClient(srv.URL, srv.Token, nil), st, nil, testPollerOptions())
	b, err := tele.NewBot(tele.Settings{URL: srv.URL, Token: srv.Token, Synchronous: true, Poller: p})
	if err != nil {
		t.Fatal(err)
	}
	b.Handle("/start", func(c tele.Context) error { return c.Send("hello " + c.Sender().FirstName) })
	id := srv.PushText(tAlice, tgtest.Private(tAlice), "/start")
	srv.PushText(tAlice, tgtest.Private(tAlice), "a sticker-like message nobody handles")
	done := make(chan struct{})
	go func() { b.Start(); close(done) }()
	sent := srv.WaitCalls(t, "sendMessage", 1)
	if sent[0].Text() != "hello Alice" || sent[0].ChatID() != tAlice.ID {
		t.Fatalf("reply %+v", sent[0])
	}
	polledPast(t, srv, id+1)
	waitFor(t, func() bool { return len(pending(t, st)) == 0 })
	b.Stop()
	<-done
	select {
	case <-p.Done():
	default:
		t.Fatal("Poll still running after Bot.Stop")
	}
	if p.Err() != nil {
		t.Fatalf("Err = %v", p.Err())
	}
}

func TestClientErrorsHideToken(t *testing.T) {
	srv := tgtest.New(t)
	c := NewClient(srv.URL, srv.Token, nil)
	srv.Close()
	_, err := c.SendMessage(context.Background(), 1, "x", MessageOptions{})
	if err == nil {
		t.Fatal("no error from a closed server")
	}
	_, secret, _ := strings.Cut(srv.Token, ":")
	if got := err.Error(); strings.Contains(got, secret) {
		t.Fatalf("error shows the token: %s", got)
	}
	_, err = c.GetUpdates(context.Background(), 0, 1, 0, nil)
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("getUpdates error %v", err)
	}
}

// BenchmarkPollerInbox measures updates stored in the inbox and handed to the
// handler per second (one bbolt commit per getUpdates answer of 100).
func BenchmarkPollerInbox(b *testing.B) {
	srv := tgtest.New(b)
	st := openTestStore(b, "")
	for i := range b.N {
		srv.PushRaw(fmt.Appendf(nil, `{"update_id":%d,"message":{"message_id":%d,"date":1,"chat":{"id":%d,"type":"private"},"text":"hi"}}`, i+1, i+1, 1000+i%50))
	}
	var n int
	var mu sync.Mutex
	all := make(chan struct{})
	p := NewPoller(NewClient(srv.URL, srv.Token, nil), st, nil, PollerOptions{Timeout: time.Second, RetryMin: time.Millisecond, RetryMax: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	b.ResetTimer()
	start := time.Now()
	go p.Run(ctx, func(tele.Update) {
		mu.Lock()
		n++
		if n == b.N {
			close(all)
		}
		mu.Unlock()
	})
	<-all
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	<-p.Done()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "updates/s")
}

// Many runs, each killed at a random point (a copy of the store taken while
// a handler is half-way, or when idle, is what the next run opens; the fake
// keeps whatever it was told). Runs alternate between "the next getUpdates
// waits for the handlers", so the kill lands before Telegram's confirmation
// and updates come again, and free polling. Every update's handler must
// complete once, plus once more only when the kill fell between its return
// and the commit of its done mark (the next run finds it pending): that
// window is why handlers make their effects idempotent on the update id
// (store.CreateCalculation's ErrDuplicateUpdate).
func TestPollerSurvivesRepeatedKills(t *testing.T) {
	srv := tgtest.New(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "run0.db")
	rng := rand.New(rand.NewPCG(4, 2))

	var mu sync.Mutex
	completed := map[int64]int{}
	redo := map[int64]int{} // completed, yet pending in the store the next run opened
	var all []int64
	allDone := func() bool {
		for _, id := range all {
			if completed[id] == 0 {
				return false
			}
		}
		return true
	}
	const runs = 25
	for run := 0; run <= runs; run++ {
		if run < runs {
			for range 1 + rng.IntN(4) {
				id := srv.PushText(tAlice, tgtest.Private(tAlice), fmt.Sprint("run ", run))
				mu.Lock()
				all = append(all, id)
				mu.Unlock()
			}
		}
		st, err := store.Open(path, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		for _, id := range pending(t, st) {
			if completed[id] > 0 {
				redo[id]++
			}
		}
		mu.Unlock()
		killAt := rng.IntN(4) // handlers completed in this run before the kill
		if run == runs {
			killAt = -1 // the last run ends cleanly
		}
		n := 0
		entered, release, idle := make(chan struct{}), make(chan struct{}), make(chan struct{}, 1)
		opts := testPollerOptions()
		opts.Timeout = time.Second
		opts.Workers = 1
		if run%2 == 0 {
			opts.MaxQueued = 1
		}
		if rng.IntN(3) == 0 {
			// As after a week of silence: no offset, so Telegram sends
			// again what the last run did not confirm.
			opts.Now = func() time.Time { return time.Now().Add(8 * 24 * time.Hour) }
		}
		p := NewPoller(NewClient(srv.URL, srv.Token, nil), st, nil, opts)
		ctx, cancel := context.WithCancel(context.Background())
		go p.Run(ctx, func(u tele.Update) {
			mu.Lock()
			if n == killAt {
				n++
				mu.Unlock()
				close(entered)
				<-release // killed here: never completes
				return
			}
			n++
			completed[int64(u.ID)]++
			done := allDone()
			mu.Unlock()
			if done {
				select {
				case idle <- struct{}{}:
				default:
				}
			}
		})
		mu.Lock()
		done := allDone()
		mu.Unlock()
		if !done {
			select {
			case <-entered:
			case <-idle:
			case <-time.After(tgtest.WaitTimeout):
				t.Fatalf("run %d: no progress", run)
			}
		}
		// kill -9: the process stops talking to Telegram, and what is on
		// disk is what the next run finds.
		srv.Inject(tgtest.Drop("getUpdates", 0))
		next := filepath.Join(dir, fmt.Sprintf("run%d.db", run+1))
		if _, err := st.BackupFile(next); err != nil {
			t.Fatal(err)
		}
		cancel()
		close(release)
		<-p.Done()
		st.Close()
		srv.ClearFaults()
		path = next
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range all {
		if completed[id] != 1+redo[id] {
			t.Errorf("update %d completed %d times, killed %d times before its done mark", id, completed[id], redo[id])
		}
	}
	t.Logf("%d updates over %d runs; %d handled again after a kill between handler and done mark", len(all), runs+1, len(redo))
	if len(completed) != len(all) {
		t.Errorf("%d updates completed, %d sent", len(completed), len(all))
	}
}
