package bot

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"hpcbot/scheduler"
	"hpcbot/store"
)

// A calculation's card is the bot's answer to its input file: one message,
// edited in place as the calculation goes on (accepted, waiting in the queue
// with the scheduler's reason, running with its node and elapsed time, its
// end), with buttons under it. The end also comes as a new message
// (scheduler.EventFinished and the others), so that the phone notifies.

// cardAction is what a card's button does; its callback data is
// "card:<action>:<calc id>".
type cardAction string

const (
	actCancel     cardAction = "cancel"     // asks to confirm
	actCancelYes  cardAction = "cancel_yes" // cancels
	actLog        cardAction = "log"        // sends the end of the program's output
	actAgain      cardAction = "again"      // asks to confirm
	actAgainYes   cardAction = "again_yes"  // submits the input again
	actNo         cardAction = "no"         // drops the question
	cardDataStart            = "card:"
)

// Which buttons a card shows, decided by what a user expects to be able to
// do at that moment (a button that no longer applies disappears):
//   - Cancel while the calculation can still be stopped (Scheduler.Cancel
//     takes it: received, staged, on the cluster) and nobody asked yet;
//   - Log once the job is on a cluster (it has a job id), also after the end
//     (the output is read from the fetched results then): a look at the end
//     of the output without opening the results;
//   - Run again only once the calculation is at its end (delivered, or in
//     error), not while it runs: a second run of a running input is rarely
//     meant, and the button would sit next to Cancel, easy to press by
//     mistake. An input the runner refused is not offered again (it would be
//     refused again).
//
// While the card asks to confirm (Card.Confirm), its keyboard is Yes / No.
func cardActions(c store.Calculation, confirm string) []cardAction {
	switch confirm {
	case string(actCancel):
		if cancellable(c) {
			return []cardAction{actCancelYes, actNo}
		}
	case string(actAgain):
		if againable(c) {
			return []cardAction{actAgainYes, actNo}
		}
	}
	var acts []cardAction
	if cancellable(c) {
		acts = append(acts, actCancel)
	}
	if c.JobID != "" {
		acts = append(acts, actLog)
	}
	if againable(c) {
		acts = append(acts, actAgain)
	}
	return acts
}

// cardAtEnd: the calculation's end is delivered (or it ended in error):
// nothing changes its card by itself any more.
func cardAtEnd(c store.Calculation) bool {
	return c.State == store.StateDelivered || c.State.Final()
}

// cancellable: Scheduler.Cancel would stop it, and nobody asked yet.
func cancellable(c store.Calculation) bool {
	return (c.State == store.StateReceived || c.State == store.StateStaged || c.State.Active()) &&
		c.Progress.Cancel == store.CancelNone
}

// againable: at its end, with an input the runner did not refuse.
func againable(c store.Calculation) bool {
	switch {
	case c.State == store.StateNotified || c.State == store.StateDelivered:
		return true
	case c.State == store.StateError:
		return c.Progress.ErrorCode != scheduler.CodeInputRefused && c.Progress.ErrorCode != scheduler.CodeInputMissing
	}
	return false
}

// cardKeyboard is the inline keyboard of acts, in lang: one row. reruns is
// the card's Card.Reruns, which the Yes of Run again carries.
func cardKeyboard(lang string, id uint64, acts []cardAction, reruns int) [][]Button {
	if len(acts) == 0 {
		return [][]Button{}
	}
	row := make([]Button, 0, len(acts))
	for _, a := range acts {
		data := cardData(a, id)
		if a == actAgainYes {
			data += ":" + strconv.Itoa(reruns)
		}
		row = append(row, Button{Text: tr(lang, "card.btn_"+string(a), nil), Data: data})
	}
	return [][]Button{row}
}

// cardData is the callback data of action a on calculation id
// ("card:cancel:42"); Run again's Yes adds the generation ("card:again_yes:42:0").
func cardData(a cardAction, id uint64) string {
	return cardDataStart + string(a) + ":" + strconv.FormatUint(id, 10)
}

