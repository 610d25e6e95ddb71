package bot

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"hpcbot/bot/tgtest"
	"hpcbot/store"
)

// Who may register, who is an admin, and what strangers, bots and anonymous
// senders can do: end to end through the fake Bot API.

var tgMallory = tgtest.User{ID: 5005, FirstName: "Mallory", Username: "mallory", LanguageCode: "en"}

// notRegistered fails the test when any of the Telegram users has a user.
func (e *env) notRegistered(users ...tgtest.User) {
	e.t.Helper()
	for _, u := range users {
		if got, _, err := e.st.UserByTelegramID(u.ID); !errors.Is(err, store.ErrNotFound) {
			e.t.Errorf("%s (%d) was registered: %+v, %v", u.FirstName, u.ID, got, err)
		}
	}
}

// sendsTo returns every sendMessage call to chat, answered or refused.
func (e *env) sendsTo(chat int64) []string {
	var out []string
	for _, c := range e.srv.Calls("sendMessage") {
		if c.ChatID() == chat {
			out = append(out, c.Text())
		}
	}
	return out
}

// countLog counts the log chat messages that contain every part.
func (e *env) countLog(parts ...string) int {
	n := 0
	for _, text := range e.logTexts() {
		if containsAll(text, parts...) {
			n++
		}
	}
	return n
}

// A stranger adds the bot to their own group and sends /access there; the
// /access (and whatever else the group sent) arrives in the same getUpdates
// answer as the membership change. The bot refuses the group and leaves, and
// nothing queued behind the refusal registers anyone or gets an answer.
func TestE2EStrangerGroupCannotRegister(t *testing.T) {
	e := newEnv(t)
	lab := tgtest.Group(-600, "Lab of Eve")
	ids := e.srv.PushBatch(
		e.srv.MyChatMemberUpdate(tgStranger, lab, "left", "member"),
		e.srv.TextUpdate(tgStranger, lab, "/access"),
		e.srv.TextUpdate(tgMallory, lab, "/access@hpcbot_test_bot"),
		e.srv.TextUpdate(tgStranger, lab, "/help"),
		e.srv.TextUpdate(tgStranger, lab, "/status"),
	)
	for _, id := range ids {
		e.handled(id)
	}
	e.notRegistered(tgStranger, tgMallory)
	if !e.srv.Left(lab.ID) {
		t.Error("the bot stayed in a group a stranger added it to")
	}
	if g, err := e.st.Group(lab.ID); err != nil || g.State != store.GroupRefused || g.By != tgStranger.ID {
		t.Errorf("group record %+v, %v; want refused, by the stranger", g, err)
	}
	if sent := e.sendsTo(lab.ID); len(sent) != 1 || !strings.Contains(sent[0], "Only the admin") {
		t.Errorf("messages to the refused group: %q; want only the one saying why the bot leaves", sent)
	}
	e.quiesce()
	if n := e.countLog("not an admin, added me to Lab of Eve (-600)"); n != 1 {
		t.Errorf("the log chat heard of the refusal %d times, want 1: %q", n, e.logTexts())
	}
	if n := e.countLog("New user"); n != 0 {
		t.Errorf("the log chat announced a new user: %q", e.logTexts())
	}
	// What the group sends later is ignored too (it was queued before the bot left).
	e.say(tgMallory, lab, "/access")
	e.notRegistered(tgMallory)
	if sent := e.sendsTo(lab.ID); len(sent) != 1 {
		t.Errorf("answered a refused group: %q", sent)
	}
	// The refusal shows in /groups.
	want(t, e.private(tgAdmin, "/groups"), "Groups I left", "Lab of Eve (-600): Eve (@eve, 4004)")
}

