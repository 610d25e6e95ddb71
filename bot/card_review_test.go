package bot

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"hpcbot/store"
)

// An admin's /jobs N on a user's calculation sends the admin a copy; the
// owner's card stays the live one, in the owner's chat, and reaches the end.
func TestCardAdminJobsNLeavesOwnersCard(t *testing.T) {
	e := newEnv(t)
	c, rel := e.sendHeld(tgUser, e.user, "steal.sh")
	cd := e.waitCard(c.ID, "sent", func(cd store.Card) bool { return cd.MessageID != 0 })
	e.waitCardText(cd, []cardAction{actCancel, actLog}, "Running since")
	e.private(tgAdmin, "/start")
	e.private(tgAdmin, fmt.Sprintf("/jobs %d", c.ID))
	e.waitSent(tgAdmin.ID, fmt.Sprintf("#%d", c.ID), "Running since")
	if now, err := e.st.Card(c.ID); err != nil || now.ChatID != cd.ChatID || now.MessageID != cd.MessageID {
		t.Fatalf("card after the admin's /jobs %d: %+v, %v; want still %d/%d", c.ID, now, err, cd.ChatID, cd.MessageID)
	}
	release(t, rel)
	waitState(t, e.st, c.ID, store.StateNotified)
	e.waitCardText(cd, []cardAction{actLog, actAgain}, "finished: succeeded")
}

// Run again is held to bot.submits_per_minute like a file, and a Yes whose
// rerun count the card never showed does nothing.
func TestCardRunAgainRateAndShownPress(t *testing.T) {
	e := newEnv(t)
	if _, err := e.st.UpdateUser(e.user.ID, func(_ *store.Tx, u *store.User) error { u.Limit = 50; return nil }); err != nil {
		t.Fatal(err)
	}
	c, rel := e.sendHeld(tgUser, e.user, "r.sh")
	release(t, rel)
	waitState(t, e.st, c.ID, store.StateNotified)
	cd := e.waitCard(c.ID, "sent", func(cd store.Card) bool { return cd.MessageID != 0 })

	id := e.srv.PushCallback(tgUser, cd.ChatID, int64(cd.MessageID), fmt.Sprintf("card:again_yes:%d:5", c.ID))
	if a := e.srv.WaitAnswer(t, id); a.Text != tr("en", "callback.unknown", nil) {
		t.Errorf("a Yes with a rerun count never shown: answered %q", a.Text)
	}
	if n := len(e.calcsOf(e.user)); n != 1 {
		t.Fatalf("%d calculations after a hand-made Yes, want 1", n)
	}
	for g := 0; g < 8; g++ {
		id := e.srv.PushCallback(tgUser, cd.ChatID, int64(cd.MessageID), fmt.Sprintf("card:again_yes:%d:%d", c.ID, g))
		e.srv.WaitAnswer(t, id)
	}
	// The file and four runs again within the minute: five, the limit.
	if n := len(e.calcsOf(e.user)); n != 5 {
		t.Errorf("%d calculations after eight presses within a minute, want 5 (submits_per_minute 5)", n)
	}
	e.waitSent(tgUser.ID, "5 files a minute")
}

// An admin's Run again of a Russian user's calculation makes the owner's
// calculation, told in the owner's language.
func TestCardAdminRunAgainInOwnersLanguage(t *testing.T) {
	e := newEnv(t)
	e.private(tgAdmin, "/start")
	c, rel := e.sendHeld(tgRuUser, e.ru, "ru.sh")
	release(t, rel)
	waitState(t, e.st, c.ID, store.StateNotified)
	cd := e.waitCard(c.ID, "sent", func(cd store.Card) bool { return cd.MessageID != 0 })
	e.srv.WaitAnswer(t, e.srv.PushCallback(tgAdmin, cd.ChatID, int64(cd.MessageID), fmt.Sprintf("card:again_yes:%d:0", c.ID)))
	var n store.Calculation
	for _, x := range e.calcsOf(e.ru) {
		if x.ID != c.ID {
			n = x
		}
	}
	if n.ID == 0 || n.TelegramID != tgRuUser.ID {
		t.Fatalf("the admin's Run again made %+v, want a calculation sent as the owner's (%d)", n, tgRuUser.ID)
	}
	ncd := e.waitCard(n.ID, "sent", func(cd store.Card) bool { return cd.MessageID != 0 })
	if m, _ := e.srv.Message(ncd.ChatID, int64(ncd.MessageID)); !strings.Contains(m.Text, "Расчёт") || ncd.ChatID != tgRuUser.ID {
		t.Errorf("the owner's new card, in chat %d, reads %q: want Russian, in the owner's chat %d", ncd.ChatID, m.Text, tgRuUser.ID)
	}
}

// The Russian card of a job that ended, results on their way, agrees with
// every outcome's word.
func TestCardEndedReadsInRussian(t *testing.T) {
	b := &Bot{}
	t0 := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	for _, s := range []store.State{store.StateCancelled, store.StateFailed, store.StateTimedOut, store.StateSucceeded} {
		c := cardCalc(t0, func(c *store.Calculation) { c.JobID = "777" }, store.StateStaged, store.StateSubmitted, store.StateRunning, s)
		text := b.cardText(c, "", "ru", t0.Add(time.Hour))
		if want := "Расчёт на кластере закончен: " + tr("ru", "state."+string(s), nil) + "."; !strings.Contains(text, want) {
			t.Errorf("%s: %q, want %q", s, text, want)
		}
	}
}

// Log's excerpt stays one message even when escaping makes it longer.
func TestCardLogExcerptIsOneMessage(t *testing.T) {
	for _, tail := range []string{
		strings.Repeat("a <b> & c\n", 1600),    // escaping doubles it
		strings.Repeat("&", 16000),             // one line, all escaped
		strings.Repeat("энергия -76.4\n", 500), // plain, over the cap
	} {
		ex := logExcerpt(tail)
		text := tr("en", "card.log", P{"id": 1, "file": "x", "tail": strings.TrimRight(ex, "\n")})
		if parts := splitMessage(text, maxTextLen, true); len(parts) != 1 {
			t.Errorf("%.20q…: the Log is %d messages, want one", tail, len(parts))
		}
		if !strings.HasSuffix(tail, strings.TrimPrefix(ex, "…\n")) {
			t.Errorf("%.20q…: the excerpt is not the end of the output", tail)
		}
	}
}
