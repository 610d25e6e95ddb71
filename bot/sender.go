package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	tele "gopkg.in/telebot.v3"

	"hpcbot/internal/backoff"
	"hpcbot/store"
)

// Telegram's size limits (core.telegram.org/bots/api#sendmessage, #senddocument):
// "1-4096 characters after entities parsing", captions "0-1024 characters".
const (
	maxTextLen    = 4096
	maxCaptionLen = 1024
)

// Errors of the Sender besides the Bot API's (*APIError; see IsForbidden).
var (
	ErrSenderClosed = errors.New("telegram sender: closed")
	ErrQueueFull    = errors.New("telegram sender: queue full")
	ErrEmptyMessage = errors.New("telegram sender: nothing to send")
)

// errDeferred ends an outbox job put off behind an earlier message of its
// chat that could not be sent yet (it stays pending, in order).
var errDeferred = errors.New("telegram sender: deferred behind an earlier message")

// sendJob is one Outgoing in a chat's queue.
type sendJob struct {
	out    Outgoing
	parts  []sendPart
	next   int             // parts already sent
	key    string          // outbox key; "" for a reply or a log message
	finish func(err error) // called once, by the chat's worker
	at     time.Time       // Outgoing.At, or when queued

	// A job of a Merge chat that is one text (mergeable) takes the texts
	// waiting behind it (absorbed) into its message; they finish with it.
	mergeable bool
	line      string // the text, as it was queued (its part's text becomes the merged one)
	absorbed  []*sendJob
	leftOut   bool // did not fit in the merged message (logged)

	last *tele.Message // what Telegram answered to the last call (for Outgoing.Sent)
}

// outbox tells whether the job carries an outbox message (its own or absorbed).
func (j *sendJob) outbox() bool {
	if j.key != "" {
		return true
	}
	for _, k := range j.absorbed {
		if k.key != "" {
			return true
		}
	}
	return false
}

type sendPart struct {
	text string
	file *OutFile
	edit int // editMessageText of this message_id instead of a send
	opts MessageOptions
}

type chatQueue struct {
	jobs         []*sendJob
	running      bool
	bucket       tokenBucket
	group        tokenBucket // for group chats (id < 0)
	blockedUntil time.Time   // 429 retry_after
}

// Sender is the one queue for everything the bot sends (replies, outbox
// notifications, log chat), paced under Telegram's limits. Each chat has its
// own FIFO and worker, so a chat that is waiting (429, a slow upload) holds up
// no other chat, and messages to one chat arrive in the order queued.
//
//   - 429: the chat waits exactly retry_after, then the same message is retried.
//   - 5xx, network errors: retried with backoff, Attempts times at most.
//   - 403 (blocked by the user, removed from the group): the message is
//     dropped and logged; other chats go on.
//   - a group that became a supergroup (400 with migrate_to_chat_id): sent on
//     to the new id, and OnMigrate is told.
//   - other 4xx: dropped and logged as a bug.
//
// Telegram's 429 answers do not say whether the limit hit was the chat's or
// the bot's; the sender treats them per chat, which is what its pacing cannot
// rule out (the global bucket keeps the total under 25/s).
type Sender struct {
	c    *Client
	st   *store.Store
	log  *slog.Logger
	opts SenderOptions

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	wake   chan struct{}

	drainMu sync.Mutex // one outbox pass, or one worker's finishing, at a time

	sendErrors atomic.Int64 // Bot API calls that failed (each retry counts)
	mergedLag  atomic.Int64 // nanoseconds the oldest line of the last merged message had waited

	mu       sync.Mutex
	chats    map[int64]*chatQueue
	global   tokenBucket
	queued   int
	closed   bool
	inflight map[string]bool // outbox keys queued or being sent
	progress map[string]int  // outbox key → parts already sent (no repeats on retry)
}

