// handlers_jobs.go: /jobs (the list, and one calculation's card) and /cancel.

package bot

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"hpcbot/scheduler"
	"hpcbot/store"
)

// jobsShown is how many calculations /jobs lists.
const jobsShown = 10

// cmdJobs lists the sender's recent calculations with their state marks;
// /jobs N sends calculation N's card again (as a new message, which becomes
// the card that is kept up to date).
func (b *Bot) cmdJobs(r *request) error {
	if !b.needKnown(r) {
		return nil
	}
	arg := firstWord(r.payload())
	if r.admin && strings.EqualFold(arg, "all") {
		return b.jobsAll(r)
	}
	if arg != "" {
		id, err := strconv.ParseUint(strings.TrimPrefix(arg, "#"), 10, 64)
		if err != nil || id == 0 {
			r.reply("jobs.usage", nil)
			return nil
		}
		return b.showCard(r, id)
	}
	calcs, err := b.st.CalcsOfUser(r.user.ID, time.Time{}, jobsShown)
	if err != nil {
		return fmt.Errorf("list calculations: %w", err)
	}
	if len(calcs) == 0 {
		r.reply("jobs.none", nil)
		return nil
	}
	lines := []string{tr(r.lang, "jobs.header", nil)}
	for _, c := range calcs {
		lines = append(lines, b.jobLine(r.lang, c))
	}
	r.send(strings.Join(lines, "\n"))
	return nil
}

func (b *Bot) jobLine(lang string, c store.Calculation) string {
	job := HTML("")
	if c.JobID != "" {
		job = HTML(tr(lang, "jobs.job", P{"job": c.JobID}))
	}
	state := c.State
	ended := HTML("")
	if outcome, at, ok := jobOutcome(c); ok {
		if c.State == store.StateRetrieved || c.State == store.StateDelivered || c.State == store.StateNotified {
			state = outcome // "succeeded" says more than "done"
		}
		ended = HTML(tr(lang, "jobs.ended", P{"at": at.Local().Format(timeLayout)}))
	}
	return tr(lang, "jobs.line", P{
		"mark": stateMark(c), "id": c.ID, "file": c.InputName, "program": c.Program, "cluster": c.Cluster,
		"state": stateName(lang, state), "job": job, "created": c.Created.Local().Format(timeLayout), "ended": ended,
	})
}

// showCard sends calculation id's card again, to the sender's own
// calculation or, for an admin, anyone's.
func (b *Bot) showCard(r *request, id uint64) error {
	c, err := b.st.Calc(id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && c.UserID != r.user.ID && !r.admin) {
		r.reply("cancel.not_found", P{"id": id})
		return nil
	}
	if err != nil {
		return fmt.Errorf("read calc %d: %w", id, err)
	}
	key := fmt.Sprintf("update/%d/card/%d", r.update, id)
	if c.UserID != r.user.ID {
		// An admin looking at someone's calculation gets a copy as it reads
		// now, in the admin's language, without buttons: the owner's card
		// stays the live one, in the owner's chat.
		if err := b.queue(key, store.OutMsg{ChatID: r.chat.ID, Kind: "jobs.card_copy",
			Params: map[string]string{paramText: b.cardText(c, "", r.lang, b.now())}}); err != nil {
			return fmt.Errorf("queue a copy of the card of calc %d: %w", id, err)
		}
		return nil
	}
	if err := b.newCard(c, r.chat.ID, key); err != nil {
		return fmt.Errorf("queue the card of calc %d: %w", id, err)
	}
	return nil
}

// timeLayout is how /jobs shows times.
const timeLayout = "2006-01-02 15:04"

// jobOutcome is how and when the calculation's job ended (store's Outcome),
// or when it went to error.
func jobOutcome(c store.Calculation) (store.State, time.Time, bool) {
	if n := len(c.History); n > 0 && c.History[n-1].State == store.StateError {
		return store.StateError, c.History[n-1].At, true
	}
	return c.Outcome()
}

func stateName(lang string, s store.State) string { return tr(lang, "state."+string(s), nil) }

// cmdCancel stops a calculation: the sender's own, or anyone's for an admin.
func (b *Bot) cmdCancel(r *request) error {
	if !b.needKnown(r) {
		return nil
	}
	id, err := strconv.ParseUint(strings.TrimPrefix(r.payload(), "#"), 10, 64)
	if err != nil || id == 0 {
		r.reply("cancel.usage", nil)
		return nil
	}
	c, err := b.st.Calc(id)
	if err == nil && c.UserID != r.user.ID && !r.admin {
		r.refused("cancel.not_found", P{"id": id}, "") // someone else's
		return nil
	}
	if errors.Is(err, store.ErrNotFound) {
		r.reply("cancel.not_found", P{"id": id})
		return nil
	}
	if err != nil {
		return fmt.Errorf("read calc %d: %w", id, err)
	}
	r.reply(b.cancelCalc(r, c), P{"id": id})
	return nil
}

// cancelCalc stops calculation c for the sender of r (its owner or an
// admin), tells the owner when an admin did it and the log chat, and returns
// the catalog key of the answer (cancel.*, with {id}). /cancel and the
// card's Cancel button both stop a calculation through it.
func (b *Bot) cancelCalc(r *request, c store.Calculation) string {
	id := c.ID
	err := b.calcs.Cancel(r.ctx, id)
	b.kickCards()
	switch {
	case err == nil:
		r.log.Info("calculation cancelled", "calc", id)
		if c.UserID != r.user.ID {
			b.tellCancelledBy(r, c)
		}
		b.toLogChat(slog.LevelInfo, r.logKey("cancel"), "log.cancel", P{"who": r.who(), "id": id})
		return "cancel.ok"
	case errors.Is(err, scheduler.ErrFinished):
		return "cancel.finished"
	case errors.Is(err, store.ErrNotFound):
		return "cancel.not_found"
	default:
		r.log.Error("cancel", "calc", id, "err", err)
		b.toLogChat(slog.LevelError, r.logKey("cancel_failed"), "log.failure", P{"what": fmt.Sprintf("/cancel %d", id), "error": b.redact(err.Error())})
		return "cancel.failed"
	}
}

// tellCancelledBy tells the owner of c, in their chat and language, that the
// admin of r stopped it (once per update).
func (b *Bot) tellCancelledBy(r *request, c store.Calculation) {
	if c.ChatID == 0 {
		return
	}
	lang := b.lang
	if acc, err := b.st.AccountByTelegramID(c.TelegramID); err == nil {
		if l := SupportedLanguage(acc.LanguageCode); l != "" {
			lang = l
		}
	}
	admin := strings.TrimSpace(r.from.FirstName + " " + r.from.LastName)
	if r.from.Username != "" {
		admin = strings.TrimSpace(admin + " @" + r.from.Username)
	}
	key := fmt.Sprintf("update/%d/cancelled_by/%d", r.update, c.ID)
	text := tr(lang, "cancel.by_admin", P{"id": c.ID, "file": c.InputName, "admin": admin})
	if err := b.queue(key, store.OutMsg{ChatID: c.ChatID, Kind: "cancel.by_admin", Params: map[string]string{paramText: text}}); err != nil {
		r.log.Error("queue message to the owner", "calc", c.ID, "err", err)
	}
}