// cardText renders calculation c's card in lang at now (the elapsed time of a
// running job); confirm adds the question of the action awaiting confirmation.
// It reuses the notifications' texts: the card says what they say.
func (b *Bot) cardText(c store.Calculation, confirm, lang string, now time.Time) string {
	base := P{"id": c.ID, "file": c.InputName, "cluster": c.Cluster, "job": c.JobID, "program": c.Program}
	var lines []string
	switch {
	case c.State == store.StateReceived || c.State == store.StateStaged || (c.State == store.StateSubmitted && c.JobID == ""):
		if !c.Progress.Drained.IsZero() {
			lines = append(lines, tr(lang, "calc.drained", base))
		} else {
			lines = append(lines, tr(lang, "doc.accepted", base))
		}
	case c.State.Active():
		lines = append(lines, tr(lang, "calc.accepted", base))
		if c.State == store.StateRunning {
			lines = append(lines, runningLine(c, lang, now))
		} else {
			lines = append(lines, queuedLine(c.Progress.Reason, lang))
		}
	case c.State == store.StateDeliveryFailed:
		outcome, _, _ := c.Outcome()
		n := scheduler.Notification{Event: scheduler.EventDeliveryFailed, Calc: c, Outcome: outcome, Code: scheduler.CodeCloudUnavailable}
		if c.Progress.DeliveryHeld {
			n.Code = scheduler.CodeCloudRefused
		}
		lines = append(lines, b.notificationText(lang, n))
	default:
		if n, ok := scheduler.EndNotice(c); ok {
			lines = append(lines, b.notificationText(lang, n))
			break
		}
		// Ended on the cluster, the results on their way (succeeded …
		// timed_out, retrieved).
		outcome, _, _ := c.Outcome()
		lines = append(lines, tr(lang, "calc.accepted", base), tr(lang, "card.ended", P{"outcome": stateName(lang, outcome)}))
	}
	if c.Progress.Cancel != store.CancelNone && (c.State == store.StateReceived || c.State == store.StateStaged || c.State.Active()) {
		lines = append(lines, tr(lang, "card.cancelling", nil))
	}
	switch acts := cardActions(c, confirm); {
	case len(acts) > 0 && acts[0] == actCancelYes:
		lines = append(lines, tr(lang, "card.confirm_cancel", nil))
	case len(acts) > 0 && acts[0] == actAgainYes:
		lines = append(lines, tr(lang, "card.confirm_again", nil))
	}
	return joinLines(lines...)
}

// queuedLine says that the job waits in the queue, and why when the
// scheduler says: Slurm's common pending reasons in words
// (https://slurm.schedmd.com/job_reason_codes.html), others as given.
func queuedLine(reason, lang string) string {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return tr(lang, "card.queued", nil)
	}
	key := "card.pending." + reason
	if _, ok := catalogs[Languages[0]][key]; ok {
		return tr(lang, "card.queued_reason", P{"reason": HTML(tr(lang, key, nil))})
	}
	return tr(lang, "card.queued_raw", P{"reason": reason})
}

// runningLine says since when the job runs, where, and for how long.
func runningLine(c store.Calculation, lang string, now time.Time) string {
	since := c.Progress.Started
	if since.IsZero() {
		for _, h := range c.History {
			if h.State == store.StateRunning {
				since = h.At
			}
		}
	}
	p := P{"since": since.Local().Format(timeLayout), "elapsed": elapsedText(lang, now.Sub(since)), "node": c.Progress.Node}
	if c.Progress.Node == "" {
		return tr(lang, "card.running_no_node", p)
	}
	return tr(lang, "card.running", p)
}

// elapsedText is a job's elapsed time, coarser as it grows, so that a card
// refreshed every minute is edited at a modest rate: to the minute in the
// first hour, to ten minutes in the first day, to the hour after that.
func elapsedText(lang string, d time.Duration) string {
	minutes := func(n int64) string {
		return plural(lang, n, "minute", "minutes", "минута", "минуты", "минут")
	}
	hours := func(n int64) string { return plural(lang, n, "hour", "hours", "час", "часа", "часов") }
	switch {
	case d < time.Minute:
		return tr(lang, "card.under_a_minute", nil)
	case d < time.Hour:
		return minutes(int64(d / time.Minute))
	case d < 24*time.Hour:
		h, m := int64(d/time.Hour), int64(d%time.Hour/(10*time.Minute))*10
		if m == 0 {
			return hours(h)
		}
		return hours(h) + " " + minutes(m)
	default:
		days, h := int64(d/(24*time.Hour)), int64(d%(24*time.Hour)/time.Hour)
		s := plural(lang, days, "day", "days", "день", "дня", "дней")
		if h == 0 {
			return s
		}
		return s + " " + hours(h)
	}
}

// cardHash identifies what a card shows: its text and keyboard.
func cardHash(text string, kb [][]Button) string {
	h := sha256.New()
	h.Write([]byte(text))
	for _, row := range kb {
		h.Write([]byte{0})
		for _, b := range row {
			h.Write([]byte{1})
			h.Write([]byte(b.Text))
			h.Write([]byte{2})
			h.Write([]byte(b.Data))
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// stateMark is a calculation's state at a glance, for /jobs: waiting (⏳),
// running (▶️), succeeded (✅), failed, timed out or in error (❌), cancelled (⛔).
func stateMark(c store.Calculation) string {
	switch {
	case c.State == store.StateRunning:
		return "▶️"
	case c.State == store.StateError:
		return "❌"
	}
	outcome, _, ok := c.Outcome()
	switch {
	case !ok:
		return "⏳"
	case outcome == store.StateSucceeded:
		return "✅"
	case outcome == store.StateCancelled:
		return "⛔"
	}
	return "❌"
}