// NewSender returns a running sender; Close stops it.
func NewSender(c *Client, st *store.Store, log *slog.Logger, opts SenderOptions) *Sender {
	opts.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Sender{
		c: c, st: st, log: log, opts: opts,
		ctx: ctx, cancel: cancel,
		wake:     make(chan struct{}, 1),
		chats:    map[int64]*chatQueue{},
		global:   newTokenBucket(float64(opts.Global-1), 1),
		inflight: map[string]bool{},
		progress: map[string]int{},
	}
}

// Close stops the sender: messages not yet sent are dropped (Send returns
// ErrSenderClosed; outbox messages stay pending in the store), requests
// under way are cancelled. It waits for the workers.
func (s *Sender) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// Send sends text to chatID and waits until Telegram has accepted it, the
// sender gave up (the error says why; IsForbidden for a chat that blocked
// the bot), ctx ended, or ReplyTimeout passed. A message whose wait ended
// early stays queued and is still sent.
func (s *Sender) Send(ctx context.Context, chatID int64, text string, opts ...SendOption) error {
	o := Outgoing{ChatID: chatID, Text: text}
	for _, f := range opts {
		f(&o)
	}
	return s.Deliver(ctx, o)
}

// SendDocument sends a file as a document, like Send.
func (s *Sender) SendDocument(ctx context.Context, chatID int64, f OutFile, caption string, opts ...SendOption) error {
	f.Photo = false
	o := Outgoing{ChatID: chatID, Files: []OutFile{f}, Caption: caption}
	for _, opt := range opts {
		opt(&o)
	}
	return s.Deliver(ctx, o)
}

// SendPhoto sends an image (PNG or JPEG, ≤ 10 MB) as a photo, like Send.
func (s *Sender) SendPhoto(ctx context.Context, chatID int64, name string, data []byte, caption string, opts ...SendOption) error {
	o := Outgoing{ChatID: chatID, Files: []OutFile{{Photo: true, Name: name, Data: data}}, Caption: caption}
	for _, opt := range opts {
		opt(&o)
	}
	return s.Deliver(ctx, o)
}

// Deliver queues o and waits like Send.
func (s *Sender) Deliver(ctx context.Context, o Outgoing) error {
	return s.deliverWithin(ctx, o, s.opts.ReplyTimeout)
}

// deliverWithin queues o and waits until the sender is done with it, ctx
// ends, or limit passes (0: no limit).
func (s *Sender) deliverWithin(ctx context.Context, o Outgoing, limit time.Duration) error {
	done := make(chan error, 1)
	if err := s.enqueue(o, "", 0, func(err error) { done <- err }); err != nil {
		return err
	}
	var expired <-chan time.Time
	if limit > 0 {
		t := time.NewTimer(limit)
		defer t.Stop()
		expired = t.C
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("telegram send to %d: %w", o.ChatID, ctx.Err())
	case <-expired:
		return fmt.Errorf("telegram send to %d: not delivered within %v; still queued", o.ChatID, limit)
	}
}

// Post queues o and returns at once (replies to users, the log chat): the
// error says only why it was not queued (ErrQueueFull, ErrSenderClosed,
// ErrEmptyMessage). A failure to send it is logged; messages to one chat go
// out in the order queued.
func (s *Sender) Post(o Outgoing) error {
	return s.enqueue(o, "", 0, func(error) {})
}

func (s *Sender) enqueue(o Outgoing, key string, from int, finish func(error)) error {
	parts := buildParts(o)
	if len(parts) == 0 {
		return ErrEmptyMessage
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrSenderClosed
	}
	if s.queued >= s.opts.MaxQueued {
		return ErrQueueFull
	}
	q := s.chats[o.ChatID]
	if q == nil {
		q = &chatQueue{
			bucket: newTokenBucket(s.opts.PerChat, s.opts.PerChatBurst),
			group:  newTokenBucket(float64(s.opts.PerGroupMinute-s.opts.PerChatBurst)/60, s.opts.PerChatBurst),
		}
		s.chats[o.ChatID] = q
	}
	if len(q.jobs) >= s.opts.MaxQueuedPerChat {
		return ErrQueueFull
	}
	at := o.At
	if at.IsZero() {
		at = time.Now()
	}
	j := &sendJob{out: o, parts: parts, next: min(from, len(parts)), key: key, finish: finish, at: at}
	j.mergeable = s.opts.Merge != nil && s.opts.Merge(o.ChatID) && len(o.Files) == 0 && len(parts) == 1 &&
		j.next == 0 && o.ReplyTo == 0 && o.Keyboard == nil && o.edit == 0
	if j.mergeable {
		j.line = parts[0].text
	}
	q.jobs = append(q.jobs, j)
	s.queued++
	if !q.running {
		q.running = true
		s.wg.Add(1)
		go s.work(o.ChatID, q)
	}
	return nil
}