// /access works only in allowed groups: bot.groups, groups an admin added the
// bot to, and groups an admin allowed with /groups add. Elsewhere (a group the
// bot was in before groups had to be allowed) it registers nobody and says so.
func TestE2EAccessOnlyInAllowedGroups(t *testing.T) {
	e := newEnv(t)
	old := tgtest.Group(-800, "Old group")
	for range 3 {
		want(t, e.say(tgStranger, old, "/access"), "have not allowed it", "tg://user?id=1001")
	}
	e.notRegistered(tgStranger)
	e.quiesce()
	if n := e.countLog("@eve", "/access in Old group (-800)", "/groups add -800"); n != 1 {
		t.Errorf("the log chat heard of the refused /access %d times, want 1 (once per sender): %q", n, e.logTexts())
	}

	// Not for non-admins.
	want(t, e.private(tgUser, "/groups add -800"), "Only admins")
	want(t, e.private(tgStranger, "/groups"), "Only admins")
	// An admin allows the group the bot is in.
	want(t, e.private(tgAdmin, "/groups add -800"), "Done", "-800")
	want(t, e.private(tgAdmin, "/groups add -800"), "already allowed")
	want(t, e.say(tgStranger, old, "/access"), "Welcome, Eve")
	want(t, e.private(tgAdmin, "/groups"), "-500 (bot.groups)", "-800: Ada Admin (@ada_admin, 1001)")
	e.waitSent(logChat, "@ada_admin", "allowed the group -800")

	// Bad arguments.
	for _, cmd := range []string{"/groups add", "/groups add 5", "/groups add x", "/groups drop -800", "/groups add -1 -2"} {
		want(t, e.private(tgAdmin, cmd), "<code>/groups add -100123</code>")
	}
	want(t, e.private(tgAdmin, "/groups remove -999"), "not an allowed group")
	want(t, e.private(tgAdmin, "/groups remove -500"), "listed in bot.groups")

	// Removed: the bot leaves, and what the group still sends is ignored.
	want(t, e.private(tgAdmin, "/groups remove -800"), "no longer works in -800")
	if !e.srv.Left(old.ID) {
		t.Error("the bot did not leave a removed group")
	}
	before := len(e.sendsTo(old.ID))
	e.say(tgMallory, old, "/access")
	e.notRegistered(tgMallory)
	if after := len(e.sendsTo(old.ID)); after != before {
		t.Errorf("answered in a removed group: %q", e.sendsTo(old.ID)[before:])
	}
	want(t, e.private(tgAdmin, "/groups"), "-500 (bot.groups)")
	for _, r := range e.private(tgAdmin, "/groups") {
		allowed, refused, _ := strings.Cut(r, "\n\n")
		if strings.Contains(allowed, "-800") || !strings.Contains(refused, "-800: Ada Admin") {
			t.Errorf("a removed group is not listed as left: %s", r)
		}
	}
}

// A group an admin added the bot to is allowed until the bot is removed from
// it; then adding it back takes an admin again.
func TestE2EGroupAddedByAdminThenRemoved(t *testing.T) {
	e := newEnv(t)
	lab := tgtest.Group(-900, "Admin lab")
	e.handled(e.srv.Push(e.srv.MyChatMemberUpdate(tgAdmin, lab, "left", "member")))
	want(t, e.say(tgStranger, lab, "/access"), "Welcome, Eve")
	want(t, e.private(tgAdmin, "/groups"), "Admin lab (-900): Ada Admin (@ada_admin, 1001)")

	e.handled(e.srv.Push(e.srv.MyChatMemberUpdate(tgUser, lab, "member", "kicked")))
	e.waitSent(logChat, "removed me from Admin lab (-900)", "no longer an allowed group")
	if _, err := e.st.Group(lab.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the group is still on the list: %v", err)
	}
	want(t, e.say(tgMallory, lab, "/access"), "have not allowed it")
	e.notRegistered(tgMallory)
	// A non-admin adds it back: refused.
	e.handled(e.srv.Push(e.srv.MyChatMemberUpdate(tgUser, lab, "left", "member")))
	if !e.srv.Left(lab.ID) {
		t.Error("a non-admin added the bot back to a group it was removed from, and it stayed")
	}
	// The bot's own leaving is not reported as a removal.
	e.quiesce()
	removals := e.countLog("removed me from")
	e.handled(e.srv.Push(e.srv.MyChatMemberUpdate(e.srv.Bot, lab, "member", "left")))
	e.quiesce()
	if n := e.countLog("removed me from"); n != removals {
		t.Errorf("the bot's own leaving was reported: %q", e.logTexts())
	}
	if g, err := e.st.Group(lab.ID); err != nil || g.State != store.GroupRefused {
		t.Errorf("after leaving: %+v, %v; want still refused", g, err)
	}
	// bot.groups is the operator's: removing the bot from it keeps it allowed.
	e.handled(e.srv.Push(e.srv.MyChatMemberUpdate(tgUser, groupChat, "member", "kicked")))
	e.waitSent(logChat, "removed me from Chem group (-500)")
	want(t, e.say(tgMallory, groupChat, "/access"), "Welcome, Mallory")
}

