package bot

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Every refused attempt reaches the log chat: who, what they tried (escaped)
// and why (issue 10 item 1).
func TestE2ERefusalsReachTheLogChat(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Bot.SubmitsPerMinute = 4 })
	e.bot.refusedLog.every = 0 // each refusal here; TestE2ERefusalsInTheLogChatAreThrottled tests the interval
	cases := []struct {
		from          string
		name, caption string
		data          []byte
		parts         []string
	}{
		{"ivan", "a;b.sh", "", []byte("echo\n"), []string{"a;b.sh", "cannot take the file name"}},
		{"ivan", "-e.sh", "", []byte("echo\n"), []string{"-e.sh", "starts with a dash"}},
		{"ivan", "big.sh", "", bytes.Repeat([]byte("#"), 5000), []string{"big.sh", "more than the limit"}},
		{"ivan", "ok.sh", "sh {} $(rm -rf ~) <b>", []byte("echo\n"), []string{"ok.sh | sh {} $(rm -rf ~) &lt;b&gt;", "is not allowed"}},
		{"ivan", "h2o.inp", "", []byte("! B3LYP\n"), []string{"h2o.inp", "No program takes files ending in .inp"}},
		{"bob", "ok.sh", "", []byte("echo\n"), []string{"@bob_blocked", "ok.sh", "blocked"}},
	}
	for _, c := range cases {
		from := tgUser
		if c.from == "bob" {
			from = tgBlocked
		}
		e.sendFile(from, c.name, c.data, c.caption)
		e.waitSent(logChat, append([]string{"Refused", "@" + from.Username}, c.parts...)...)
	}
	// The quota (3) and the submission rate (4 a minute).
	for i := range 3 {
		e.sendFile(tgUser, fmt.Sprintf("q%d.sh", i), []byte("echo\n"), "")
	}
	e.sendFile(tgUser, "q4.sh", []byte("echo\n"), "")
	e.waitSent(logChat, "Refused", "@ivan", "q4.sh", "used all 3 calculations")
	for i := range 4 {
		e.sendFile(tgAdmin, fmt.Sprintf("r%d.sh", i), []byte("echo\n"), "")
	}
	e.sendFile(tgAdmin, "r5.sh", []byte("echo\n"), "")
	e.waitSent(logChat, "Refused", "@ada_admin", "r5.sh", "at most 4 files a minute")
	// Someone else's calculation; an approved user changing their own data.
	calcs := e.calcsOf(e.user)
	e.private(tgRuUser, fmt.Sprintf("/cancel %d", calcs[0].ID))
	e.waitSent(logChat, "Refused", "@masha", fmt.Sprintf("/cancel %d", calcs[0].ID), "no calculation")
	e.private(tgAdmin, "/upd first name: <i>Eve</i>")
	e.waitSent(logChat, "Refused", "@ada_admin", "/upd first name: &lt;i&gt;Eve&lt;/i&gt;", "approved")
	for _, text := range e.logTexts() {
		if strings.Contains(text, "$(rm -rf ~) <b>") {
			t.Errorf("the caption reached the log chat unescaped: %s", text)
		}
	}
}

// A sender's refusals reach the log chat once per interval; the next line
// counts those left out.
func TestE2ERefusalsInTheLogChatAreThrottled(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	var mu = make(chan struct{}, 1)
	mu <- struct{}{}
	e.bot.now = func() time.Time { <-mu; defer func() { mu <- struct{}{} }(); return now }
	for i := range 5 {
		e.sendFile(tgUser, fmt.Sprintf("bad;%d.sh", i), []byte("echo\n"), "")
	}
	<-mu
	now = now.Add(refuseEvery)
	mu <- struct{}{}
	e.sendFile(tgUser, "bad;last.sh", []byte("echo\n"), "")
	e.waitSent(logChat, "bad;last.sh", "4 more refusals for this sender")
	e.quiesce()
	n := 0
	for _, text := range e.logTexts() {
		n += strings.Count(text, "Refused")
	}
	if n != 2 {
		t.Fatalf("%d refusal lines in the log chat, want 2:\n%s", n, strings.Join(e.logTexts(), "\n---\n"))
	}
}
