package bot

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"hpcbot/bot/tgtest"
	"hpcbot/plugins/shellquote"
	"hpcbot/scheduler"
	"hpcbot/store"
)

// heldScript is a job that runs until the test creates the file release.
func heldScript(release string) []byte {
	return []byte("while [ ! -e " + shellquote.Quote(release) + " ]; do sleep 0.05; done\necho 'energy -76.4' > result.out\n")
}

// sendHeld sends a held job as user and returns its calculation and the file
// that releases it.
func (e *env) sendHeld(from tgtest.User, u store.User, name string) (store.Calculation, string) {
	e.t.Helper()
	release := filepath.Join(e.t.TempDir(), "release")
	e.sendFile(from, name, heldScript(release), "")
	for _, c := range e.calcsOf(u) {
		if c.InputName == name {
			return c, release
		}
	}
	e.t.Fatalf("no calculation of %s", name)
	return store.Calculation{}, ""
}

func release(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitCard waits until calculation id's card satisfies cond, and returns it.
func (e *env) waitCard(id uint64, what string, cond func(store.Card) bool) store.Card {
	e.t.Helper()
	deadline := time.Now().Add(waitLimit)
	var cd store.Card
	for time.Now().Before(deadline) {
		var err error
		cd, err = e.st.Card(id)
		if err == nil && cond(cd) {
			return cd
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.t.Fatalf("card of calc %d: %s not within %v; last %+v", id, what, waitLimit, cd)
	return cd
}

// waitCardText waits until the card message reads parts with exactly the
// buttons acts (nil: any), and returns it.
func (e *env) waitCardText(cd store.Card, acts []cardAction, parts ...string) tgtest.Message {
	e.t.Helper()
	var m tgtest.Message
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		var ok bool
		m, ok = e.srv.Message(cd.ChatID, int64(cd.MessageID))
		if ok && containsAll(m.Text, parts...) && (acts == nil || slices.Equal(buttonData(m), cardDatas(cd.CalcID, acts))) {
			return m
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.t.Fatalf("card message %d of calc %d never read %q with buttons %v; it reads\n%s\nwith %v",
		cd.MessageID, cd.CalcID, parts, acts, m.Text, buttonData(m))
	return m
}

func buttonData(m tgtest.Message) []string {
	var out []string
	if m.ReplyMarkup != nil {
		for _, row := range m.ReplyMarkup.InlineKeyboard {
			for _, b := range row {
				out = append(out, b.CallbackData)
			}
		}
	}
	return out
}

func cardDatas(id uint64, acts []cardAction) []string {
	var out []string
	for _, a := range acts {
		out = append(out, cardData(a, id))
	}
	return out
}

// editsOf returns the editMessageText calls on message (chat, id).
func (e *env) editsOf(chat int64, id int) []tgtest.Call {
	var out []tgtest.Call
	for _, c := range e.srv.Calls("editMessageText") {
		if c.ChatID() == chat && c.Params["message_id"] == fmt.Sprint(id) {
			out = append(out, c)
		}
	}
	return out
}

// TestE2ECardLife follows one calculation's card: it is the reply to the
// input file (accepted, with Cancel), is edited in place to running (Cancel,
// Log), and at the end to the finished text with Run again only, while the
// end also comes as a new message. No edit is ever repeated (each edit
// changes the card), none fails, and the card is never sent twice.
func TestE2ECardLife(t *testing.T) {
	e := newEnv(t)
	c, rel := e.sendHeld(tgUser, e.user, "held.sh")
	cd := e.waitCard(c.ID, "sent", func(cd store.Card) bool { return cd.MessageID != 0 })
	if cd.ChatID != tgUser.ID || !cd.Live || cd.Gone {
		t.Fatalf("card %+v", cd)
	}
	first, _ := e.srv.Message(cd.ChatID, int64(cd.MessageID))
	if !strings.Contains(first.Text, fmt.Sprintf("Calculation <b>#%d</b> accepted", c.ID)) {
		t.Errorf("the card was sent as %q, want the accepted reply", first.Text)
	}
	e.waitCardText(cd, []cardAction{actCancel, actLog}, fmt.Sprintf("Calculation <b>#%d</b> (held.sh) is on loc: job", c.ID), "Running since", "so far.")

	release(t, rel)
	waitState(t, e.st, c.ID, store.StateNotified)
	e.waitSent(tgUser.ID, fmt.Sprintf("Calculation <b>#%d</b> (held.sh) finished: succeeded, exit code 0", c.ID))
	e.waitCardText(cd, []cardAction{actLog, actAgain}, fmt.Sprintf("Calculation <b>#%d</b> (held.sh) finished: succeeded, exit code 0", c.ID),
		"The results are in the files below.")
	e.waitCard(c.ID, "no longer live", func(cd store.Card) bool { return !cd.Live })

	cards := 0
	for _, call := range e.srv.Sent(tgUser.ID) {
		if call.Method == "sendMessage" && strings.Contains(call.Text(), fmt.Sprintf("Calculation <b>#%d</b> accepted", c.ID)) {
			cards++
		}
		if strings.Contains(call.Text(), "is on loc") {
			t.Errorf("a separate 'on the cluster' message was sent: %q", call.Text())
		}
	}
	if cards != 1 {
		t.Errorf("the card was sent %d times, want once", cards)
	}
	edits := e.editsOf(cd.ChatID, cd.MessageID)
	for i, ed := range edits {
		if !ed.OK() {
			t.Errorf("edit %d failed (%d): %q", i, ed.Code, ed.Text())
		}
		if i > 0 && ed.Text() == edits[i-1].Text() && ed.Params["reply_markup"] == edits[i-1].Params["reply_markup"] {
			t.Errorf("edit %d repeats the one before: %q", i, ed.Text())
		}
	}
	if len(edits) < 2 {
		t.Errorf("%d edits of the card, want at least running and finished", len(edits))
	}

	// Looking at the cards again changes nothing: what they show is recorded.
	before := len(e.srv.Calls("editMessageText"))
	e.refreshCards()
	if err := e.bot.applyCard(t.Context(), c.ID); err != nil {
		t.Fatal(err)
	}
	if n := len(e.srv.Calls("editMessageText")); n != before {
		t.Errorf("%d edits after the card was up to date", n-before)
	}

	// The log chat is as it was: the input, and the end.
	e.waitSent(logChat, fmt.Sprintf("#%d (", c.ID), "finished: succeeded")

	// /jobs N: the card sent again becomes the card; the old one loses its buttons.
	e.private(tgUser, fmt.Sprintf("/jobs #%d", c.ID))
	fresh := e.waitCard(c.ID, "sent again", func(x store.Card) bool { return x.MessageID != cd.MessageID && x.MessageID != 0 })
	e.waitCardText(fresh, []cardAction{actLog, actAgain}, "finished: succeeded")
	e.waitCardText(cd, []cardAction{}, "finished: succeeded")
}

// TestE2ECardDeleted: a card the user deleted is marked gone and no longer
// edited, the calculation goes on and its end still arrives; /jobs N sends
// the card again as a new message, which becomes the card.
func TestE2ECardDeleted(t *testing.T) {
	e := newEnv(t)
	c, rel := e.sendHeld(tgUser, e.user, "gone.sh")
	cd := e.waitCard(c.ID, "sent", func(cd store.Card) bool { return cd.MessageID != 0 })
	e.waitCardText(cd, []cardAction{actCancel, actLog}, "Running since")
	if !e.srv.UserDelete(cd.ChatID, int64(cd.MessageID)) {
		t.Fatal("the card could not be deleted")
	}
	release(t, rel)
	waitState(t, e.st, c.ID, store.StateNotified)
	e.waitSent(tgUser.ID, fmt.Sprintf("Calculation <b>#%d</b> (gone.sh) finished: succeeded", c.ID))
	gone := e.waitCard(c.ID, "gone", func(cd store.Card) bool { return cd.Gone && !cd.Live })
	failed := 0
	for _, ed := range e.editsOf(cd.ChatID, cd.MessageID) {
		if !ed.OK() {
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("%d failed edits of the deleted card, want 1 (then it is left alone)", failed)
	}
	e.refreshCards()
	failedAfter := 0
	for _, ed := range e.editsOf(cd.ChatID, cd.MessageID) {
		if !ed.OK() {
			failedAfter++
		}
	}
	if failedAfter != failed {
		t.Errorf("the deleted card was edited again")
	}
	if strings.Contains(e.logs.String(), "level=ERROR") {
		t.Errorf("a deleted card is not an error; log:\n%s", e.logs.String())
	}

	// /jobs N: a new card, at its end, with its buttons; it is the card now.
	e.private(tgUser, fmt.Sprintf("/jobs %d", c.ID))
	fresh := e.waitCard(c.ID, "sent again", func(cd store.Card) bool { return cd.MessageID != gone.MessageID && cd.MessageID != 0 })
	if fresh.Gone {
		t.Errorf("the card sent again is marked gone: %+v", fresh)
	}
	e.waitCardText(fresh, []cardAction{actLog, actAgain}, fmt.Sprintf("Calculation <b>#%d</b> (gone.sh) finished: succeeded", c.ID))

	// Someone else's number is not found; a word is not a number.
	e.private(tgAdmin, "/start")
	if r := e.private(tgRuUser, fmt.Sprintf("/jobs %d", c.ID)); len(r) != 1 || !strings.Contains(r[0], fmt.Sprintf("#%d", c.ID)) {
		t.Errorf("another user's /jobs %d: %q", c.ID, r)
	}
	if cd, _ := e.st.Card(c.ID); cd.MessageID != fresh.MessageID {
		t.Errorf("another user's /jobs moved the card: %+v", cd)
	}
	want(t, e.private(tgUser, "/jobs many"), "/jobs 42")

	// /jobs lists the calculations with their state marks.
	want(t, e.private(tgUser, "/jobs"), fmt.Sprintf("✅ <b>#%d</b> gone.sh", c.ID))
}

// TestE2ECardFloodControl: a 429 on an edit is waited out (retry_after) and
// the same edit made again; the card ends right.
func TestE2ECardFloodControl(t *testing.T) {
	e := newEnv(t)
	c, rel := e.sendHeld(tgUser, e.user, "flood.sh")
	cd := e.waitCard(c.ID, "sent", func(cd store.Card) bool { return cd.MessageID != 0 })
	e.waitCardText(cd, []cardAction{actCancel, actLog}, "Running since")
	e.srv.Inject(tgtest.TooManyRequests("editMessageText", 2, 1))
	release(t, rel)
	waitState(t, e.st, c.ID, store.StateNotified)
	e.waitCardText(cd, []cardAction{actLog, actAgain}, fmt.Sprintf("Calculation <b>#%d</b> (flood.sh) finished: succeeded", c.ID))
	e.waitCard(c.ID, "no longer live", func(cd store.Card) bool { return !cd.Live && !cd.Gone })
	floods := 0
	for _, ed := range e.editsOf(cd.ChatID, cd.MessageID) {
		if ed.Code == 429 {
			floods++
		}
	}
	if floods != 2 {
		t.Errorf("%d edits answered 429, want the 2 injected", floods)
	}
}

// TestCardEditRepeatedAfterCrash: when the process dies after Telegram took
// an edit and before its hash was recorded, the next run makes the same edit
// again; Telegram answers "message is not modified", which counts as done:
// the card ends right, recorded, with no error and no second card.
func TestCardEditRepeatedAfterCrash(t *testing.T) {
	e := newEnv(t)
	c, rel := e.sendHeld(tgUser, e.user, "crash.sh")
	cd := e.waitCard(c.ID, "sent", func(cd store.Card) bool { return cd.MessageID != 0 })
	e.waitCardText(cd, []cardAction{actCancel, actLog}, "Running since")
	release(t, rel)
	waitState(t, e.st, c.ID, store.StateNotified)
	done := e.waitCard(c.ID, "at its end", func(cd store.Card) bool { return !cd.Live })
	// The record as a crash right after the edit leaves it: the hash before.
	if _, err := e.st.UpdateCard(c.ID, func(x *store.Card) error { x.Hash, x.Live = cd.Hash, true; return nil }); err != nil {
		t.Fatal(err)
	}
	edits := len(e.editsOf(cd.ChatID, cd.MessageID))
	if err := e.bot.applyCard(t.Context(), c.ID); err != nil {
		t.Fatalf("the repeated edit: %v", err)
	}
	all := e.editsOf(cd.ChatID, cd.MessageID)
	// The fake answers 400 "message is not modified" as Telegram does, to an
	// edit of a message that exists and would read the same.
	if len(all) != edits+1 || all[len(all)-1].Code != 400 {
		t.Fatalf("after the crash: %d edits (was %d), the last %+v; want one more, answered not modified", len(all), edits, all[len(all)-1])
	}
	if _, ok := e.srv.Message(cd.ChatID, int64(cd.MessageID)); !ok {
		t.Fatal("the card is gone")
	}
	if got, _ := e.st.Card(c.ID); got.Hash != done.Hash || got.Live {
		t.Errorf("card after the repeated edit %+v, want %+v", got, done)
	}
}

// press pushes a press of button a of calculation cd's card by from, waits
// for its answer and checks it was answered exactly once.
func (e *env) press(from tgtest.User, cd store.Card, a cardAction) tgtest.CallbackAnswer {
	e.t.Helper()
	id := e.srv.PushCallback(from, cd.ChatID, int64(cd.MessageID), cardData(a, cd.CalcID))
	ans := e.srv.WaitAnswer(e.t, id)
	if n := e.srv.AnswerCalls(id); n != 1 {
		e.t.Errorf("%s pressed %s: answered %d times, want once", from.Username, a, n)
	}
	return ans
}

// TestE2ECardCancel: the Cancel button, pressed by the owner, asks to
// confirm (No puts the buttons back); Yes cancels the job through the
// scheduler's cancel, and the card follows to its end without Cancel. Another
// user is told that only the owner or an admin may press it, a stranger how
// to get access; neither changes anything. An admin may cancel anyone's
// calculation, and the owner is told. Every press is answered once.
func TestE2ECardCancel(t *testing.T) {
	e := newEnv(t)
	c, _ := e.sendHeld(tgUser, e.user, "cancel.sh")
	cd := e.waitCard(c.ID, "sent", func(cd store.Card) bool { return cd.MessageID != 0 })
	running := e.waitCardText(cd, []cardAction{actCancel, actLog}, "Running since")

	if a := e.press(tgRuUser, cd, actCancel); !a.ShowAlert || !strings.Contains(a.Text, "Кнопками этого расчёта может пользоваться только его владелец или администратор") {
		t.Errorf("another user's press answered %+v", a)
	}
	if a := e.press(tgStranger, cd, actCancelYes); !strings.Contains(a.Text, "not registered") {
		t.Errorf("a stranger's press answered %+v", a)
	}
	if got, _ := e.srv.Message(cd.ChatID, int64(cd.MessageID)); got.Text != running.Text || !slices.Equal(buttonData(got), buttonData(running)) {
		t.Errorf("others' presses changed the card: %q %v", got.Text, buttonData(got))
	}
	if got, _ := e.st.Calc(c.ID); got.State != store.StateRunning || got.Progress.Cancel != store.CancelNone {
		t.Fatalf("others' presses touched the calculation: %s, cancel %q", got.State, got.Progress.Cancel)
	}

	if a := e.press(tgUser, cd, actCancel); a.Text != "" {
		t.Errorf("Cancel answered %+v, want nothing to show", a)
	}
	e.waitCardText(cd, []cardAction{actCancelYes, actNo}, "Running since", "Cancel this calculation?")
	e.press(tgUser, cd, actNo)
	e.waitCardText(cd, []cardAction{actCancel, actLog}, "Running since")
	e.press(tgUser, cd, actCancel)
	e.waitCardText(cd, []cardAction{actCancelYes, actNo}, "Cancel this calculation?")
	if a := e.press(tgUser, cd, actCancelYes); a.Text != fmt.Sprintf("Stopping calculation #%d. I will write when it has stopped.", c.ID) {
		t.Errorf("Yes answered %+v", a)
	}
	waitState(t, e.st, c.ID, store.StateNotified)
	e.waitSent(tgUser.ID, fmt.Sprintf("Calculation <b>#%d</b> (cancel.sh) finished: cancelled", c.ID))
	e.waitCardText(cd, []cardAction{actLog, actAgain}, fmt.Sprintf("Calculation <b>#%d</b> (cancel.sh) finished: cancelled", c.ID))
	// A Cancel left on an old copy of the card: nothing to do any more.
	if a := e.press(tgUser, cd, actCancelYes); !strings.Contains(a.Text, "no longer applies") {
		t.Errorf("Cancel after the end answered %+v", a)
	}

	// An admin cancels the user's calculation from its card.
	c2, _ := e.sendHeld(tgUser, e.user, "admin.sh")
	cd2 := e.waitCard(c2.ID, "sent", func(cd store.Card) bool { return cd.MessageID != 0 })
	e.waitCardText(cd2, []cardAction{actCancel, actLog}, "Running since")
	e.press(tgAdmin, cd2, actCancel)
	e.waitCardText(cd2, []cardAction{actCancelYes, actNo}, "Cancel this calculation?")
	if a := e.press(tgAdmin, cd2, actCancelYes); !strings.HasPrefix(a.Text, "Stopping calculation") {
		t.Errorf("the admin's Yes answered %+v", a)
	}
	e.waitSent(tgUser.ID, fmt.Sprintf("Your calculation #%d (admin.sh) was stopped by the admin", c2.ID))
	waitState(t, e.st, c2.ID, store.StateNotified)
	e.waitCardText(cd2, []cardAction{actLog, actAgain}, "finished: cancelled")
	if u := e.srv.Unanswered(); len(u) != 0 {
		t.Errorf("callback queries never answered: %v", u)
	}
	e.waitSent(logChat, fmt.Sprintf("#%d", c2.ID), "cancel")
}

// TestE2ECardLog: Log sends the last 30 lines of the job's output, escaped,
// in one message; when there is nothing to show the answer says why (not on
// a cluster yet, unreachable, not supported, no output). Only the owner or an
// admin may press it.
func TestE2ECardLog(t *testing.T) {
	e := newEnv(t)
	rel := filepath.Join(t.TempDir(), "release")
	script := "i=0\nwhile [ $i -lt 40 ]; do echo \"line $i <&>\"; i=$((i+1)); done\n" + string(heldScript(rel))
	e.sendFile(tgUser, "log.sh", []byte(script), "")
	c := e.calcsOf(e.user)[0]
	cd := e.waitCard(c.ID, "sent", func(cd store.Card) bool { return cd.MessageID != 0 })
	e.waitCardText(cd, []cardAction{actCancel, actLog}, "Running since")

	if a := e.press(tgRuUser, cd, actLog); !a.ShowAlert || !strings.Contains(a.Text, "только его владелец или администратор") {
		t.Errorf("another user's Log answered %+v", a)
	}
	if a := e.press(tgStranger, cd, actLog); !strings.Contains(a.Text, "not registered") {
		t.Errorf("a stranger's Log answered %+v", a)
	}
	before := len(e.srv.Sent(tgUser.ID))
	// The output is written as the job runs: wait for its last line.
	var log string
	for deadline := time.Now().Add(waitLimit); time.Now().Before(deadline) && !strings.Contains(log, "line 39"); time.Sleep(20 * time.Millisecond) {
		if a := e.press(tgUser, cd, actLog); a.Text != "" {
			continue // no output yet
		}
		msgs := e.srv.Sent(tgUser.ID)
		e.srv.Wait(t, func([]tgtest.Call) bool { msgs = e.srv.Sent(tgUser.ID); return len(msgs) > before })
		log = msgs[len(msgs)-1].Text()
		before = len(msgs)
	}
	if !strings.HasPrefix(log, fmt.Sprintf("End of the output of calculation <b>#%d</b> (log.sh):\n<pre>", c.ID)) ||
		!strings.Contains(log, "line 39 &lt;&amp;&gt;") || !strings.Contains(log, "line 10 &lt;") || strings.Contains(log, "line 9 ") {
		t.Errorf("Log sent %q; want lines 10-39 of the output, escaped", log)
	}
	if got := e.srv.Sent(tgUser.ID); len(got) != before {
		t.Errorf("Log sent %d messages, want one", len(got)-before+1)
	}
	// An admin may look too.
	if a := e.press(tgAdmin, cd, actLog); a.Text != "" {
		t.Errorf("the admin's Log answered %+v", a)
	}

	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("x: %w", scheduler.ErrClusterUnreachable), "Cluster loc cannot be reached now"},
		{fmt.Errorf("x: %w", scheduler.ErrTailNotSupported), "The scheduler of cluster loc cannot show"},
		{fmt.Errorf("x: %w", scheduler.ErrNoOutput), "has written no output yet"},
	} {
		e.calcs.tailErr.Store(&tc.err)
		if a := e.press(tgUser, cd, actLog); !a.ShowAlert || !strings.Contains(a.Text, tc.want) {
			t.Errorf("Log with %v answered %+v, want %q", tc.err, a, tc.want)
		}
	}
	e.calcs.tailErr.Store(nil)
	release(t, rel)
	waitState(t, e.st, c.ID, store.StateNotified)

	// A calculation not on a cluster yet (the button of a card that said so).
	idle, err := e.st.CreateCalculation(store.Calculation{UserID: e.user.ID, TelegramID: tgUser.ID, ChatID: tgUser.ID,
		InputName: "idle.sh", Folder: "idle", Cluster: "nowhere"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if a := e.press(tgUser, store.Card{CalcID: idle.ID, ChatID: tgUser.ID, MessageID: cd.MessageID}, actLog); !strings.Contains(a.Text, "is not on a cluster yet") {
		t.Errorf("Log before a job answered %+v", a)
	}
	if u := e.srv.Unanswered(); len(u) != 0 {
		t.Errorf("callback queries never answered: %v", u)
	}
}

// TestE2ECardRunAgain: Run again, once the calculation ended, asks to
// confirm; Yes makes a new calculation of the same input and caption, with
// its own card, once per press (a repeat of the press makes none); the quota
// holds as for a new file; an admin may run anyone's again (for its owner);
// others are refused.
func TestE2ECardRunAgain(t *testing.T) {
	e := newEnv(t)
	e.sendFile(tgUser, "again.sh", []byte("echo 'energy -76.4' > result.out\n"), "sh -e {}")
	c := e.calcsOf(e.user)[0]
	waitState(t, e.st, c.ID, store.StateNotified)
	cd := e.waitCard(c.ID, "at its end", func(cd store.Card) bool { return cd.MessageID != 0 && !cd.Live })
	e.waitCardText(cd, []cardAction{actLog, actAgain}, "finished: succeeded")

	if a := e.press(tgRuUser, cd, actAgain); !a.ShowAlert || !strings.Contains(a.Text, "только его владелец или администратор") {
		t.Errorf("another user's Run again answered %+v", a)
	}
	if a := e.press(tgStranger, cd, actAgainYes); !strings.Contains(a.Text, "not registered") {
		t.Errorf("a stranger's Run again answered %+v", a)
	}
	e.press(tgUser, cd, actAgain)
	m := e.waitCardText(cd, nil, "Run this input again")
	if got := buttonData(m); !slices.Equal(got, []string{fmt.Sprintf("card:again_yes:%d:0", c.ID), cardData(actNo, c.ID)}) {
		t.Fatalf("confirm buttons %v", got)
	}
	yes := func(from tgtest.User, gen int) tgtest.CallbackAnswer {
		t.Helper()
		id := e.srv.PushCallback(from, cd.ChatID, int64(cd.MessageID), fmt.Sprintf("card:again_yes:%d:%d", c.ID, gen))
		a := e.srv.WaitAnswer(t, id)
		if n := e.srv.AnswerCalls(id); n != 1 {
			t.Errorf("Yes answered %d times", n)
		}
		return a
	}
	a := yes(tgUser, 0)
	calcs := e.calcsOf(e.user)
	if len(calcs) != 2 {
		t.Fatalf("%d calculations after Run again, want 2", len(calcs))
	}
	n := calcs[0]
	if a.Text != fmt.Sprintf("Calculation #%d is on its way: a new run of #%d.", n.ID, c.ID) {
		t.Errorf("Yes answered %+v", a)
	}
	if n.InputName != "again.sh" || !slices.Equal(n.Argv, c.Argv) || n.UserID != e.user.ID {
		t.Errorf("the new run %+v of %+v", n, c)
	}
	ncd := e.waitCard(n.ID, "sent", func(cd store.Card) bool { return cd.MessageID != 0 })
	if ncd.MessageID == cd.MessageID {
		t.Fatal("the new run has the old card")
	}
	waitState(t, e.st, n.ID, store.StateNotified)
	e.waitCardText(ncd, []cardAction{actLog, actAgain}, fmt.Sprintf("Calculation <b>#%d</b> (again.sh) finished: succeeded", n.ID))
	e.waitCardText(cd, []cardAction{actLog, actAgain}, fmt.Sprintf("Calculation <b>#%d</b> (again.sh) finished: succeeded", c.ID))
	if got, _ := e.st.Card(c.ID); got.Reruns != 1 {
		t.Errorf("card after a rerun: %+v", got)
	}

	// The same press again (a double tap, or handled again after a crash): no new calculation.
	yes(tgUser, 0)
	if got := e.calcsOf(e.user); len(got) != 2 {
		t.Errorf("a repeated press made %d calculations, want still 2", len(got))
	}

	// An admin runs it again, for its owner.
	e.press(tgAdmin, cd, actAgain)
	e.waitCardText(cd, nil, "Run this input again")
	if a := yes(tgAdmin, 1); !strings.Contains(a.Text, "is on its way") {
		t.Errorf("the admin's Yes answered %+v", a)
	}
	calcs = e.calcsOf(e.user)
	if len(calcs) != 3 || calcs[0].UserID != e.user.ID || calcs[0].TelegramID != tgUser.ID {
		t.Fatalf("after the admin's Run again: %d calculations, the newest %+v", len(calcs), calcs[0])
	}
	waitState(t, e.st, calcs[0].ID, store.StateNotified)

	// The quota (3 for this user) is used up: told so, nothing made.
	e.press(tgUser, cd, actAgain)
	e.waitCardText(cd, nil, "Run this input again")
	before := len(e.srv.Sent(tgUser.ID))
	yes(tgUser, 2)
	if got := e.calcsOf(e.user); len(got) != 3 {
		t.Errorf("past the quota Run again made a calculation (%d)", len(got))
	}
	e.srv.Wait(t, func([]tgtest.Call) bool {
		for _, m := range e.srv.Sent(tgUser.ID)[before:] {
			if strings.Contains(m.Text(), "You have used all 3 calculations") {
				return true
			}
		}
		return false
	})
	if u := e.srv.Unanswered(); len(u) != 0 {
		t.Errorf("callback queries never answered: %v", u)
	}
}

// TestCardPressDuringEdit: a button pressed while the card is being edited
// (here: No, right after Telegram took the edit that asks to confirm Run
// again) is not lost: what the message shows is recorded, and the next pass
// edits it to the answer (a finished card, which nothing else changes).
func TestCardPressDuringEdit(t *testing.T) {
	e := newEnv(t)
	e.sendFile(tgUser, "race.sh", []byte("echo done > result.out\n"), "")
	c := e.calcsOf(e.user)[0]
	waitState(t, e.st, c.ID, store.StateNotified)
	cd := e.waitCard(c.ID, "at its end", func(x store.Card) bool { return x.MessageID != 0 && !x.Live })
	e.waitCardText(cd, []cardAction{actLog, actAgain}, "finished: succeeded")
	var once sync.Once
	hook := func(id uint64) {
		once.Do(func() {
			if err := e.bot.setConfirm(id, ""); err != nil {
				t.Error(err)
			}
		})
	}
	e.bot.cardEdited.Store(&hook)
	if err := e.bot.setConfirm(c.ID, string(actAgain)); err != nil {
		t.Fatal(err)
	}
	e.srv.Wait(t, func([]tgtest.Call) bool {
		for _, ed := range e.editsOf(cd.ChatID, cd.MessageID) {
			if ed.OK() && strings.Contains(ed.Text(), "Run this input again") {
				return true
			}
		}
		return false
	})
	e.waitCardText(cd, []cardAction{actLog, actAgain}, "finished: succeeded")
	if m, _ := e.srv.Message(cd.ChatID, int64(cd.MessageID)); strings.Contains(m.Text, "Run this input again") {
		t.Errorf("the card still asks: %q", m.Text)
	}
	e.waitCard(c.ID, "no longer live", func(x store.Card) bool { return !x.Live })
}