// A group that becomes a supergroup stays allowed under its new id, whether
// an admin added the bot (the record moves) or bot.groups lists it (a record
// is made, and the log chat asks for the configuration to be updated); also
// when the one who converted it is an anonymous admin.
func TestE2EAllowedGroupMigrates(t *testing.T) {
	e := newEnv(t)
	lab := tgtest.Group(-910, "Small lab")
	e.handled(e.srv.Push(e.srv.MyChatMemberUpdate(tgAdmin, lab, "left", "member")))
	anon := tgtest.User{ID: 1087968824, IsBot: true, FirstName: "Group", Username: "GroupAnonymousBot"}
	mig := e.srv.MigrationUpdate(anon, lab, -100910)
	mig.Message.SenderChat = &lab
	e.handled(e.srv.Push(mig))
	want(t, e.say(tgStranger, tgtest.Supergroup(-100910, "Small lab"), "/access"), "Welcome, Eve")
	if _, err := e.st.Group(lab.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the old id is still allowed: %v", err)
	}

	e.handled(e.srv.Push(e.srv.MigrationUpdate(tgAdmin, groupChat, -100500)))
	e.waitSent(logChat, "bot.groups", "Replace -500 with -100500")
	want(t, e.say(tgMallory, tgtest.Supergroup(-100500, "Chem group"), "/access"), "Welcome, Mallory")
	want(t, e.private(tgAdmin, "/groups"), "-500 (bot.groups)", "Chem group (-100500): hpcbot", "(was -500 before it became a supergroup)")
}

// Bots and senders acting for a chat (anonymous group admins, a channel
// posting in its discussion group) are ignored: not registered, not answered,
// not reported.
func TestE2EBotsAndAnonymousSendersIgnored(t *testing.T) {
	e := newEnv(t)
	spamBot := tgtest.User{ID: 7007, IsBot: true, FirstName: "Spam", Username: "spam_bot"}
	anon := tgtest.User{ID: 1087968824, IsBot: true, FirstName: "Group", Username: "GroupAnonymousBot"}
	service := tgtest.User{ID: 777000, FirstName: "Telegram"} // not a bot: the sender of channel posts
	channel := tgtest.Chat{ID: -100777, Type: "channel", Title: "News"}
	asAnon := e.srv.TextUpdate(anon, groupChat, "/access")
	asAnon.Message.SenderChat = &groupChat
	asChannel := e.srv.TextUpdate(service, groupChat, "/access")
	asChannel.Message.SenderChat = &channel
	channelPrivate := e.srv.TextUpdate(service, tgtest.Private(service), "/status")
	channelPrivate.Message.SenderChat = &channel
	ids := e.srv.PushBatch(
		e.srv.TextUpdate(spamBot, groupChat, "/access"),
		asAnon,
		asChannel,
		e.srv.TextUpdate(spamBot, tgtest.Private(spamBot), "/access"),
		e.srv.TextUpdate(spamBot, tgtest.Private(spamBot), "/list"),
		e.srv.DocumentUpdate(spamBot, tgtest.Private(spamBot), e.srv.AddFile("x.sh", []byte("echo\n")), ""),
		channelPrivate,
	)
	for _, id := range ids {
		e.handled(id)
	}
	e.notRegistered(spamBot, anon, service)
	for _, chat := range []int64{groupChat.ID, spamBot.ID, service.ID} {
		if sent := e.sendsTo(chat); len(sent) != 0 {
			t.Errorf("answered chat %d: %q", chat, sent)
		}
	}
	e.quiesce()
	if len(e.logTexts()) != 0 {
		t.Errorf("the log chat heard of ignored senders: %q", e.logTexts())
	}
	if n := strings.Count(e.logs.String(), "ignored: sent by a bot or on behalf of a chat"); n != len(ids) {
		t.Errorf("%d debug lines about ignored updates, want %d", n, len(ids))
	}
	// A bot that adds this one to a group is not an admin: the bot leaves.
	lab := tgtest.Group(-920, "Bots")
	e.handled(e.srv.Push(e.srv.MyChatMemberUpdate(spamBot, lab, "left", "member")))
	if !e.srv.Left(lab.ID) {
		t.Error("stayed in a group a bot added it to")
	}
	// People in the same group still register.
	want(t, e.say(tgMallory, groupChat, "/access"), "Welcome, Mallory")
}

