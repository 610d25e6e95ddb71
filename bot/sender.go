package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
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

// Escape makes a user-supplied string safe inside a text in Telegram's HTML
// parse mode: "All <, > and & symbols that are not a part of a tag or an HTML
// entity must be replaced with the corresponding HTML entities"
// (core.telegram.org/bots/api#html-style); quotes too, for attributes.
func Escape(s string) string { return tgEscaper.Replace(s) }

var tgEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")

// Outgoing is one message for the Sender: a text, files, or a text followed
// by files. Texts and captions are in Telegram's HTML parse mode (escape what
// users wrote with Escape) unless Plain is set; a text over 4096 characters is
// sent as several messages cut at line breaks, and a caption over 1024 goes
// on in text messages after its file.
type Outgoing struct {
	ChatID         int64
	Text           string
	Files          []OutFile
	Caption        string     // of the first file
	Plain          bool       // no parse mode
	ReplyTo        int        // message_id the first part answers
	ReplyMarkup    any        // sent with the last part (e.g. *tele.ReplyMarkup)
	Keyboard       [][]Button // inline keyboard of the last part (instead of ReplyMarkup)
	DisablePreview bool
	Silent         bool
	// At is when the event the message reports happened (its line's time in
	// a merged message, see SenderOptions.Merge); zero: when it was queued.
	At time.Time
	// Sent, when set, is called with the message of the last part once
	// Telegram accepted it (by the chat's worker, before the message counts
	// as sent: an outbox item is marked done after it returns), so that the
	// caller can keep the message's id (the calculation's card).
	Sent func(*tele.Message)

	edit int // message_id whose text and keyboard become Text and Keyboard (Sender.Edit)
}

// SendOption adjusts an Outgoing.
type SendOption func(*Outgoing)

// Plain sends the text without parse mode.
func Plain() SendOption { return func(o *Outgoing) { o.Plain = true } }

// ReplyTo makes the message an answer to messageID.
func ReplyTo(messageID int) SendOption { return func(o *Outgoing) { o.ReplyTo = messageID } }

// WithMarkup attaches a keyboard (e.g. *tele.ReplyMarkup) to the last part.
func WithMarkup(m any) SendOption { return func(o *Outgoing) { o.ReplyMarkup = m } }

// WithKeyboard attaches an inline keyboard to the last part.
func WithKeyboard(kb [][]Button) SendOption { return func(o *Outgoing) { o.Keyboard = kb } }

// NoPreview turns link previews off.
func NoPreview() SendOption { return func(o *Outgoing) { o.DisablePreview = true } }

// Silent sends without notification sound.
func Silent() SendOption { return func(o *Outgoing) { o.Silent = true } }

// Errors of the Sender besides the Bot API's (*APIError; see IsForbidden).
var (
	ErrSenderClosed = errors.New("telegram sender: closed")
	ErrQueueFull    = errors.New("telegram sender: queue full")
	ErrEmptyMessage = errors.New("telegram sender: nothing to send")
)

// errDeferred ends an outbox job put off behind an earlier message of its
// chat that could not be sent yet (it stays pending, in order).
var errDeferred = errors.New("telegram sender: deferred behind an earlier message")

// SenderOptions tune a Sender; zero values take the defaults, which follow
// Telegram's Bot FAQ (docs/FACTS.md#telegram-rate-limits).
type SenderOptions struct {
	// PerChat messages a second to one chat, with bursts of PerChatBurst (1, 3).
	PerChat      float64
	PerChatBurst int
	// PerGroupMinute messages a minute to one group or supergroup, counted
	// over any 60 s (20).
	PerGroupMinute int
	// Global messages a second to all chats together, counted over any second (25).
	Global int
	// Attempts bounds the tries of one message after 5xx and network
	// errors (5); RetryMin and RetryMax bound the backoff between them (1 s, 30 s).
	Attempts           int
	RetryMin, RetryMax time.Duration
	// FloodWaits bounds how many 429s in a row one message waits out (20).
	FloodWaits int
	// ReplyTimeout bounds how long Send waits for delivery (2 min).
	ReplyTimeout time.Duration
	// MaxQueued bounds the messages waiting in memory (10000), and
	// MaxQueuedPerChat those for one chat (1000), so that a chat that cannot
	// receive (a log chat under flood control) does not fill the queue.
	MaxQueued, MaxQueuedPerChat int
	// OutboxEvery is how often DrainOutbox retries pending messages (1 min).
	OutboxEvery time.Duration
	// OnMigrate is told when a group became a supergroup (the message is
	// sent on to the new chat id).
	OnMigrate func(from, to int64)
	// Merge tells which chats get their waiting texts merged (the log chat):
	// when the chat may receive again, every text waiting behind the one due
	// (up to a file, which is sent on its own, in order) goes out in the same
	// message, one line each with its time, so the chat is never more than
	// one pacing interval behind, whatever the rate of messages. Lines that do
	// not fit in one message are left out of the chat with a count (the
	// process log has them).
	Merge func(chatID int64) bool
	// Language of the lines the sender writes itself (the count of lines
	// left out of a merged message): the log chat's.
	Language string
}

