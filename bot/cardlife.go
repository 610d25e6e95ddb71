package bot

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	tele "gopkg.in/telebot.v3"

	"hpcbot/scheduler"
	"hpcbot/store"
)

var _ scheduler.Watcher = (*Bot)(nil)

// cardRefreshEvery is how often the live cards are looked at without being
// told of a change: the elapsed time of running jobs (elapsedText changes at
// most once a minute) and a change the bot was not told of.
const cardRefreshEvery = time.Minute

// Outbox items of kind cardKind are a calculation's card: Params[paramCard]
// is the calc id, Params[paramLang] the language, Params[paramActions] the
// buttons (comma-separated cardActions), Params[paramText] the text.
const (
	cardKind     = "card"
	paramCard    = "card"
	paramLang    = "lang"
	paramActions = "actions"
)

// Changed is the scheduler's Watcher: a calculation changed (a poll saw its
// job queued, started, end...): the live cards are looked at soon.
func (b *Bot) Changed(uint64) { b.kickCards() }

func (b *Bot) kickCards() {
	select {
	case b.cardKick <- struct{}{}:
	default:
	}
}

// keepCards edits the live cards when told of a change and every
// cardRefreshEvery, until ctx ends; it returns once their edits did.
func (b *Bot) keepCards(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(cardRefreshEvery)
	defer t.Stop()
	for {
		b.refreshCards(ctx, &wg)
		select {
		case <-ctx.Done():
			return
		case <-b.cardKick:
		case <-t.C:
		}
	}
}

// refreshCards brings every live card up to date, each card in a goroutine
// of its own (counted in wg): an edit waits in its chat's queue (a 429's
// retry_after, a slow upload of results to that chat), which must hold up
// no other chat's card. A card whose last pass is still under way is
// skipped; that pass looks again once it ends.
func (b *Bot) refreshCards(ctx context.Context, wg *sync.WaitGroup) {
	cards, err := b.st.LiveCards()
	if err != nil {
		b.log.Error("read live cards", "err", err)
		return
	}
	for _, cd := range cards {
		if ctx.Err() != nil {
			return
		}
		id := cd.CalcID
		if !b.cardLock.start(id) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.applyCard(ctx, id); err != nil {
				b.log.Warn("update card", "calc", id, "err", err)
			}
			if b.cardLock.end(id) {
				b.kickCards()
			}
		}()
	}
}

// cardLocks serializes the work on one card (the refresher and a button),
// and keeps one refresh of a card under way at a time (start, end).
type cardLocks struct {
	mu    sync.Mutex
	locks map[uint64]*cardLock
	busy  map[uint64]bool // cards being refreshed → a pass skipped the card meanwhile
}

// start marks card id as being refreshed, unless it already is (false: the
// refresh under way is told to have the cards looked at again when it ends).
func (l *cardLocks) start(id uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.busy == nil {
		l.busy = map[uint64]bool{}
	}
	if _, ok := l.busy[id]; ok {
		l.busy[id] = true
		return false
	}
	l.busy[id] = false
	return true
}

// end marks the refresh of card id over and tells whether a pass skipped
// the card meanwhile.
func (l *cardLocks) end(id uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	skipped := l.busy[id]
	delete(l.busy, id)
	return skipped
}

type cardLock struct {
	mu    sync.Mutex
	users int
}

func (l *cardLocks) lock(id uint64) func() {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[uint64]*cardLock{}
	}
	c := l.locks[id]
	if c == nil {
		c = &cardLock{}
		l.locks[id] = c
	}
	c.users++
	l.mu.Unlock()
	c.mu.Lock()
	return func() {
		c.mu.Unlock()
		l.mu.Lock()
		if c.users--; c.users == 0 {
			delete(l.locks, id)
		}
		l.mu.Unlock()
	}
}

// langOf is the language of the calculation's owner (the bot's when unknown).
func (b *Bot) langOf(telegramID int64) string {
	if acc, err := b.st.AccountByTelegramID(telegramID); err == nil {
		if l := SupportedLanguage(acc.LanguageCode); l != "" {
			return l
		}
	}
	return b.lang
}

// cardView is calculation c's card as it should read now: text, keyboard
// and their hash.
func (b *Bot) cardView(c store.Calculation, cd store.Card, lang string) (string, [][]Button, string) {
	text := b.cardText(c, cd.Confirm, lang, b.now())
	kb := cardKeyboard(lang, c.ID, cardActions(c, cd.Confirm), cd.Reruns)
	return text, kb, cardHash(text, kb)
}