// Refused admin commands reach the log chat once in a while per sender, not
// at every attempt; the sender is answered every time.
func TestE2ENotAdminReportedOncePerSender(t *testing.T) {
	e := newEnv(t)
	for range 5 {
		want(t, e.private(tgUser, "/list"), "Only admins")
	}
	for range 3 {
		want(t, e.private(tgStranger, "/block #1"), "Only admins")
	}
	e.quiesce()
	if n := e.countLog("@ivan", "tried /list"); n != 1 {
		t.Errorf("the log chat heard of /list from a user %d times, want 1: %q", n, e.logTexts())
	}
	if n := e.countLog("@eve", "tried /block"); n != 1 {
		t.Errorf("the log chat heard of /block from a stranger %d times, want 1: %q", n, e.logTexts())
	}
}

// Admin rights come from bot.admins alone: bot.admin_name is the contact
// shown to users, whoever holds that @username.
func TestE2EAdminNameGrantsNothing(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Bot.AdminName = "@ivan" })
	uid := e.user.ID
	want(t, e.private(tgUser, "/list"), "Only admins")
	want(t, e.private(tgUser, fmt.Sprintf("/alter_limit #%d 99", uid)), "Only admins")
	if u := e.userByTG(tgUser.ID); u.Limit != 3 {
		t.Errorf("the holder of admin_name changed a limit: %+v", u)
	}
	for _, r := range e.private(tgUser, "/help") {
		if strings.Contains(r, "/approve") {
			t.Errorf("the holder of admin_name sees the admin commands: %s", r)
		}
	}
	want(t, e.private(tgStranger, "hello"), "not registered", "@ivan")
	// The admin by id is one.
	want(t, e.private(tgAdmin, "/list"), "Ivan")
}

// With bot.admins empty the bot runs, tells whoever writes their Telegram id
// (what goes into bot.admins), and nobody has admin rights, not even the
// holder of admin_name.
func TestE2ENoAdmins(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Bot.Admins = nil; o.Bot.AdminName = "@ada_admin" })
	if !strings.Contains(e.logs.String(), "nobody has admin rights") {
		t.Errorf("no warning that nobody is an admin:\n%s", e.logs)
	}
	want(t, e.private(tgAdmin, "hello"), "not registered", "Your Telegram id is 1001", "@ada_admin")
	want(t, e.private(tgAdmin, "/list"), "Only admins")
	e.notRegistered(tgAdmin)
	if _, ok := e.srv.Commands(tgtest.CommandScope{Type: "chat", ChatID: tgAdmin.ID}, ""); ok {
		t.Error("an admin command menu was set for someone")
	}
}