// buildParts cuts o into API calls: the text's pieces, then the files, the
// first with the caption's first piece, then the rest of the caption.
func buildParts(o Outgoing) []sendPart {
	base := MessageOptions{DisablePreview: o.DisablePreview, Silent: o.Silent}
	if !o.Plain {
		base.ParseMode = "HTML"
	}
	if o.edit != 0 {
		return editParts(o, base)
	}
	var parts []sendPart
	for _, t := range splitMessage(o.Text, maxTextLen, !o.Plain) {
		parts = append(parts, sendPart{text: t, opts: base})
	}
	for i := range o.Files {
		p := sendPart{file: &o.Files[i], opts: base}
		if i == 0 {
			caps := splitMessage(o.Caption, maxCaptionLen, !o.Plain)
			if len(caps) > 0 {
				p.text = caps[0]
			}
			parts = append(parts, p)
			for _, c := range caps[min(1, len(caps)):] {
				parts = append(parts, sendPart{text: c, opts: base})
			}
			continue
		}
		parts = append(parts, p)
	}
	if len(parts) > 0 {
		parts[0].opts.ReplyTo = o.ReplyTo
		parts[len(parts)-1].opts.Keyboard = o.Keyboard
	}
	return parts
}

// work sends one chat's queue in order.
func (s *Sender) work(chatID int64, q *chatQueue) {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		if len(q.jobs) == 0 {
			q.running = false
			s.mu.Unlock()
			return
		}
		j := q.jobs[0]
		s.mu.Unlock()

		err := s.deliver(q, j)
		if err != nil && s.ctx.Err() != nil {
			err = ErrSenderClosed
		}

		s.mu.Lock()
		q.jobs = q.jobs[1:]
		s.queued--
		var deferred []*sendJob
		if j.outbox() && err != nil && !s.finalErr(err) {
			// Keep the chat's outbox order: what follows waits for the next pass.
			kept := q.jobs[:0:0]
			for _, k := range q.jobs {
				if k.key != "" {
					deferred = append(deferred, k)
					s.queued--
				} else {
					kept = append(kept, k)
				}
			}
			q.jobs = kept
		}
		s.mu.Unlock()
		// Under drainMu, so that no outbox pass sees a later message of
		// the chat free while an earlier one still looks busy.
		s.drainMu.Lock()
		j.finish(err)
		for _, k := range j.absorbed {
			k.finish(err)
		}
		for _, k := range deferred {
			k.finish(errDeferred)
		}
		s.drainMu.Unlock()
	}
}

// finalErr tells whether a failed message is given up for good: retrying
// cannot help (403, other 4xx, a missing file) — as opposed to 429s, 5xx or
// network trouble that outlasted the retries, or the sender closing.
func (s *Sender) finalErr(err error) bool {
	if s.ctx.Err() != nil || errors.Is(err, errDeferred) {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return !ae.Temporary()
	}
	return !isTransient(err)
}

// isTransient tells whether a failure that is not an API answer may pass:
// the network, or a call that timed out.
func isTransient(err error) bool {
	return isNetError(err) || errors.Is(err, context.DeadlineExceeded)
}

// deliver sends j's remaining parts.
func (s *Sender) deliver(q *chatQueue, j *sendJob) error {
	for j.next < len(j.parts) {
		if err := s.sendPart(q, j, j.parts[j.next]); err != nil {
			s.logFailure(j, err)
			return err
		}
		j.next++
		if j.key != "" {
			s.mu.Lock()
			s.progress[j.key] = j.next
			s.mu.Unlock()
		}
		if j.next == len(j.parts) && j.out.Sent != nil && j.last != nil {
			j.out.Sent(j.last)
		}
	}
	return nil
}

