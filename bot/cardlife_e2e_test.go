package bot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"hpcbot/bot/tgtest"
	"hpcbot/store"
)

// floodRetryAfter is the retry_after of the flood control the tests put one
// chat under: far longer than waitLimit, so that a card that waits for that
// chat's edit is never seen within the tests' deadlines.
const floodRetryAfter = 120

// twoRunningCards sends a held job as the user and one as the Russian user
// and waits until both cards read running; it returns them and the file that
// releases the Russian user's job.
func (e *env) twoRunningCards() (a, b store.Card, relA, relB string) {
	e.t.Helper()
	ca, relA := e.sendHeld(tgUser, e.user, "a.sh")
	a = e.waitCard(ca.ID, "sent", func(cd store.Card) bool { return cd.MessageID != 0 })
	e.waitCardText(a, []cardAction{actCancel, actLog}, "Running since")
	cb, relB := e.sendHeld(tgRuUser, e.ru, "b.sh")
	b = e.waitCard(cb.ID, "sent", func(cd store.Card) bool { return cd.MessageID != 0 })
	e.waitCardText(b, []cardAction{actCancel, actLog}, "Считается")
	return a, b, relA, relB
}

// TestE2ECardFloodInOtherChat: one chat under flood control delays only its
// own card. The user's chat answers every edit 429 with a retry_after longer
// than the test's deadline, and the user's card needs an edit (Cancel was
// pressed); the other user's job ends meanwhile, and their card is edited to
// its end all the same.
func TestE2ECardFloodInOtherChat(t *testing.T) {
	e := newEnv(t)
	a, b, _, relB := e.twoRunningCards()
	e.srv.Inject(tgtest.Fault{Method: "editMessageText", ChatID: tgUser.ID, Code: 429,
		Description: fmt.Sprintf("Too Many Requests: retry after %d", floodRetryAfter), RetryAfter: floodRetryAfter})
	e.press(tgUser, a, actCancel) // the card asks to confirm: it needs an edit
	e.srv.Wait(t, func([]tgtest.Call) bool {
		for _, ed := range e.editsOf(a.ChatID, a.MessageID) {
			if ed.Code == 429 {
				return true
			}
		}
		return false
	})
	release(t, relB)
	waitState(t, e.st, b.CalcID, store.StateNotified)
	e.waitCardText(b, []cardAction{actLog, actAgain}, "Расчёт")
	e.waitCard(b.CalcID, "no longer live", func(cd store.Card) bool { return !cd.Live })
	if m, _ := e.srv.Message(a.ChatID, int64(a.MessageID)); len(buttonData(m)) != 2 || buttonData(m)[0] != cardData(actCancel, a.CalcID) {
		t.Errorf("the card under flood control was edited: %q with %v", m.Text, buttonData(m))
	}
}

// TestE2ECardUploadInOtherChat: a slow upload of one user's results (their
// chat's queue busy, and their card's edit queued behind it) delays only that
// user's card: the other user's job ends and their card is edited to its end.
func TestE2ECardUploadInOtherChat(t *testing.T) {
	e := newEnv(t)
	a, b, relA, relB := e.twoRunningCards()
	held := e.srv.HoldAnswer("sendDocument", func(p map[string]string) bool { return p["chat_id"] == fmt.Sprint(tgUser.ID) })
	release(t, relA)
	select {
	case <-held:
	case <-time.After(waitLimit):
		t.Fatal("the user's results were never uploaded")
	}
	waitState(t, e.st, a.CalcID, store.StateNotified)
	e.press(tgUser, a, actAgain) // the card asks to confirm: an edit behind the upload
	release(t, relB)
	waitState(t, e.st, b.CalcID, store.StateNotified)
	// The fake answers the held upload after tgtest.WaitTimeout; B's card
	// must be edited well before, while the upload still holds A's chat.
	deadline := time.Now().Add(tgtest.WaitTimeout / 2)
	for {
		m, _ := e.srv.Message(b.ChatID, int64(b.MessageID))
		if slices.Equal(buttonData(m), cardDatas(b.CalcID, []cardAction{actLog, actAgain})) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the other user's card was not edited to its end while the upload held the user's chat; it reads %q with %v", m.Text, buttonData(m))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestE2ECardNeverSent: a card whose message could never be sent (403: the
// user blocked the bot right after sending the file) leaves the live cards
// once its calculation is at its end, instead of being read by every pass
// for good.
func TestE2ECardNeverSent(t *testing.T) {
	e := newEnv(t)
	e.srv.Inject(tgtest.Fault{Method: "sendMessage", ChatID: tgUser.ID, Code: 403, Description: "Forbidden: bot was blocked by the user"})
	rel := filepath.Join(t.TempDir(), "release")
	if err := os.WriteFile(rel, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e.srv.PushDocument(tgUser, tgtest.Private(tgUser), "x.sh", heldScript(rel), "")
	var c store.Calculation
	deadline := time.Now().Add(waitLimit)
	for c.ID == 0 && time.Now().Before(deadline) {
		if cs := e.calcsOf(e.user); len(cs) > 0 {
			c = cs[0]
		}
		time.Sleep(5 * time.Millisecond)
	}
	if c.ID == 0 {
		t.Fatal("no calculation")
	}
	waitState(t, e.st, c.ID, store.StateNotified)
	cd := e.waitCard(c.ID, "no longer live", func(cd store.Card) bool { return !cd.Live })
	if cd.MessageID != 0 {
		t.Errorf("the card was sent despite the 403: %+v", cd)
	}
	if live, err := e.st.LiveCards(); err != nil || len(live) != 0 {
		t.Errorf("live cards %+v, %v; want none", live, err)
	}
}

// TestE2ECardButtonWithoutCard: a hand-made No or Cancel press for a
// calculation that has no card creates no card record.
func TestE2ECardButtonWithoutCard(t *testing.T) {
	e := newEnv(t)
	c, _ := e.sendHeld(tgUser, e.user, "card.sh")
	cd := e.waitCard(c.ID, "sent", func(cd store.Card) bool { return cd.MessageID != 0 })
	idle, err := e.st.CreateCalculation(store.Calculation{UserID: e.user.ID, TelegramID: tgUser.ID, ChatID: tgUser.ID,
		InputName: "idle.sh", Folder: "idle", Cluster: "nowhere"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []cardAction{actNo, actCancel} {
		e.press(tgUser, store.Card{CalcID: idle.ID, ChatID: cd.ChatID, MessageID: cd.MessageID}, a)
		if got, err := e.st.Card(idle.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("after %s on a calculation without a card: card %+v, %v; want none", a, got, err)
		}
	}
}

// refreshCards makes one pass over the live cards and waits for its edits.
func (e *env) refreshCards() {
	var wg sync.WaitGroup
	e.bot.refreshCards(e.t.Context(), &wg)
	wg.Wait()
}
