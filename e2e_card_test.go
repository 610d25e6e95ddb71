//go:build linux

package main

import (
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"

	"hpcbot/bot/tgtest"
	"hpcbot/plugins/shellquote"
	"hpcbot/store"
)

// cardOf reads calculation id's card through `hpcbot backup`.
func (w *world) cardOf(id uint64) store.Card {
	w.t.Helper()
	var cd store.Card
	w.backup(func(st *store.Store) {
		var err error
		if cd, err = st.Card(id); err != nil {
			w.t.Fatalf("card of calc %d: %v", id, err)
		}
	})
	return cd
}

// TestE2ECard follows a calculation's card through a whole run on the bed's
// Slurm with the real daemon: the reply to the input file is the card; it is
// edited in place to the running job (its node from Slurm) and at the end to
// the finished text with Log and Run again, while the end also comes as a
// message. The daemon is SIGKILLed right after Telegram took the card's edit
// to "running" and before the daemon heard so (the fake holds the answer
// back): the new daemon makes the same edit again, Telegram's "message is
// not modified" counts as done, and the card ends right: one card, no error.
func TestE2ECard(t *testing.T) {
	w := newWorld(t)
	user := e2eUser(7301, "Olga")
	w.seedUser(user)
	held := w.tg.HoldAnswer("editMessageText", func(p map[string]string) bool {
		return p["chat_id"] == strconv.FormatInt(user.ID, 10) && strings.Contains(p["text"], "Running on")
	})
	w.start()

	// The job runs until the test creates "go" in its folder.
	w.tg.PushDocument(user, tgtest.Private(user), "card.sh", []byte("while [ ! -e go ]; do sleep 0.2; done\necho 'energy -76.4' > water.txt\n"), "")
	var id uint64
	w.until("the card", 50*time.Millisecond, func() bool {
		for _, c := range w.tg.Sent(user.ID) {
			if m := acceptedRe.FindStringSubmatch(c.Text()); m != nil {
				id, _ = strconv.ParseUint(m[1], 10, 64)
				return true
			}
		}
		return false
	})
	var edit tgtest.Call
	w.until("the card's edit to running", 50*time.Millisecond, func() bool {
		select {
		case <-held:
		default:
			return false
		}
		for _, c := range w.tg.Calls("editMessageText") {
			if c.Code == -1 {
				edit = c
				return true
			}
		}
		return false
	})
	msgID, _ := strconv.ParseInt(edit.Params["message_id"], 10, 64)
	if m, ok := w.tg.Message(user.ID, msgID); !ok || m.Text != edit.Params["text"] {
		t.Fatalf("the held edit did not take effect: %q", m.Text)
	}
	if !strings.Contains(edit.Params["text"], fmt.Sprintf("Calculation <b>#%d</b> (card.sh) is on bed: job ", id)) {
		t.Errorf("the card's running text %q", edit.Params["text"])
	}
	w.kill9("between the card's edit and its record")
	before := w.cardOf(id)
	if before.MessageID != int(msgID) || !before.Live || before.Gone {
		t.Fatalf("card after the kill %+v, want message %d, live", before, msgID)
	}

	w.start()
	// The new daemon brings the card up to date: the same edit, unless the
	// text moved on meanwhile (the elapsed minute); either way no error.
	var again tgtest.Call
	w.until("the card's edit after the restart", 50*time.Millisecond, func() bool {
		calls := w.tg.Calls("editMessageText")
		for i := len(calls) - 1; i >= 0; i-- {
			if c := calls[i]; c.Params["message_id"] == edit.Params["message_id"] && c.Code > 0 && c.Time.After(edit.Time) {
				again = c
				return true
			}
		}
		return false
	})
	t.Logf("after the restart the card's edit was answered %d (the same text: %v)", again.Code, again.Params["text"] == edit.Params["text"])
	if again.Params["text"] == edit.Params["text"] && again.Code != 400 {
		t.Errorf("the same edit again was answered %d, want 400 not modified", again.Code)
	}
	if again.Params["text"] != edit.Params["text"] && again.Code != 200 {
		t.Errorf("the edit after the restart was answered %d: %q", again.Code, again.Params["text"])
	}
	w.until("the card's record after the restart", 200*time.Millisecond, func() bool {
		return w.cardOf(id).Hash != before.Hash
	})

	calcs := byInput(w.snapshot(), "card.sh")
	if len(calcs) != 1 {
		t.Fatalf("%d calculations of card.sh, want 1", len(calcs))
	}
	w.remote("touch " + shellquote.Quote(path.Join(w.upload, calcs[0].Folder, "go")))
	if got := w.waitFinished(user.ID, "card.sh"); got != id {
		t.Fatalf("finished message names #%d, the card #%d", got, id)
	}
	w.until("the card at its end", 100*time.Millisecond, func() bool {
		m, _ := w.tg.Message(user.ID, msgID)
		if !strings.Contains(m.Text, fmt.Sprintf("Calculation <b>#%d</b> (card.sh) finished: succeeded, exit code 0", id)) || m.ReplyMarkup == nil {
			return false
		}
		var data []string
		for _, row := range m.ReplyMarkup.InlineKeyboard {
			for _, b := range row {
				data = append(data, b.CallbackData)
			}
		}
		return strings.Join(data, " ") == fmt.Sprintf("card:log:%d card:again:%d", id, id)
	})
	w.until("the card no longer live", 200*time.Millisecond, func() bool { return !w.cardOf(id).Live })
	if msgs, _ := w.finished(user.ID, "card.sh"); len(msgs) != 1 {
		t.Errorf("%d finished messages, want 1", len(msgs))
	}
	if n := w.accepted(user.ID, id); n != 1 {
		t.Errorf("the card was sent %d times, want once", n)
	}
	for _, c := range w.tg.Calls("editMessageText") {
		if c.Code != 200 && c.Code != -1 && !(c.Code == 400 && c.Params["text"] == edit.Params["text"]) {
			t.Errorf("edit answered %d: %q", c.Code, c.Params["text"])
		}
	}
	data, err := os.ReadFile(w.logf.Name())
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, "card") && (strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN")) {
			t.Errorf("the daemon logged: %s", line)
		}
	}
}