func (s *Sender) logFailure(j *sendJob, err error) {
	args := []any{"chat", j.out.ChatID, "err", err}
	if j.key != "" {
		args = append(args, "outbox", j.key)
	}
	var ae *APIError
	switch {
	case s.ctx.Err() != nil:
	case IsForbidden(err):
		s.log.Info("chat blocked the bot or removed it; message dropped", args...)
	case j.out.edit != 0 && IsMessageGone(err):
		s.log.Info("the message to edit is gone (deleted, or too old to edit); edit dropped", append(args, "message", j.out.edit)...)
	case errors.As(err, &ae) && !ae.Temporary():
		s.log.Error("telegram refused a message; dropped", args...)
	case s.finalErr(err):
		s.log.Error("cannot send a message; dropped", args...)
	case j.key != "":
		s.log.Warn("cannot send an outbox message now; it stays pending", args...)
	default:
		s.log.Error("cannot send a message; gave up", args...)
	}
}

// sendPart makes one API call, pacing it and retrying as the type says.
func (s *Sender) sendPart(q *chatQueue, j *sendJob, p sendPart) error {
	attempts, floods := 0, 0
	for {
		if err := s.pace(q, j.out.ChatID); err != nil {
			return err
		}
		if j.mergeable {
			// Now that the chat may receive: everything that waited meanwhile.
			p = s.absorb(q, j)
		}
		var err error
		switch {
		case p.edit != 0:
			_, err = s.c.EditMessageText(s.ctx, j.out.ChatID, p.edit, p.text, p.opts)
			if IsNotModified(err) { // the message already reads so
				err = nil
			}
		case p.file != nil:
			j.last, err = s.c.SendFile(s.ctx, j.out.ChatID, *p.file, p.text, p.opts)
		default:
			j.last, err = s.c.SendMessage(s.ctx, j.out.ChatID, p.text, p.opts)
		}
		if err == nil {
			if j.mergeable { // j.at is the oldest line in it
				s.mergedLag.Store(int64(time.Since(j.at)))
			}
			return nil
		}
		s.sendErrors.Add(1)
		var ae *APIError
		switch {
		case s.ctx.Err() != nil:
			return err
		case errors.As(err, &ae) && ae.Code == http.StatusTooManyRequests:
			floods++
			if floods > s.opts.FloodWaits {
				return err
			}
			wait := max(ae.RetryAfter, time.Second)
			s.mu.Lock()
			q.blockedUntil = time.Now().Add(wait)
			s.mu.Unlock()
			s.log.Warn("telegram flood control; waiting retry_after before sending to the chat again",
				"chat", j.out.ChatID, "retry_after", wait)
		case errors.As(err, &ae) && ae.MigrateTo != 0 && p.edit == 0: // message ids do not carry over
			s.log.Info("group became a supergroup; sending there", "chat", j.out.ChatID, "new_chat", ae.MigrateTo)
			if s.opts.OnMigrate != nil {
				s.opts.OnMigrate(j.out.ChatID, ae.MigrateTo)
			}
			j.out.ChatID = ae.MigrateTo
		case errors.As(err, &ae) && ae.Temporary(), ae == nil && isTransient(err):
			attempts++
			if attempts >= s.opts.Attempts {
				return err
			}
			wait := backoff.Delay(s.opts.RetryMin, s.opts.RetryMax, attempts)
			s.log.Warn("telegram send failed; retrying", "chat", j.out.ChatID, "retry_in", wait, "err", err)
			if backoff.Sleep(s.ctx, wait) != nil {
				return s.ctx.Err()
			}
		default:
			return err
		}
	}
}

// SendErrors counts the Bot API calls that failed since the start (each retry counts).
func (s *Sender) SendErrors() int64 { return s.sendErrors.Load() }