// applyCard edits calculation id's card to what it should read, when that
// differs from what it shows (the hash recorded after the last edit), and
// records the new hash after Telegram took the edit. A crash between the two
// makes the next run edit again to the same text: Telegram's "message is not
// modified" counts as done (Sender.Edit). A card the user deleted is marked
// gone and left alone. A card at its end stops being live, and so does one
// never sent whose calculation is at its end.
func (b *Bot) applyCard(ctx context.Context, id uint64) error {
	defer b.cardLock.lock(id)()
	cd, err := b.st.Card(id)
	if err != nil {
		return err
	}
	if !cd.Live {
		return nil
	}
	if cd.Gone {
		_, err := b.st.UpdateCard(id, func(c *store.Card) error { c.Live = false; return nil })
		return err
	}
	c, err := b.st.Calc(id)
	if errors.Is(err, store.ErrNotFound) {
		_, err = b.st.UpdateCard(id, func(c *store.Card) error { c.Live = false; return nil })
		return err
	}
	if err != nil {
		return err
	}
	if cd.MessageID == 0 {
		// Not sent yet: the outbox sends it, and cardSent makes it live
		// again. Once the calculation is at its end nothing changes the card
		// by itself, so a card never sent (403: the user blocked the bot)
		// leaves the live set.
		if !cardAtEnd(c) {
			return nil
		}
		_, err = b.st.UpdateCard(id, func(c *store.Card) error {
			if c.MessageID == 0 {
				c.Live = false
			}
			return nil
		})
		return err
	}
	text, kb, hash := b.cardView(c, cd, b.langOf(c.TelegramID))
	final := cardAtEnd(c)
	if hash != cd.Hash {
		if b.out == nil {
			return errors.New("the bot is not running")
		}
		err := b.out.Edit(ctx, cd.ChatID, cd.MessageID, text, kb)
		if IsMessageGone(err) {
			b.log.Info("card deleted in Telegram; not edited again", "calc", id, "chat", cd.ChatID, "message", cd.MessageID)
			_, err = b.st.UpdateCard(id, func(c *store.Card) error {
				if c.MessageID == cd.MessageID {
					c.Gone, c.Live = true, false
				}
				return nil
			})
			return err
		}
		if err != nil {
			return fmt.Errorf("edit card of calc %d: %w", id, err)
		}
		if f := b.cardEdited.Load(); f != nil {
			(*f)(id)
		}
	} else if !final {
		return nil
	}
	_, err = b.st.UpdateCard(id, func(c *store.Card) error {
		if c.MessageID != cd.MessageID {
			return nil // sent again meanwhile: that message has its own hash
		}
		// The hash is what the message shows now, even when a button was
		// pressed meanwhile; the card then stays live for the next pass.
		pressed := c.Confirm != cd.Confirm || c.Reruns != cd.Reruns
		c.Hash, c.Live = hash, !final || pressed
		return nil
	})
	return err
}

// newCard queues calculation c's card for chatID under outbox key (once per
// key), and makes sure the calculation has a card record (the message id
// comes once it is sent).
func (b *Bot) newCard(c store.Calculation, chatID int64, key string) error {
	if _, err := b.st.UpdateCard(c.ID, func(cd *store.Card) error {
		if cd.ChatID == 0 {
			cd.ChatID, cd.Live = chatID, true
		}
		return nil
	}); err != nil {
		return err
	}
	return b.queue(key, b.cardMessage(c, chatID, b.langOf(c.TelegramID)))
}

// cardMessage is the outbox message of calculation c's card in lang, as it
// reads now.
func (b *Bot) cardMessage(c store.Calculation, chatID int64, lang string) store.OutMsg {
	acts := cardActions(c, "")
	names := make([]string, len(acts))
	for i, a := range acts {
		names[i] = string(a)
	}
	return store.OutMsg{ChatID: chatID, Kind: cardKind, Params: map[string]string{
		paramText: b.cardText(c, "", lang, b.now()), paramCard: strconv.FormatUint(c.ID, 10),
		paramLang: lang, paramActions: strings.Join(names, ","),
	}}
}

// renderCard completes the outbox card's Outgoing: its keyboard, and, once
// sent, the record of its message.
func (b *Bot) renderCard(it store.OutItem, o *Outgoing) error {
	id, err := strconv.ParseUint(it.Msg.Params[paramCard], 10, 64)
	if err != nil {
		return fmt.Errorf("outbox %s: card %q: %w", it.Key, it.Msg.Params[paramCard], err)
	}
	var acts []cardAction
	for a := range strings.SplitSeq(it.Msg.Params[paramActions], ",") {
		if a != "" {
			acts = append(acts, cardAction(a))
		}
	}
	o.Keyboard = cardKeyboard(it.Msg.Params[paramLang], id, acts, 0) // no question on a card sent anew
	hash := cardHash(o.Text, o.Keyboard)
	o.Sent = func(m *tele.Message) { b.cardSent(id, m, hash) }
	return nil
}

// cardSent records the message that became calculation id's card. The
// message it replaces (an earlier card re-sent by /jobs N) loses its buttons.
func (b *Bot) cardSent(id uint64, m *tele.Message, hash string) {
	if m == nil || m.Chat == nil {
		return
	}
	var old store.Card
	_, err := b.st.UpdateCard(id, func(c *store.Card) error {
		old = *c
		c.ChatID, c.MessageID, c.Hash, c.Gone, c.Confirm, c.Live = m.Chat.ID, m.ID, hash, false, "", true
		return nil
	})
	if err != nil {
		b.log.Error("record the card's message; it will not be updated", "calc", id, "err", err)
		return
	}
	if old.MessageID != 0 && old.MessageID != m.ID && !old.Gone && b.out != nil && b.api != nil {
		// Best effort, off the sender's worker: a failure leaves buttons that
		// answer for the calculation's current state.
		go func() {
			ctx, cancel := context.WithTimeout(b.out.ctx, 30*time.Second)
			defer cancel()
			err := b.api.EditMessageReplyMarkup(ctx, old.ChatID, old.MessageID, nil)
			if err != nil && !IsMessageGone(err) && !IsNotModified(err) {
				b.log.Info("remove the buttons of a replaced card", "calc", id, "err", err)
			}
		}()
	}
	b.kickCards()
}
