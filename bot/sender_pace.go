// sender_pace.go: the sender's options and its pacing within Telegram's limits
// (token buckets per chat, per group and in all).

package bot

import (
	"time"

	"hpcbot/internal/backoff"
)

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
