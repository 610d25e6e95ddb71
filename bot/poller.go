package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	tele "gopkg.in/telebot.v3"

	"hpcbot/internal/backoff"
	"hpcbot/store"
)

// Poller receives updates by long polling and hands each one to the handlers
// until one handler run has finished, even across crashes (see point 3 for the
// one case of a second run; docs/FACTS.md#telegram-getupdates-confirmation and
// docs/FACTS.md#telebot-offset-handling).
//
// Telegram confirms an update when getUpdates is next called with a higher
// offset, and telebot's LongPoller (like the other Go libraries) moves the
// offset as soon as an update is received, so a crash before the handler
// ends loses it. Here:
//
//  1. every getUpdates answer is stored in the store's inbox, keyed by
//     update_id, together with the next offset, in one transaction
//     (store.InboxPutBatch); only then does the next getUpdates send that
//     offset and so confirm the updates to Telegram;
//  2. an update_id already in the inbox (redelivered because the bot stopped
//     before confirming it) is not handed over again;
//  3. an update is marked done (store.InboxDone) when its handler has
//     returned; after a restart, the updates still pending are handled first,
//     in update_id order. A crash between a handler's return and that commit
//     runs the handler again after the restart, so handlers make their
//     effects idempotent on the update id (store.CreateCalculation refuses a
//     second calculation from one update with ErrDuplicateUpdate);
//  4. a stored offset older than a week is not used: Telegram then picks
//     update ids at random, possibly below it, and the offset would confirm
//     (drop) them unseen. The poller asks without offset and relies on the
//     inbox to drop what it has seen.
//
// Handlers run concurrently for different chats and one at a time, in order,
// within a chat (a slow download for one user does not hold up the others).
// One sender's work in a chat is bounded: at most MaxQueuedPerChat of their
// updates there wait for a handler; the excess is marked done at once,
// without a handler (one transaction per getUpdates answer), counted in the
// log when the chat's queue has drained, and reported to OnDropped. So a
// sender who floods the bot faster than its handlers run loses their excess,
// never replayed after a restart, while polling, the other chats and the other
// members of the same group go on: the global bound MaxQueued, which stops
// polling, cannot be filled by one sender.
// "Done" means the handler function returned (or panicked: a panic is logged
// with its stack and the update is not retried, so that it cannot crash the
// bot at every restart). With telebot, handle is Bot.ProcessUpdate of a bot
// made with Settings.Synchronous, so that ProcessUpdate returns only when the
// handler has finished; with an asynchronous bot "done" would mean "started".
//
// Errors: network errors and 5xx are retried with backoff (1 s doubling to
// 30 s, with jitter); 429 waits retry_after; 409 Conflict (another process
// polls with the same token) is logged and retried with backoff; 401 ends Run
// with an error wrapping ErrUnauthorized. Handled updates are pruned from the
// inbox after store.InboxKeep and a day.
type Poller struct {
	c    *Client
	st   *store.Store
	log  *slog.Logger
	opts PollerOptions

	mu      sync.Mutex
	queues  map[int64][]pollItem // per chat, in update order
	active  map[int64]bool       // chats with a worker
	waiting map[chatSender]int   // updates queued per sender in a chat (the cap)
	dropped map[chatSender]int   // per sender in a chat, updates dropped since the chat's queue was last empty
	queued  int                  // items in queues and in handlers
	workers sync.WaitGroup
	sem     chan struct{}
	idle    chan struct{} // closed and replaced when queued drops

	done chan struct{}
	err  error
}

