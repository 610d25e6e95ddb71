package bot

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"hpcbot/plugins"
	"hpcbot/store"
)

// cmdHelp answers /start and /help: what the bot does, every cluster with its
// programs, and the commands (the admin's too, for an admin). An unregistered
// sender in a private chat is also told how to get access; both at most once
// per refuseEvery (mayRefuse).
func (b *Bot) cmdHelp(r *request) error {
	if r.private() && !r.known && !r.admin {
		say := b.mayRefuse(r)
		if say {
			r.send(b.helpText(r.lang, false))
		}
		b.refuseUnregistered(r, say)
		return nil
	}
	if !r.private() && !b.mayRefuse(r) {
		return nil // in a group, once per refuseEvery for one sender (see needUser)
	}
	r.send(b.helpText(r.lang, r.admin))
	return nil
}

// readableArgList is a program's allowed arguments for /help as a person
// reads them (readableArgs), each as code, or "none".
func (b *Bot) readableArgList(lang string, allowed []string) HTML {
	args, more := readableArgs(allowed)
	if len(args) == 0 && !more {
		return HTML(tr(lang, "help.none", nil))
	}
	var parts []string
	for _, a := range args {
		parts = append(parts, "<code>"+Escape(a)+"</code>")
	}
	text := strings.Join(parts, ", ")
	switch {
	case more && text == "":
		text = tr(lang, "help.args_other", nil)
	case more:
		text += " " + tr(lang, "help.args_more", nil)
	}
	return HTML(text)
}

func (b *Bot) helpText(lang string, admin bool) string {
	var sb strings.Builder
	sb.WriteString(tr(lang, "help.intro", nil))
	clusters := b.calcs.Clusters()
	if len(clusters) == 0 {
		sb.WriteString("\n\n" + tr(lang, "help.no_clusters", nil))
	}
	none := tr(lang, "help.none", nil)
	list := func(xs []string) string {
		if len(xs) == 0 {
			return none
		}
		return strings.Join(xs, " ")
	}
	for _, c := range clusters {
		sb.WriteString("\n\n")
		if c.Usable {
			sb.WriteString(tr(lang, "help.cluster", P{"cluster": c.Label, "scheduler": c.Scheduler}))
		} else {
			sb.WriteString(tr(lang, "help.cluster_unusable", P{"cluster": c.Label, "scheduler": c.Scheduler}))
		}
		for _, p := range c.Programs {
			desc := p.Description
			if desc != "" {
				desc = "— " + desc
			}
			sb.WriteString("\n" + tr(lang, "help.program", P{
				"program": p.Program, "description": desc, "extensions": list(p.Associations),
				"example": exampleCaption(p.Program, p.DefaultArgs), "args": b.readableArgList(lang, p.AllowedArgs),
			}))
		}
	}
	sb.WriteString("\n\n" + tr(lang, "help.user_commands", nil))
	if admin {
		sb.WriteString("\n\n" + tr(lang, "help.admin_commands", nil))
	}
	return sb.String()
}

// cmdAccess registers the sender of /access in an allowed group with the new
// users' quota, and tells them to continue in private. In any other group it
// registers nobody (refuseAccess).
func (b *Bot) cmdAccess(r *request) error {
	name := r.from.FirstName
	if r.private() {
		if !b.needUser(r) {
			return nil
		}
		r.reply("access.already", P{"name": name})
		return nil
	}
	if b.groupState(r.chat.ID) != store.GroupAllowed {
		b.refuseAccess(r)
		return nil
	}
	if r.known {
		if r.user.Blocked {
			r.reply("auth.blocked", P{"admin": b.adminContact(r.lang)})
			return nil
		}
		r.reply("access.already", P{"name": name})
		return nil
	}
	if r.admin {
		if err := b.registerAdmin(r); err != nil {
			return fmt.Errorf("register admin: %w", err)
		}
		r.reply("access.granted", P{"name": name, "calcs": CountCalcs(r.lang, r.user.Limit), "window": FormatWindow(r.lang, b.window())})
		return nil
	}
	u, created, err := b.st.RegisterUser(accountOf(r.from), b.opts.Quota.NewUser)
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	if !created {
		r.reply("access.already", P{"name": name})
		return nil
	}
	r.log.Info("user registered", "user", u.ID, "chat", r.chat.ID)
	r.reply("access.granted", P{"name": name, "calcs": CountCalcs(r.lang, u.Limit), "window": FormatWindow(r.lang, b.window())})
	b.toLogChat(slog.LevelInfo, r.logKey("new_user"), "log.new_user", P{"id": u.ID, "who": r.who(), "chat": describeChat(r.chat)})
	return nil
}