func (o *SenderOptions) setDefaults() {
	if o.PerChat <= 0 {
		o.PerChat = 1
	}
	if o.PerChatBurst <= 0 {
		o.PerChatBurst = 3
	}
	if o.PerGroupMinute <= 0 {
		o.PerGroupMinute = 20
	}
	if o.Global <= 0 {
		o.Global = 25
	}
	if o.Attempts <= 0 {
		o.Attempts = 5
	}
	if o.RetryMin <= 0 {
		o.RetryMin = time.Second
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(30*time.Second, o.RetryMin)
	}
	if o.FloodWaits <= 0 {
		o.FloodWaits = 20
	}
	if o.ReplyTimeout <= 0 {
		o.ReplyTimeout = 2 * time.Minute
	}
	if o.MaxQueued <= 0 {
		o.MaxQueued = 10000
	}
	if o.MaxQueuedPerChat <= 0 {
		o.MaxQueuedPerChat = 1000
	}
	if o.OutboxEvery <= 0 {
		o.OutboxEvery = time.Minute
	}
	if SupportedLanguage(o.Language) == "" {
		o.Language = Languages[0]
	}
}

// tokenBucket lets at most burst + rate·T events through in any window of
// length T. Tokens may go negative: a reservation then says how long to wait.
type tokenBucket struct {
	rate   float64 // tokens a second
	burst  float64
	tokens float64
	last   time.Time
}

