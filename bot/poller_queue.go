// The poller's per-chat queues: each update goes to its chat's queue (at most
// MaxQueuedPerChat per sender; the excess is marked done at once), and a worker
// per chat runs its handlers one at a time, in order, marking each update done
// when its handler has returned.

package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"

	tele "gopkg.in/telebot.v3"
)

type pollItem struct {
	id  int64
	upd tele.Update
	who chatSender
}

// chatSender is one sender in one chat.
type chatSender struct{ chat, sender int64 }

// updateSender is who sent an update (the sender chat for a message sent on
// behalf of a chat); 0 for none.
func updateSender(u *tele.Update) int64 {
	var m *tele.Message
	switch {
	case u.Message != nil:
		m = u.Message
	case u.EditedMessage != nil:
		m = u.EditedMessage
	case u.Callback != nil && u.Callback.Sender != nil:
		return u.Callback.Sender.ID
	case u.MyChatMember != nil && u.MyChatMember.Sender != nil:
		return u.MyChatMember.Sender.ID
	case u.ChatMember != nil && u.ChatMember.Sender != nil:
		return u.ChatMember.Sender.ID
	}
	switch {
	case m == nil:
		return 0
	case m.SenderChat != nil:
		return m.SenderChat.ID
	case m.Sender != nil:
		return m.Sender.ID
	}
	return 0
}

// updateChat is the chat an update belongs to, for ordering; 0 for none.
func updateChat(u *tele.Update) int64 {
	switch {
	case u.Message != nil && u.Message.Chat != nil:
		return u.Message.Chat.ID
	case u.EditedMessage != nil && u.EditedMessage.Chat != nil:
		return u.EditedMessage.Chat.ID
	case u.Callback != nil && u.Callback.Message != nil && u.Callback.Message.Chat != nil:
		return u.Callback.Message.Chat.ID
	case u.Callback != nil && u.Callback.Sender != nil:
		return u.Callback.Sender.ID
	case u.MyChatMember != nil && u.MyChatMember.Chat != nil:
		return u.MyChatMember.Chat.ID
	case u.ChatMember != nil && u.ChatMember.Chat != nil:
		return u.ChatMember.Chat.ID
	}
	return 0
}

// dispatch queues an update behind the others of its chat. It reports false
// for an update to drop (undecodable, or over its sender's MaxQueuedPerChat in
// that chat), which the caller marks done.
func (p *Poller) dispatch(ctx context.Context, id int64, raw []byte, handle func(tele.Update)) bool {
	var u tele.Update
	if err := json.Unmarshal(raw, &u); err != nil {
		p.log.Error("cannot decode update; dropping it", "update", id, "err", err)
		return false
	}
	chat := updateChat(&u)
	who := chatSender{chat, updateSender(&u)}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.waiting[who] >= p.opts.MaxQueuedPerChat {
		p.dropped[who]++
		if p.dropped[who] == 1 {
			p.log.Warn("a sender sends updates faster than they are handled; dropping their excess until the chat's queue drains",
				"chat", chat, "sender", who.sender, "queued", p.waiting[who], "update", id)
		}
		return false
	}
	p.queues[chat] = append(p.queues[chat], pollItem{id: id, upd: u, who: who})
	p.waiting[who]++
	p.queued++
	if !p.active[chat] {
		p.active[chat] = true
		p.workers.Add(1)
		go p.work(ctx, chat, handle)
	}
	return true
}

// unwait counts one update of who as no longer waiting; p.mu is held.
func (p *Poller) unwait(who chatSender) {
	if p.waiting[who] <= 1 {
		delete(p.waiting, who)
		return
	}
	p.waiting[who]--
}

// markDropped marks dropped updates done, so that no restart hands them over.
func (p *Poller) markDropped(ids []int64) {
	if err := p.st.InboxDoneAll(ids); err != nil {
		p.log.Error("cannot mark dropped updates handled; they will be handled after a restart", "count", len(ids), "err", err)
	}
}

// work runs the handlers of one chat's queue, one at a time.
func (p *Poller) work(ctx context.Context, chat int64, handle func(tele.Update)) {
	defer p.workers.Done()
	for {
		p.mu.Lock()
		q := p.queues[chat]
		if len(q) == 0 || ctx.Err() != nil {
			// Stopping: what is left stays pending in the inbox.
			p.queued -= len(q)
			for _, it := range q {
				p.unwait(it.who)
			}
			delete(p.queues, chat)
			delete(p.active, chat)
			for who, n := range p.dropped {
				if who.chat != chat {
					continue
				}
				delete(p.dropped, who)
				p.log.Warn("dropped updates of a sender who sent them faster than they were handled", "chat", chat, "sender", who.sender, "dropped", n)
				if p.opts.OnDropped != nil {
					go p.opts.OnDropped(chat, who.sender, n)
				}
			}
			p.wakeIdleLocked()
			p.mu.Unlock()
			return
		}
		it := q[0]
		p.queues[chat] = q[1:]
		p.unwait(it.who)
		p.mu.Unlock()

		select {
		case p.sem <- struct{}{}:
		case <-ctx.Done():
			p.mu.Lock()
			p.queues[chat] = append([]pollItem{it}, p.queues[chat]...)
			p.waiting[it.who]++
			p.mu.Unlock()
			continue
		}
		p.handle(it, handle)
		<-p.sem
		p.mu.Lock()
		p.queued--
		p.wakeIdleLocked()
		p.mu.Unlock()
	}
}

func (p *Poller) wakeIdleLocked() {
	close(p.idle)
	p.idle = make(chan struct{})
}

// handle runs one handler and marks its update done.
func (p *Poller) handle(it pollItem, handle func(tele.Update)) {
	defer p.markDone(it.id)
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("update handler panicked; the update is marked done and not retried",
				"update", it.id, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	handle(it.upd)
}

func (p *Poller) markDone(id int64) {
	if err := p.st.InboxDone(id); err != nil {
		p.log.Error("cannot mark update handled; it will be handled again after a restart", "update", id, "err", err)
	}
}
