package bot

import (
	"errors"
	"html"
	"regexp"
	"strconv"
	"strings"

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
	action, idText, _ := strings.Cut(arg, ":")
	id, err := strconv.ParseUint(idText, 10, 64)
	if err != nil {
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
	}
	return tr(r.lang, "callback.unknown", nil), false, nil
}

// setConfirm records the action calculation id's card asks to confirm (""
// none) and has the card edited soon.
func (b *Bot) setConfirm(id uint64, action string) error {
	_, err := b.st.UpdateCard(id, func(cd *store.Card) error {
		cd.Confirm = action
		if !cd.Gone {
			cd.Live = true
		}
		return nil
	})
	b.kickCards()
	return err
}

var answerTagRx = regexp.MustCompile(`<[^>]*>`)

// answerText is a catalog text (Telegram HTML) as the plain text a callback
// answer shows.
func answerText(s string) string { return html.UnescapeString(answerTagRx.ReplaceAllString(s, "")) }
