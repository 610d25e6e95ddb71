package bot

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"hpcbot/store"
)

// Admin commands. Each is wrapped by Bot.admin: a non-admin never reaches them.

// Audit actions the admin commands append.
const (
	actionApprove = "user.approve"
	actionBlock   = "user.block"
	actionUnblock = "user.unblock"
	actionLimit   = "user.limit"
)

// target resolves the user named by the first word of the payload; on failure
// it answers and returns ok=false.
func (b *Bot) target(r *request, ref string) (store.User, bool) {
	if ref == "" {
		r.reply("admin.user_usage", P{"command": r.what})
		return store.User{}, false
	}
	u, err := b.resolveUser(ref)
	if errors.Is(err, errNoSuchUser) {
		r.reply("admin.user_not_found", P{"who": truncate(ref, 64)})
		return store.User{}, false
	}
	if err != nil {
		r.log.Error("look up user", "ref", ref, "err", err)
		r.failed(err)
		return store.User{}, false
	}
	return u, true
}

func userName(u store.User) string {
	return strings.TrimSpace(u.FirstName + " " + u.LastName)
}

// tellUser queues catalog message key for every Telegram account of u, in
// each account's language, once per update; {window} and {calcs} (u's limit)
// are filled in.
func (b *Bot) tellUser(r *request, u store.User, key string) {
	accs, err := b.st.AccountsOfUser(u.ID)
	if err != nil {
		r.log.Warn("accounts of user", "user", u.ID, "err", err)
		return
	}
	for _, a := range accs {
		lang := b.lang
		if l := SupportedLanguage(a.LanguageCode); l != "" {
			lang = l
		}
		p := P{"window": FormatWindow(lang, b.window()), "calcs": CountCalcs(lang, u.Limit)}
		k := fmt.Sprintf("update/%d/tell/%d/%s", r.update, a.TelegramID, key)
		if err := b.queue(k, store.OutMsg{ChatID: a.TelegramID, Kind: key, Params: map[string]string{paramText: tr(lang, key, p)}}); err != nil {
			r.log.Error("queue message to user", "user", u.ID, "err", err)
		}
	}
}

// refusal is an admin command's answer when it changes nothing: catalog key
// and parameters ({id} and {name} of the user are filled in).
type refusal struct {
	key string
	p   P
}

func (e *refusal) Error() string { return "refused: " + e.key }

// changeUser applies fn to the user named by ref with an audit event, and
// returns the result. When fn returns a *refusal nothing changes: it is the
// answer, and ok is false.
func (b *Bot) changeUser(r *request, ref, action string, fn func(*store.User) error) (store.User, bool) {
	u, ok := b.target(r, ref)
	if !ok {
		return u, false
	}
	u, err := b.st.UpdateUser(u.ID, func(tx *store.Tx, u *store.User) error {
		if err := fn(u); err != nil {
			return err
		}
		_, err := tx.AddEvent(store.Event{Actor: r.from.ID, Action: action, Subject: u.Subject(),
			Detail: fmt.Sprintf("limit %d approved %t blocked %t org %q name %q", u.Limit, u.Approved, u.Blocked, u.Org, userName(*u))})
		return err
	})
	var ref2 *refusal
	if errors.As(err, &ref2) {
		p := P{"id": u.ID, "name": userName(u)}
		for k, v := range ref2.p {
			p[k] = v
		}
		r.reply(ref2.key, p)
		return u, false
	}
	if err != nil {
		r.log.Error("update user", "user", u.ID, "err", err)
		r.failed(err)
		return u, false
	}
	r.log.Info("user changed", "user", u.ID, "action", action)
	return u, true
}

