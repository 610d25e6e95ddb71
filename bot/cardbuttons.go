package bot

import (
	"errors"
	"fmt"
	"html"
	"regexp"
	"strconv"
	"strings"

	"hpcbot/plugins"
	"hpcbot/scheduler"
	"hpcbot/store"
)

// onCardButton handles the buttons under a calculation's card
// ("card:<action>:<calc id>"). Only the calculation's owner or an admin may
// press them; anyone else registered is told so (strangers and blocked users
// never get here: onCallback answers them). Cancel and Run again ask to
// confirm first (the card's keyboard becomes Yes / No); a button that no
// longer applies (the calculation moved on) does nothing and the card is
// brought up to date.
func (b *Bot) onCardButton(r *request, arg string) (string, bool, error) {
	action, rest, _ := strings.Cut(arg, ":")
	idText, genText, hasGen := strings.Cut(rest, ":")
	id, err := strconv.ParseUint(idText, 10, 64)
	gen, gerr := strconv.Atoi(genText)
	if err != nil || (hasGen && (gerr != nil || gen < 0)) {
		return tr(r.lang, "callback.unknown", nil), false, nil
	}
	c, err := b.st.Calc(id)
	if errors.Is(err, store.ErrNotFound) {
		return tr(r.lang, "callback.unknown", nil), false, nil
	}
	if err != nil {
		return "", false, err
	}
	if c.UserID != r.user.ID && !r.admin {
		r.log.Info("card button pressed by someone else", "calc", id, "action", action)
		return tr(r.lang, "card.not_yours", nil), true, nil
	}
	confirm := func(what cardAction, ok bool) (string, bool, error) {
		if !ok {
			b.kickCards()
			return tr(r.lang, "card.no_longer", nil), false, nil
		}
		return "", false, b.setConfirm(id, string(what))
	}
	switch cardAction(action) {
	case actCancel:
		return confirm(actCancel, cancellable(c))
	case actAgain:
		return confirm(actAgain, againable(c))
	case actNo:
		return "", false, b.setConfirm(id, "")
	case actCancelYes:
		if err := b.setConfirm(id, ""); err != nil {
			return "", false, err
		}
		if !cancellable(c) {
			b.kickCards()
			return tr(r.lang, "card.no_longer", nil), false, nil
		}
		return answerText(tr(r.lang, b.cancelCalc(r, c), P{"id": id})), false, nil
	case actAgainYes:
		if err := b.setConfirm(id, ""); err != nil {
			return "", false, err
		}
		if !hasGen || !againable(c) {
			b.kickCards()
			return tr(r.lang, "card.no_longer", nil), false, nil
		}
		// The Yes carries the card's rerun count when it was shown: a larger
		// one was never shown (hand-made data), a smaller one is a press
		// already made, which RunAgain finds again.
		if cd, err := b.st.Card(id); err != nil || gen > cd.Reruns {
			return tr(r.lang, "callback.unknown", nil), false, nil
		}
		return b.runAgain(r, c, gen)
	case actLog:
		return b.cardLog(r, c)
	}
	return tr(r.lang, "callback.unknown", nil), false, nil
}

// setConfirm records the action calculation id's card asks to confirm (""
// none) and has the card edited soon. A calculation without a card (a
// hand-made press) gets none.
func (b *Bot) setConfirm(id uint64, action string) error {
	_, err := b.st.UpdateCard(id, func(cd *store.Card) error {
		if cd.ChatID == 0 { // no record: every card has its chat (newCard)
			return errNoCard
		}
		cd.Confirm = action
		if !cd.Gone {
			cd.Live = true
		}
		return nil
	})
	if errors.Is(err, errNoCard) {
		return nil
	}
	b.kickCards()
	return err
}

var errNoCard = errors.New("no card")

var answerTagRx = regexp.MustCompile(`<[^>]*>`)

// answerText is a catalog text (Telegram HTML) as the plain text a callback
// answer shows.
func answerText(s string) string { return html.UnescapeString(answerTagRx.ReplaceAllString(s, "")) }

