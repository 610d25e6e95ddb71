package main

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"hpcbot/bot/tgtest"
	"hpcbot/store"
)

// TestE2EWrongCloudPassword: the Nextcloud account's password changed and the
// configuration still has the old one. A job that succeeds is not reported as
// failed: the user is told it ended and the results are held, the log chat
// says what to fix, and the calculation waits in delivery_failed without
// retrying the refused login by itself; /redeliver tries once more. After the
// configuration is fixed, a restart delivers it: once, one share, one
// finished message.
func TestE2EWrongCloudPassword(t *testing.T) {
	w := newWorld(t)
	const logChat = -7200
	cfg, err := os.ReadFile(w.cfg)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(cfg), "[bot]\n", fmt.Sprintf("[bot]\nlog_chat_id = %d\n", logChat), 1)
	if err := os.WriteFile(w.cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	configured := w.nc.Password
	w.nc.Password = "rotated-on-the-server" // before any request
	user := e2eUser(7301, "Olga")
	w.seedUser(user)
	w.start()

	w.tg.PushDocument(user, tgtest.Private(user), "held.sh", []byte("echo 'energy -1' > held.txt\n"), "")
	heldRe := regexp.MustCompile(`Calculation <b>#(\d+)</b> \(held\.sh\) ended: succeeded\. The results are safe with the bot, but the cloud storage refused the bot's login`)
	var id uint64
	w.until("the message that the results are held", 50*time.Millisecond, func() bool {
		for _, c := range w.tg.Sent(user.ID) {
			if m := heldRe.FindStringSubmatch(c.Text()); m != nil {
				id, _ = strconv.ParseUint(m[1], 10, 64)
				return true
			}
		}
		return false
	})
	w.until("the log chat line saying what to fix", 50*time.Millisecond, func() bool {
		for _, c := range w.tg.Sent(logChat) {
			if strings.Contains(c.Text(), "refused the bot's credentials") && strings.Contains(c.Text(), "storage.password") &&
				strings.Contains(c.Text(), fmt.Sprintf("/redeliver %d", id)) {
				return true
			}
		}
		return false
	})
	for _, c := range w.tg.Sent(user.ID) {
		if strings.Contains(c.Text(), "could not run") {
			t.Errorf("a failed delivery was reported as a failed calculation: %q", c.Text())
		}
	}
	var c store.Calculation
	for _, x := range w.snapshot() {
		if x.ID == id {
			c = x
		}
	}
	if c.State != store.StateDeliveryFailed || !c.Progress.DeliveryHeld || c.Error != "" {
		t.Fatalf("calculation #%d: %s, held %t, error %q; want delivery_failed, held", id, c.State, c.Progress.DeliveryHeld, c.Error)
	}

	// /redeliver: one more login, refused again; the admin is answered.
	fails := w.nc.AuthFailures()
	w.tg.PushText(e2eAdmin, tgtest.Private(e2eAdmin), fmt.Sprintf("/redeliver %d", id))
	w.until("the answer to /redeliver and one more login", 50*time.Millisecond, func() bool {
		return sentHas(w.tg, e2eAdmin.ID, fmt.Sprintf("Delivering the results of calculation #%d again", id)) && w.nc.AuthFailures() > fails
	})
	w.tg.PushText(e2eAdmin, tgtest.Private(e2eAdmin), "/redeliver 9999")
	w.until("the answer to /redeliver of an unknown number", 50*time.Millisecond, func() bool {
		return sentHas(w.tg, e2eAdmin.ID, "There is no calculation #9999")
	})
	if msgs, _ := w.finished(user.ID, "held.sh"); len(msgs) != 0 {
		t.Fatalf("finished with the wrong password: %q", msgs)
	}

	// The admin fixes the configuration and restarts.
	if _, err := w.term(time.Minute); err != nil {
		t.Fatal(err)
	}
	cfg, _ = os.ReadFile(w.cfg)
	fixed := strings.Replace(string(cfg), fmt.Sprintf("password = %q", configured), fmt.Sprintf("password = %q", w.nc.Password), 1)
	if fixed == string(cfg) {
		t.Fatal("the storage password is not in the config")
	}
	if err := os.WriteFile(w.cfg, []byte(fixed), 0o600); err != nil {
		t.Fatal(err)
	}
	w.start()
	if got := w.waitFinished(user.ID, "held.sh"); got != id {
		t.Fatalf("finished message names #%d, want #%d", got, id)
	}
	msgs, _ := w.finished(user.ID, "held.sh")
	if len(msgs) != 1 || !strings.Contains(msgs[0], "succeeded, exit code 0") || !strings.Contains(msgs[0], "Results: "+w.nc.URL+"/s/") {
		t.Fatalf("finished messages %q: want one, succeeded, with a link", msgs)
	}
	if sh := w.nc.Shares(); len(sh) != 1 {
		t.Errorf("shares %q, want one", sh)
	}
	for _, x := range w.snapshot() {
		if x.ID == id && (x.State != store.StateNotified || x.ShareLink == "") {
			t.Errorf("calculation #%d after the restart: %s, link %q", id, x.State, x.ShareLink)
		}
	}
}