// cmdApprove: /approve U. The user gets the approved quota. An approved user
// is left as is. When the user has not given their name or organization the
// admin is told what is missing and how to set it (approved users can no
// longer change them with /upd).
func (b *Bot) cmdApprove(r *request) error {
	u, ok := b.changeUser(r, firstWord(r.payload()), actionApprove, func(u *store.User) error {
		if u.Approved {
			return &refusal{key: "approve.already"}
		}
		u.Approved = true
		if u.Limit < b.opts.Quota.Approved {
			u.Limit = b.opts.Quota.Approved
		}
		return nil
	})
	if !ok {
		return nil
	}
	r.reply("approve.done", P{"id": u.ID, "name": userName(u), "calcs": CountCalcs(r.lang, u.Limit), "window": FormatWindow(r.lang, b.window())})
	var missing []string
	if u.FirstName == "" || u.LastName == "" {
		missing = append(missing, tr(r.lang, "approve.missing_name", nil))
	}
	if u.Org == "" {
		missing = append(missing, tr(r.lang, "approve.missing_org", nil))
	}
	if len(missing) > 0 {
		r.reply("approve.missing", P{"id": u.ID, "missing": HTML(strings.Join(missing, tr(r.lang, "approve.missing_and", nil)))})
	}
	b.tellUser(r, u, "approve.notify")
	b.toLogChat(slog.LevelInfo, r.logKey("approve"), "log.approve", P{"admin": r.who(), "id": u.ID, "name": userName(u)})
	return nil
}

// cmdBlock: /block U. Admins (the sender included) cannot be blocked: their
// rights come from bot.admins.
func (b *Bot) cmdBlock(r *request) error {
	t, ok := b.target(r, firstWord(r.payload()))
	if !ok {
		return nil
	}
	switch {
	case t.ID == r.user.ID:
		r.reply("block.self", nil)
		return nil
	case b.isAdminUser(t.ID):
		r.reply("block.admin", P{"id": t.ID, "name": userName(t)})
		return nil
	}
	u, ok := b.changeUser(r, fmt.Sprint(t.ID), actionBlock, func(u *store.User) error {
		switch {
		case u.Blocked:
			return &refusal{key: "block.already"}
		}
		u.Blocked = true
		return nil
	})
	if !ok {
		return nil
	}
	r.reply("block.done", P{"id": u.ID, "name": userName(u)})
	b.tellUser(r, u, "block.notify")
	b.toLogChat(slog.LevelInfo, r.logKey("block"), "log.block", P{"admin": r.who(), "id": u.ID, "name": userName(u)})
	return nil
}

// cmdUnblock: /unblock U.
func (b *Bot) cmdUnblock(r *request) error {
	u, ok := b.changeUser(r, firstWord(r.payload()), actionUnblock, func(u *store.User) error {
		if !u.Blocked {
			return &refusal{key: "unblock.not_blocked"}
		}
		u.Blocked = false
		return nil
	})
	if !ok {
		return nil
	}
	r.reply("unblock.done", P{"id": u.ID, "name": userName(u)})
	b.tellUser(r, u, "unblock.notify")
	b.toLogChat(slog.LevelInfo, r.logKey("unblock"), "log.unblock", P{"admin": r.who(), "id": u.ID, "name": userName(u)})
	return nil
}

// maxLimit is the largest limit /alter_limit sets: more calculations in one
// window than any group runs, so a larger number is a typing mistake.
const maxLimit = 10_000

// cmdAlterLimit: /alter_limit U N.
func (b *Bot) cmdAlterLimit(r *request) error {
	f := strings.Fields(r.payload())
	if len(f) != 2 {
		r.reply("limit.usage", nil)
		return nil
	}
	n, err := strconv.Atoi(f[1])
	switch {
	case err != nil && strings.HasPrefix(f[1], "-") && isDigits(f[1][1:]), err == nil && n < 0:
		r.reply("limit.negative", P{"value": truncate(f[1], 30)})
		return nil
	case err != nil && isDigits(f[1]), err == nil && n > maxLimit:
		r.reply("limit.too_big", P{"value": truncate(f[1], 30), "max": maxLimit})
		return nil
	case err != nil:
		r.reply("limit.not_number", P{"value": truncate(f[1], 30)})
		return nil
	}
	u, ok := b.changeUser(r, f[0], actionLimit, func(u *store.User) error { u.Limit = n; return nil })
	if !ok {
		return nil
	}
	r.reply("limit.done", P{"id": u.ID, "name": userName(u), "calcs": CountCalcs(r.lang, u.Limit), "window": FormatWindow(r.lang, b.window())})
	b.tellUser(r, u, "limit.notify")
	b.toLogChat(slog.LevelInfo, r.logKey("limit"), "log.limit", P{"admin": r.who(), "id": u.ID, "name": userName(u), "limit": u.Limit})
	return nil
}