// runAgain submits calculation c's input again with its caption, for the
// presser of its card's Run again (after Yes): within the presser's quota
// (the same check as a new file), once per press (gen, the card's Reruns when
// the Yes was shown: a press handled again after a crash makes no second
// calculation). The new calculation gets its own card.
func (b *Bot) runAgain(r *request, c store.Calculation, gen int) (string, bool, error) {
	// No quota check before: Accept checks the owner's quota in the
	// transaction that creates the calculation, after it looked for the one
	// this press already made (a press handled again after a crash must find
	// its calculation, not a quota its own calculation used up). The
	// per-minute limit on submissions holds as for a file, for a new press.
	press := strconv.Itoa(gen)
	if _, err := b.st.CalcCreatedBy(0, scheduler.RunAgainKey(c.ID, press)); errors.Is(err, store.ErrNotFound) && !b.rate.allow(r.user.ID, b.now()) {
		r.refused("doc.rate", P{"files": CountFiles(r.lang, b.rate.perMinute)}, "run again #"+strconv.FormatUint(c.ID, 10))
		return "", false, nil
	}
	n, err := b.calcs.RunAgain(r.ctx, scheduler.RunAgainRequest{CalcID: c.ID, By: r.from.ID, Admin: r.admin,
		Press: press, Window: b.window()})
	var ref *plugins.Refusal
	switch {
	case errors.As(err, &ref):
		r.log.Info("run again refused", "calc", c.ID, "code", ref.Code, "detail", ref.Detail)
		r.send(refusalText(r.lang, ref))
		return "", false, nil
	case errors.Is(err, scheduler.ErrInputGone):
		return answerText(tr(r.lang, "card.input_gone", P{"id": c.ID})), true, nil
	case errors.Is(err, store.ErrQuotaExceeded) && c.UserID != r.user.ID:
		return answerText(tr(r.lang, "card.again_owner_quota", P{"id": c.ID})), true, nil
	case errors.Is(err, store.ErrQuotaExceeded):
		b.refuseQuota(r)
		return "", false, nil
	case errors.Is(err, scheduler.ErrNotAllowed):
		return tr(r.lang, "card.not_yours", nil), true, nil
	case errors.Is(err, store.ErrBlocked):
		return tr(r.lang, "callback.blocked", nil), true, nil
	case err != nil:
		return "", false, fmt.Errorf("run calc %d again: %w", c.ID, err)
	}
	if _, err := b.st.UpdateCard(c.ID, func(cd *store.Card) error {
		cd.Reruns = max(cd.Reruns, gen+1)
		if !cd.Gone {
			cd.Live = true
		}
		return nil
	}); err != nil {
		return "", false, err
	}
	b.kickCards()
	r.log.Info("calculation run again", "calc", n.ID, "of", c.ID)
	b.accepted(r, n)
	return answerText(tr(r.lang, "card.again_ok", P{"id": n.ID, "of": c.ID})), false, nil
}

// logLines is how many lines of output the card's Log shows.
const logLines = 30

// logExcerpt is the end of text that Log quotes: whole lines go from the top
// until it fits maxLogText as Telegram counts it (escaped, UTF-16 units), and
// a cut is marked.
func logExcerpt(text string) string {
	cut := false
	for tgLen(Escape(text)) > maxLogText {
		cut = true
		if i := strings.IndexByte(text, '\n'); i >= 0 && i < len(text)-1 {
			text = text[i+1:]
		} else {
			rs := []rune(text)
			text = string(rs[len(rs)/2:])
		}
	}
	if cut {
		text = "…\n" + text
	}
	return text
}

// maxLogText caps the output Log quotes, in UTF-16 units once HTML-escaped
// (as the sender counts when it splits): with its header it stays one
// Telegram message (4096 characters).
const maxLogText = 3500

// cardLog sends the last lines of calculation c's program output (its error
// output after a failure), fetched on demand through the cluster's scheduler
// plugin, as one new message; when there is none to show, the answer says why.
func (b *Bot) cardLog(r *request, c store.Calculation) (string, bool, error) {
	text, err := b.calcs.Tail(r.ctx, c.ID, logLines)
	key := ""
	switch {
	case errors.Is(err, scheduler.ErrNotOnCluster):
		key = "card.log_not_yet"
	case errors.Is(err, scheduler.ErrClusterUnreachable):
		key = "card.log_unreachable"
	case errors.Is(err, scheduler.ErrTailNotSupported):
		key = "card.log_not_supported"
	case errors.Is(err, scheduler.ErrNoOutput):
		key = "card.log_empty"
	case err != nil:
		return "", false, fmt.Errorf("log of calc %d: %w", c.ID, err)
	case strings.TrimSpace(text) == "":
		key = "card.log_empty"
	}
	if key != "" {
		r.log.Info("no log to show", "calc", c.ID, "err", err)
		return answerText(tr(r.lang, key, P{"id": c.ID, "cluster": c.Cluster})), true, nil
	}
	text = logExcerpt(text)
	r.send(tr(r.lang, "card.log", P{"id": c.ID, "file": c.InputName, "tail": strings.TrimRight(text, "\n")}))
	return "", false, nil
}
