// sender_outbox.go: the durable outbox (store) drained through the sender.

package bot

import (
	"context"
	"errors"
	"time"

	"hpcbot/store"
)

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