// cmdStatusOf: /status U.
func (b *Bot) cmdStatusOf(r *request) error {
	u, ok := b.target(r, firstWord(r.payload()))
	if !ok {
		return nil
	}
	r.send(b.statusText(r.lang, u, 0))
	return nil
}

// cmdList: /list [all]: users with their limit and use in the window, most
// active first; blocked users only with "all".
func (b *Bot) cmdList(r *request) error {
	all := strings.EqualFold(firstWord(r.payload()), "all")
	users, _, err := b.st.Usage(b.now().Add(-b.window()))
	if err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	lines := []string{tr(r.lang, "list.header", P{"last": FormatLastWindow(r.lang, b.window())})}
	for _, uu := range users {
		if uu.User.Blocked && !all {
			continue
		}
		lines = append(lines, b.userLine(r.lang, uu.User, uu.Count))
	}
	if len(lines) == 1 {
		r.reply("list.none", nil)
		return nil
	}
	r.send(strings.Join(lines, "\n"))
	return nil
}

func (b *Bot) userLine(lang string, u store.User, used int) string {
	var flags []string
	if u.Approved {
		flags = append(flags, tr(lang, "list.flag_approved", nil))
	}
	if u.Blocked {
		flags = append(flags, tr(lang, "list.flag_blocked", nil))
	}
	name := userName(u)
	if accs, _ := b.st.AccountsOfUser(u.ID); len(accs) > 0 {
		if name == "" {
			name = accs[0].DisplayName
		}
		if accs[0].Username != "" {
			name = strings.TrimSpace(name + " @" + accs[0].Username)
		}
	}
	return tr(lang, "list.line", P{"id": u.ID, "name": name, "org": b.orgName(u.Org, lang), "used": used, "limit": u.Limit,
		"flags": strings.Join(flags, " ")})
}

// cmdSearch: /search last, first, org (empty parts ignored).
func (b *Bot) cmdSearch(r *request) error {
	parts := strings.Split(r.payload(), ",")
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	if strings.TrimSpace(strings.Join(parts, "")) == "" || len(parts) > 3 {
		r.reply("search.usage", nil)
		return nil
	}
	users, err := b.st.SearchUsers(parts[0], parts[1], parts[2])
	if err != nil {
		return fmt.Errorf("search users: %w", err)
	}
	if len(users) == 0 {
		r.reply("search.none", nil)
		return nil
	}
	since := b.now().Add(-b.window())
	lines := []string{tr(r.lang, "search.header", nil)}
	for i, u := range users {
		if i == 50 {
			lines = append(lines, "…")
			break
		}
		used, _ := b.st.CountCalcsSince(u.ID, since)
		lines = append(lines, b.userLine(r.lang, u, used))
	}
	r.send(strings.Join(lines, "\n"))
	return nil
}

// isDigits tells whether s is one or more ASCII digits.
func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// isAdminUser tells whether one of the user's Telegram accounts is in bot.admins.
func (b *Bot) isAdminUser(id uint64) bool {
	accs, _ := b.st.AccountsOfUser(id)
	for _, a := range accs {
		if b.admins[a.TelegramID] {
			return true
		}
	}
	return false
}

func firstWord(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}
