package bot

import (
	"context"
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

// stepClock advances a second each time it is read.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

// TestConnectReportsOnceAMinute: while the Bot API cannot be reached at start,
// the bot retries and says so in one clear line a minute (on its clock), not
// once per try; once it answers, Run goes on.
func TestConnectReportsOnceAMinute(t *testing.T) {
	srv := tgtest.New(t)
	srv.Inject(tgtest.Drop("getMe", 0)) // every getMe: the connection closes without an answer
	st, err := store.Open(filepath.Join(t.TempDir(), "hpcbot.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var logs syncBuffer
	b, err := New(Options{Bot: Config{Token: plugins.Secret(srv.Token), APIURL: srv.URL, Admins: []int64{1}}, Language: "en"},
		st, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	b.connectMin, b.connectMax = time.Millisecond, time.Millisecond
	b.now = (&stepClock{t: time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC)}).now
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx, noCalcs{}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	const tries = 200 // 200 s on the bot's clock
	srv.Wait(t, func(calls []tgtest.Call) bool {
		return countOK(calls, "getMe") == 0 && len(filterMethod(calls, "getMe")) >= tries
	})
	srv.ClearFaults()
	srv.Wait(t, func(calls []tgtest.Call) bool { return countOK(calls, "setMyCommands") >= 2 })

	text := logs.String()
	lines := strings.Count(text, "cannot reach the Bot API at "+srv.URL)
	// One line at the first failure, then one per minute of the clock: about
	// 4 for 200 tries a second apart; never one a try.
	if lines < 2 || lines > 1+tries/30 {
		t.Errorf("%d lines about the unreachable Bot API for %d+ tries, want one a minute:\n%s", lines, tries, text)
	}
	if !strings.Contains(text, "the Bot API answers again") {
		t.Errorf("no line when the Bot API answered again:\n%s", text)
	}
	if strings.Contains(text, srv.Token) {
		t.Errorf("the log shows the token:\n%s", text)
	}
}

func filterMethod(calls []tgtest.Call, method string) []tgtest.Call {
	var out []tgtest.Call
	for _, c := range calls {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}