// refuseUnknown runs the unregistered-sender refusal.
func (b *Bot) refuseUnknown(r *request) error {
	b.needUser(r)
	return nil
}

func (b *Bot) window() time.Duration { return time.Duration(b.opts.Quota.Window) }

// cmdStatus shows the sender's own data; with an argument it is the admin's
// /status U.
func (b *Bot) cmdStatus(r *request) error {
	if r.payload() != "" {
		return b.admin(b.cmdStatusOf)(r)
	}
	if !b.needKnown(r) {
		return nil
	}
	r.send(b.statusText(r.lang, r.user, r.from.ID))
	return nil
}

// needKnown is needUser for the commands a blocked user may still use (they
// only read).
func (b *Bot) needKnown(r *request) bool {
	if r.known && r.user.Blocked && r.private() {
		return true
	}
	return b.needUser(r)
}

func (b *Bot) statusText(lang string, u store.User, telegramID int64) string {
	used, err := b.st.CountCalcsSince(u.ID, b.now().Add(-b.window()))
	if err != nil {
		b.log.Warn("count calculations", "user", u.ID, "err", err)
	}
	name := strings.TrimSpace(u.FirstName + " " + u.LastName)
	if name == "" {
		name = tr(lang, "status.no_name", nil)
	}
	status := "status.new"
	switch {
	case u.Blocked:
		status = "status.blocked"
	case u.Approved:
		status = "status.approved"
	}
	tg := []string{}
	accs, _ := b.st.AccountsOfUser(u.ID)
	for _, a := range accs {
		s := strconv.FormatInt(a.TelegramID, 10)
		if a.Username != "" {
			s = "@" + a.Username + " " + s
		}
		tg = append(tg, s)
	}
	if len(tg) == 0 && telegramID != 0 {
		tg = append(tg, strconv.FormatInt(telegramID, 10))
	}
	return tr(lang, "status.user", P{
		"id": u.ID, "name": name, "org": b.orgName(u.Org, lang), "status": tr(lang, status, nil),
		"used": used, "limit": u.Limit, "last": FormatLastWindow(lang, b.window()), "telegram": strings.Join(tg, ", "),
	})
}

// onOther answers anything the bot has no handler for with a hint to /help
// (unregistered private senders hear how to get access instead). In groups it
// answers only messages that look like commands to it.
func (b *Bot) onOther(r *request) error {
	if !r.private() {
		if r.msg != nil && strings.HasPrefix(r.msg.Text, "/") {
			r.refuse("hint.help", nil)
		}
		return nil
	}
	if !r.known && !r.admin {
		return b.refuseUnknown(r)
	}
	r.reply("hint.help", nil)
	return nil
}

// refusalText is the user's message for a runner's refusal.
func refusalText(lang string, ref *plugins.Refusal) string {
	key := "refuse." + ref.Code
	if _, ok := catalogs[Languages[0]][key]; !ok {
		key = "refuse.other"
	}
	detail := ref.Detail
	if detail == "" {
		detail = ref.Code
	}
	return tr(lang, key, P{"detail": truncate(detail, 100), "line": ref.Line, "limit": truncate(ref.Limit, 40)})
}