func newTokenBucket(rate float64, burst int) tokenBucket {
	return tokenBucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

// reserve takes a token and returns how long to wait before using it.
func (b *tokenBucket) reserve(now time.Time) time.Duration {
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	b.tokens--
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

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
	done := make(chan error, 1)
	if err := s.enqueue(o, "", 0, func(err error) { done <- err }); err != nil {
		return err
	}
	t := time.NewTimer(s.opts.ReplyTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("telegram send to %d: %w", o.ChatID, ctx.Err())
	case <-t.C:
		return fmt.Errorf("telegram send to %d: not delivered within %v; still queued", o.ChatID, s.opts.ReplyTimeout)
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
		j.next == 0 && o.ReplyTo == 0 && o.ReplyMarkup == nil && o.Keyboard == nil && o.edit == 0
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
		parts[len(parts)-1].opts.ReplyMarkup = o.ReplyMarkup
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

// MergedLag is how long the oldest line of the last merged message (the log
// chat's) had waited when Telegram took it; 0 before the first.
func (s *Sender) MergedLag() time.Duration { return time.Duration(s.mergedLag.Load()) }

// mergedLineLen caps one line of a merged message, in characters: enough
// for the bot's longest notification line (a reason cut to 500 characters
// in its template), whose end says what to do ("/redeliver N").
const mergedLineLen = 1000

// absorb takes into j (due to be sent: the head of q) the mergeable texts
// waiting right behind it, and returns j's part with the merged text: one
// line per message, oldest first, each with its time, as many as fit in one
// message; the count of the others ends it. The texts left out are logged.
func (s *Sender) absorb(q *chatQueue, j *sendJob) sendPart {
	s.mu.Lock()
	n := 0
	for _, k := range q.jobs[min(1, len(q.jobs)):] {
		if !k.mergeable {
			break
		}
		n++
	}
	if n > 0 {
		j.absorbed = append(j.absorbed, q.jobs[1:1+n]...)
		q.jobs = append(q.jobs[:1], q.jobs[1+n:]...)
		s.queued -= n
	}
	s.mu.Unlock()
	p := j.parts[0]
	if len(j.absorbed) == 0 {
		return p
	}
	all := append([]*sendJob{j}, j.absorbed...)
	lines := make([]string, 0, len(all))
	used := 0
	left := 0
	for i, k := range all {
		line := mergedLine(k)
		// Room for this line and, when more follow, the count of the rest.
		room := maxTextLen - 100
		if i == len(all)-1 {
			room = maxTextLen
		}
		if left > 0 || used+tgLen(line)+1 > room {
			left++
			if !k.leftOut {
				k.leftOut = true
				s.log.Info("log chat line left out of a merged message (more waited than one message holds)",
					"chat", j.out.ChatID, "at", k.at, "text", k.line)
			}
			continue
		}
		lines = append(lines, line)
		used += tgLen(line) + 1
	}
	if left > 0 {
		lines = append(lines, tr(s.opts.Language, "log.merged_left_out", P{"lines": plural(s.opts.Language, int64(left), "more line", "more lines", "строка", "строки", "строк")}))
	}
	p.text = strings.Join(lines, "\n")
	p.opts.DisablePreview = true
	j.parts[0] = p
	return p
}

// mergedLine is one message as a line of a merged message: its time, then
// its text on one line, at most mergedLineLen characters.
func mergedLine(k *sendJob) string {
	text := k.line
	if k.out.Plain {
		text = Escape(text)
	}
	text = strings.ReplaceAll(strings.TrimSpace(text), "\n", " · ")
	if pieces := splitMessage(text, mergedLineLen, true); len(pieces) > 1 {
		text = pieces[0] + "…"
	}
	return "<code>" + k.at.Format("15:04:05") + "</code> " + text
}

// pace waits until the chat may receive: its 429 wait, its bucket, its
// group's bucket, then the global bucket.
func (s *Sender) pace(q *chatQueue, chatID int64) error {
	s.mu.Lock()
	wait := time.Until(q.blockedUntil)
	s.mu.Unlock()
	if backoff.Sleep(s.ctx, wait) != nil {
		return s.ctx.Err()
	}
	s.mu.Lock()
	now := time.Now()
	wait = q.bucket.reserve(now)
	if chatID < 0 {
		wait = max(wait, q.group.reserve(now))
	}
	s.mu.Unlock()
	if backoff.Sleep(s.ctx, wait) != nil {
		return s.ctx.Err()
	}
	// The global slot is taken only now, so that chats released together
	// by their own buckets cannot bunch up past the global rate.
	s.mu.Lock()
	wait = s.global.reserve(time.Now())
	s.mu.Unlock()
	if backoff.Sleep(s.ctx, wait) != nil {
		return s.ctx.Err()
	}
	return nil
}

// Wake makes DrainOutbox look at the outbox now (after OutboxPut).
func (s *Sender) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// DrainOutbox sends the store's pending outbox messages until ctx ends: at
// once, after each Wake, and every OutboxEvery to retry. render turns an item
// into what to send (in its recipient's language); its Outgoing.ChatID
// defaults to the item's. Each item is marked done (store.OutboxDone) only
// after Telegram accepted all of it, or when it can never be delivered (403,
// another 4xx, a render error: logged); after 429s, 5xx or network errors
// that outlast the retries it stays pending, and the messages queued after it
// for the same chat wait with it, so a chat gets its messages in order.
func (s *Sender) DrainOutbox(ctx context.Context, render func(store.OutItem) (Outgoing, error)) {
	t := time.NewTicker(s.opts.OutboxEvery)
	defer t.Stop()
	for {
		s.drainOnce(render)
		select {
		case <-ctx.Done():
			return
		case <-s.ctx.Done():
			return
		case <-s.wake:
		case <-t.C:
		}
	}
}

func (s *Sender) drainOnce(render func(store.OutItem) (Outgoing, error)) {
	s.drainMu.Lock()
	defer s.drainMu.Unlock()
	items, err := s.st.OutboxPending()
	if err != nil {
		s.log.Error("read outbox", "err", err)
		return
	}
	for _, it := range items {
		s.mu.Lock()
		busy, from := s.inflight[it.Key], s.progress[it.Key]
		s.mu.Unlock()
		if busy {
			continue
		}
		o, err := render(it)
		if err != nil {
			s.log.Error("cannot render an outbox message; dropped", "outbox", it.Key, "kind", it.Msg.Kind, "err", err)
			s.outboxDone(it.Key)
			continue
		}
		if o.ChatID == 0 {
			o.ChatID = it.Msg.ChatID
		}
		key := it.Key
		s.mu.Lock()
		s.inflight[key] = true
		s.mu.Unlock()
		err = s.enqueue(o, key, from, func(err error) { s.outboxFinished(key, err) })
		if err != nil {
			s.mu.Lock()
			delete(s.inflight, key)
			s.mu.Unlock()
			if errors.Is(err, ErrEmptyMessage) {
				s.log.Error("outbox message renders to nothing; dropped", "outbox", key, "kind", it.Msg.Kind)
				s.outboxDone(key)
				continue
			}
			return // full or closed: the next pass goes on
		}
	}
}

func (s *Sender) outboxFinished(key string, err error) {
	if err == nil || s.finalErr(err) {
		s.outboxDone(key)
	}
	s.mu.Lock()
	delete(s.inflight, key)
	s.mu.Unlock()
}

func (s *Sender) outboxDone(key string) {
	if err := s.st.OutboxDone(key); err != nil {
		s.log.Error("cannot mark an outbox message sent; it may be sent again", "outbox", key, "err", err)
		return
	}
	s.mu.Lock()
	delete(s.progress, key)
	s.mu.Unlock()
}