// PollerOptions tune a Poller; zero values take the defaults.
type PollerOptions struct {
	// Timeout is getUpdates' long-poll timeout (default 50 s).
	Timeout time.Duration
	// Limit is how many updates one getUpdates may return, 1–100 (default 100).
	Limit int
	// AllowedUpdates are the update kinds to receive (default: message,
	// edited_message, callback_query, my_chat_member).
	AllowedUpdates []string
	// Workers is how many handlers may run at once (default 8).
	Workers int
	// MaxQueued stops polling while this many updates wait for a handler (default 1000).
	MaxQueued int
	// MaxQueuedPerChat is how many updates of one sender in one chat may wait
	// for a handler; more are dropped (default 100). Keep it well below
	// MaxQueued, so that one sender cannot stop polling for all.
	MaxQueuedPerChat int
	// OnDropped is told, once a chat's queue has drained, how many updates of
	// a sender there were dropped (the bot tells the sender to send again).
	OnDropped func(chat, sender int64, n int)
	// RetryMin and RetryMax bound the backoff after a failed getUpdates (1 s, 30 s).
	RetryMin, RetryMax time.Duration
	// PruneEvery is how often handled updates are pruned (default 1 h).
	PruneEvery time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (o *PollerOptions) setDefaults() {
	if o.Timeout <= 0 {
		o.Timeout = 50 * time.Second
	}
	if o.Limit <= 0 || o.Limit > 100 {
		o.Limit = 100
	}
	if o.AllowedUpdates == nil {
		o.AllowedUpdates = []string{"message", "edited_message", "callback_query", "my_chat_member"}
	}
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.MaxQueued <= 0 {
		o.MaxQueued = 1000
	}
	if o.MaxQueuedPerChat <= 0 {
		o.MaxQueuedPerChat = 100
	}
	if o.RetryMin <= 0 {
		o.RetryMin = time.Second
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(30*time.Second, o.RetryMin)
	}
	if o.PruneEvery <= 0 {
		o.PruneEvery = time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// staleOffset is how old the last update may be before the stored offset is
// distrusted: "If there are no new updates for at least a week, then
// identifier of the next update will be chosen randomly instead of
// sequentially" (core.telegram.org/bots/api#update).
const staleOffset = 7 * 24 * time.Hour

// pruneAfter is how long handled update ids are kept: a week (Telegram's
// random restart) and a day of margin.
const pruneAfter = store.InboxKeep + 24*time.Hour

var _ tele.Poller = (*Poller)(nil)

// NewPoller returns a poller that calls the Bot API through c and keeps its
// inbox and offset in st.
func NewPoller(c *Client, st *store.Store, log *slog.Logger, opts PollerOptions) *Poller {
	opts.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Poller{
		c: c, st: st, log: log, opts: opts,
		queues:  map[int64][]pollItem{},
		active:  map[int64]bool{},
		waiting: map[chatSender]int{},
		dropped: map[chatSender]int{},
		sem:     make(chan struct{}, opts.Workers),
		idle:    make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// Poll implements tele.Poller: it runs Run with b.ProcessUpdate as the handler
// until stop is closed (Bot.Stop). b must be made with Settings.Synchronous;
// dest is not used, since handing an update to telebot's channel would lose
// track of when its handler ends. When polling ends on its own (a refused
// token), Done is closed and Err says why.
func (p *Poller) Poll(b *tele.Bot, _ chan tele.Update, stop chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := p.Run(ctx, b.ProcessUpdate); err != nil {
		p.log.Error("telegram polling stopped", "err", err)
	}
}

// Done is closed when Run has returned.
func (p *Poller) Done() <-chan struct{} { return p.done }

// Err is why Run returned: nil after ctx ended, else an error wrapping
// ErrUnauthorized or a store failure at start. Valid after Done is closed.
func (p *Poller) Err() error {
	<-p.done
	return p.err
}

// Run hands the updates still pending in the inbox to handle, then polls
// until ctx ends (it returns nil) or the Bot API refuses the token. Before
// returning it waits for the handlers that have started; updates not yet
// started stay pending in the inbox for the next run. Run may be called once.
func (p *Poller) Run(ctx context.Context, handle func(tele.Update)) (err error) {
	defer func() {
		p.err = err
		close(p.done)
	}()
	ctx, stopWorkers := context.WithCancel(ctx)
	defer func() {
		stopWorkers()
		p.workers.Wait()
	}()

	pending, err := p.st.InboxPending()
	if err != nil {
		return fmt.Errorf("telegram inbox: %w", err)
	}
	if len(pending) > 0 {
		p.log.Info("handling updates left pending by the last run", "count", len(pending))
	}
	var drop []int64
	for _, it := range pending {
		if !p.dispatch(ctx, it.UpdateID, it.Raw, handle) {
			drop = append(drop, it.UpdateID)
		}
	}
	p.markDropped(drop)

	offset, last, err := p.st.Offset()
	if err != nil {
		return fmt.Errorf("telegram offset: %w", err)
	}
	if offset != 0 && !last.IsZero() && p.opts.Now().Sub(last) > staleOffset {
		p.log.Info("the last update is more than a week old; polling without the stored offset, since Telegram restarts update ids at random after a week of silence",
			"offset", offset, "last_update", last)
		offset = 0
	}

	p.prune()
	nextPrune := p.opts.Now().Add(p.opts.PruneEvery)
	fails := 0 // consecutive failures, for the backoff
	for {
		if err := p.waitRoom(ctx); err != nil {
			return nil
		}
		if now := p.opts.Now(); now.After(nextPrune) {
			p.prune()
			nextPrune = now.Add(p.opts.PruneEvery)
		}
		ups, err := p.c.GetUpdates(ctx, offset, p.opts.Limit, p.opts.Timeout, p.opts.AllowedUpdates)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if errors.Is(err, ErrUnauthorized) {
				return err
			}
			wait := p.retryDelay(err, &fails)
			if backoff.Sleep(ctx, wait) != nil {
				return nil
			}
			continue
		}
		fails = 0
		if len(ups) == 0 {
			continue
		}
		next := offset
		for _, u := range ups {
			next = max(next, u.ID+1)
		}
		inserted, err := p.st.InboxPutBatch(ups, next)
		if err != nil {
			// Not stored: keep the offset, so Telegram sends them again.
			fails++
			wait := backoff.Delay(p.opts.RetryMin, p.opts.RetryMax, fails)
			p.log.Error("cannot store updates in the inbox; they stay unconfirmed and come again", "retry_in", wait, "err", err)
			if backoff.Sleep(ctx, wait) != nil {
				return nil
			}
			continue
		}
		offset = next
		drop = drop[:0]
		for i, u := range ups {
			if !inserted[i] {
				p.log.Debug("update seen before; not handled again", "update", u.ID)
				continue
			}
			if !p.dispatch(ctx, u.ID, u.Raw, handle) {
				drop = append(drop, u.ID)
			}
		}
		p.markDropped(drop)
	}
}

// retryDelay logs a failed poll and says how long to wait: retry_after for a
// 429, else the backoff after one more failure in *fails.
func (p *Poller) retryDelay(err error, fails *int) time.Duration {
	var ae *APIError
	if errors.As(err, &ae) && ae.Code == http.StatusTooManyRequests && ae.RetryAfter > 0 {
		p.log.Warn("telegram asks to wait before polling again", "retry_after", ae.RetryAfter, "err", err)
		return ae.RetryAfter
	}
	*fails++
	wait := backoff.Delay(p.opts.RetryMin, p.opts.RetryMax, *fails)
	switch {
	case errors.As(err, &ae) && ae.Code == http.StatusConflict:
		p.log.Warn("another process is polling with this bot token (409 Conflict); is a second hpcbot running? Telegram delivers each update to one of them only",
			"retry_in", wait, "err", err)
	default:
		p.log.Warn("getUpdates failed; retrying", "retry_in", wait, "err", err)
	}
	return wait
}

func (p *Poller) prune() {
	n, err := p.st.InboxPrune(p.opts.Now().Add(-pruneAfter))
	if err != nil {
		p.log.Warn("prune telegram inbox", "err", err)
		return
	}
	if n > 0 {
		p.log.Debug("pruned handled updates from the inbox", "count", n)
	}
}

// waitRoom blocks while MaxQueued updates wait for handlers.
func (p *Poller) waitRoom(ctx context.Context) error {
	for {
		p.mu.Lock()
		full, idle := p.queued >= p.opts.MaxQueued, p.idle
		p.mu.Unlock()
		if !full {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-idle:
		}
	}
}
