package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"

	tele "gopkg.in/telebot.v3"

	"hpcbot/store"
)

// onMembership handles my_chat_member: the bot's own membership changed.
//
//   - In a group: added by an admin, the group becomes an allowed group
//     (/access registers users there) and the log chat is told. Added by
//     anyone else to a group that is not allowed, the group is marked refused
//     first (what it already sent is then ignored), hears that only the admin
//     may add the bot, the bot leaves, and the log chat is told. Removed from
//     a group an admin allowed, the group leaves the list: the permission
//     was "an admin put the bot here", and whoever adds it back, perhaps after
//     the group changed hands, must be an admin again (bot.groups is the
//     operator's own list and stays). The bot's own leaving is not news.
//   - In a private chat: the user blocked (or unblocked) the bot; the log chat
//     is told.
func (b *Bot) onMembership(r *request) error {
	m := r.c.Update().MyChatMember
	if m == nil || m.NewChatMember == nil {
		return nil
	}
	was, now := memberIn(m.OldChatMember), memberIn(m.NewChatMember)
	if r.chat != nil && r.chat.Type == tele.ChatPrivate {
		switch {
		case was && !now:
			b.toLogChat(slog.LevelInfo, r.logKey("blocked"), "log.bot_blocked", P{"who": r.who()})
		case !was && now:
			b.toLogChat(slog.LevelInfo, r.logKey("unblocked"), "log.bot_unblocked", P{"who": r.who()})
		}
		return nil
	}
	if r.chat == nil {
		return nil
	}
	id := r.chat.ID
	switch {
	case !was && now && r.admin:
		if _, err := b.st.PutGroup(store.Group{ChatID: id, Title: r.chat.Title, State: store.GroupAllowed, By: r.from.ID, ByName: r.who()}); err != nil {
			return fmt.Errorf("allow group %d: %w", id, err)
		}
		r.log.Info("added to a group by an admin; /access works there", "chat", id)
		b.toLogChat(slog.LevelInfo, r.logKey("added"), "log.group_added", P{"who": r.who(), "chat": describeChat(r.chat)})
	case !was && now && b.groupState(id) == store.GroupAllowed:
		r.log.Info("added to an allowed group", "chat", id)
		b.toLogChat(slog.LevelInfo, r.logKey("added"), "log.group_added", P{"who": r.who(), "chat": describeChat(r.chat)})
	case !was && now:
		r.log.Warn("added to a group by a non-admin; leaving", "chat", id)
		var by int64
		if r.from != nil {
			by = r.from.ID
		}
		if _, err := b.st.PutGroup(store.Group{ChatID: id, Title: r.chat.Title, State: store.GroupRefused, By: by, ByName: r.who()}); err != nil {
			r.log.Error("mark group refused", "chat", id, "err", err) // still leave: /access is refused there anyway
		}
		r.reply("group.only_admin", P{"admin": b.adminContact(r.lang)})
		if err := b.leave(r.ctx, id); err != nil {
			r.log.Error("leave chat", "chat", id, "err", err)
		}
		b.toLogChat(slog.LevelWarn, r.logKey("refused"), "log.group_refused", P{"who": r.who(), "chat": describeChat(r.chat)})
	case was && !now && r.from != nil && b.tb != nil && b.tb.Me != nil && r.from.ID == b.tb.Me.ID:
		r.log.Debug("left a group", "chat", id)
	case was && !now:
		r.log.Info("removed from a group", "chat", id)
		key := "log.group_removed"
		if g, err := b.st.Group(id); err == nil && g.State == store.GroupAllowed {
			if _, err := b.st.DeleteGroup(id, r.from.ID); err != nil {
				return fmt.Errorf("forget group %d: %w", id, err)
			}
			key = "log.group_removed_allowed"
		}
		b.toLogChat(slog.LevelWarn, r.logKey("removed"), key, P{"who": r.who(), "chat": describeChat(r.chat)})
	}
	return nil
}

// groupState is what the bot makes of a group: GroupAllowed when it is in
// bot.groups or an admin allowed it, GroupRefused when the bot refused it,
// "" when it knows nothing of it (a group it was in before groups had to be
// allowed, or one that removed it): /access is refused there, and the log
// chat says how to allow it. A store failure counts as "" (not allowed).
func (b *Bot) groupState(chatID int64) store.GroupState {
	if b.groups[chatID] {
		return store.GroupAllowed
	}
	g, err := b.st.Group(chatID)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			b.log.Error("read group", "chat", chatID, "err", err)
		}
		return ""
	}
	return g.State
}

// refuseAccess answers /access in a group that is not allowed: nobody is
// registered; the sender is told whom to ask (once per refuseEvery, like every
// refusal), and the log chat (once per refusedLogEvery per sender) how to allow
// the group.
func (b *Bot) refuseAccess(r *request) {
	if r.refuse("access.group_not_allowed", P{"admin": b.adminContact(r.lang)}) {
		r.log.Warn("/access in a group that is not allowed; refused", "chat", r.chat.ID)
	}
	if r.from != nil && b.badGroup.allow(r.from.ID, b.now()) {
		b.toLogChat(slog.LevelWarn, r.logKey("access_refused"), "log.access_refused", P{"who": r.who(), "chat": describeChat(r.chat), "id": r.chat.ID})
	}
}

// memberIn reports whether a chat member status means "in the chat".
func memberIn(m *tele.ChatMember) bool {
	if m == nil {
		return false
	}
	switch m.Role {
	case tele.Creator, tele.Administrator, tele.Member:
		return true
	case tele.Restricted:
		return m.Member
	}
	return false
}

// leave is leaveChat (https://core.telegram.org/bots/api#leavechat).
func (b *Bot) leave(ctx context.Context, chatID int64) error {
	if err := b.api.LeaveChat(ctx, chatID); err != nil {
		return fmt.Errorf("leave chat %d: %w", chatID, err)
	}
	return nil
}

// onMigration follows a group that became a supergroup: when it is the log
// chat, the new id is stored and used from now on, and the admins are told to
// update the configuration; an allowed (or refused) group stays so under its
// new id.
func (b *Bot) onMigration(r *request) error {
	from, to := r.msg.MigrateFrom, r.msg.MigrateTo
	if from == 0 {
		from = r.chat.ID
	}
	if to == 0 {
		return nil
	}
	r.log.Info("group migrated to a supergroup", "chat", from, "new_chat", to)
	b.moveLogChat(from, to)
	b.toLogChat(slog.LevelWarn, r.logKey("migrated"), "log.migrated", P{"chat": describeChat(r.chat), "new": to})
	b.moveGroup(r, from, to)
	return nil
}

// moveGroup carries a group's record to its supergroup id. A group allowed by
// bot.groups gets a record under the new id (the configuration names the
// old one, which no longer works), and the log chat asks to update it.
// Updates from the supergroup that are handled before the migration message
// (another chat's queue) find it not allowed yet: /access there is refused
// with a message and can be sent again.
func (b *Bot) moveGroup(r *request, from, to int64) {
	g, err := b.st.MoveGroup(from, to)
	switch {
	case err == nil:
		r.log.Info("group record follows the supergroup", "chat", from, "new_chat", to, "state", g.State)
		return
	case !errors.Is(err, store.ErrNotFound):
		r.log.Error("move group record", "chat", from, "new_chat", to, "err", err)
		return
	case !b.groups[from]:
		return
	}
	if _, err := b.st.PutGroup(store.Group{ChatID: to, Title: r.chat.Title, State: store.GroupAllowed, From: from}); err != nil {
		r.log.Error("allow the supergroup of a configured group", "chat", from, "new_chat", to, "err", err)
		return
	}
	b.log.Warn("a group in bot.groups became a supergroup; it stays allowed: put its new id in bot.groups", "chat", from, "new_chat", to)
	b.toLogChat(slog.LevelWarn, r.logKey("group_migrated"), "log.group_migrated", P{"chat": describeChat(r.chat), "old": from, "new": to})
}

// cmdGroups: /groups lists the groups where /access registers users (and
// the last ones the bot refused); /groups add ID allows a group the bot is
// already in; /groups remove ID stops /access there and makes the bot leave.
func (b *Bot) cmdGroups(r *request) error {
	f := strings.Fields(r.payload())
	if len(f) == 0 {
		return b.listGroups(r)
	}
	var id int64
	if len(f) == 2 {
		id, _ = strconv.ParseInt(f[1], 10, 64)
	}
	switch {
	case id >= 0:
		r.reply("groups.usage", nil)
	case strings.EqualFold(f[0], "add"):
		return b.allowGroup(r, id)
	case strings.EqualFold(f[0], "remove"):
		return b.removeGroup(r, id)
	default:
		r.reply("groups.usage", nil)
	}
	return nil
}

// maxRefusedShown is how many refused groups /groups lists (the newest).
const maxRefusedShown = 10

func (b *Bot) listGroups(r *request) error {
	stored, err := b.st.Groups()
	if err != nil {
		return fmt.Errorf("list groups: %w", err)
	}
	var allowed, refused []string
	for _, id := range b.opts.Bot.Groups {
		allowed = append(allowed, tr(r.lang, "groups.line_config", P{"id": id}))
	}
	var refusedGroups []store.Group
	for _, g := range stored {
		switch {
		case b.groups[g.ChatID]:
		case g.State == store.GroupAllowed:
			line := tr(r.lang, "groups.line", P{"chat": describeChat(&tele.Chat{ID: g.ChatID, Title: g.Title}),
				"by": groupBy(g), "at": g.At.Local().Format(timeLayout)})
			if g.From != 0 {
				line += " " + tr(r.lang, "groups.was", P{"id": g.From})
			}
			allowed = append(allowed, line)
		case g.State == store.GroupRefused:
			refusedGroups = append(refusedGroups, g)
		}
	}
	sort.SliceStable(refusedGroups, func(i, j int) bool { return refusedGroups[i].At.After(refusedGroups[j].At) })
	for i, g := range refusedGroups {
		if i == maxRefusedShown {
			refused = append(refused, "…")
			break
		}
		refused = append(refused, tr(r.lang, "groups.line", P{"chat": describeChat(&tele.Chat{ID: g.ChatID, Title: g.Title}),
			"by": groupBy(g), "at": g.At.Local().Format(timeLayout)}))
	}
	var parts []string
	if len(allowed) == 0 {
		parts = append(parts, tr(r.lang, "groups.none", nil))
	} else {
		parts = append(parts, tr(r.lang, "groups.header", nil)+"\n"+strings.Join(allowed, "\n"))
	}
	if len(refused) > 0 {
		parts = append(parts, tr(r.lang, "groups.refused_header", nil)+"\n"+strings.Join(refused, "\n"))
	}
	parts = append(parts, tr(r.lang, "groups.footer", nil))
	r.send(strings.Join(parts, "\n\n"))
	return nil
}

// groupBy names who allowed or refused a group, for /groups.
func groupBy(g store.Group) string {
	switch {
	case g.ByName != "":
		return g.ByName
	case g.By != 0:
		return strconv.FormatInt(g.By, 10)
	}
	return "hpcbot"
}

// allowGroup: /groups add ID.
func (b *Bot) allowGroup(r *request, id int64) error {
	if b.groupState(id) == store.GroupAllowed {
		r.reply("groups.already", P{"id": id})
		return nil
	}
	g := store.Group{ChatID: id, State: store.GroupAllowed, By: r.from.ID, ByName: r.who()}
	if old, err := b.st.Group(id); err == nil {
		g.Title = old.Title
	}
	g, err := b.st.PutGroup(g)
	if err != nil {
		return fmt.Errorf("allow group %d: %w", id, err)
	}
	chat := describeChat(&tele.Chat{ID: id, Title: g.Title})
	r.log.Info("group allowed", "chat", id)
	r.reply("groups.added", P{"chat": chat})
	b.toLogChat(slog.LevelInfo, r.logKey("groups_add"), "log.groups_add", P{"admin": r.who(), "chat": chat})
	return nil
}

// removeGroup: /groups remove ID. The group is marked refused (what it has
// already sent is ignored) and the bot leaves it.
func (b *Bot) removeGroup(r *request, id int64) error {
	if b.groups[id] {
		r.reply("groups.in_config", P{"id": id})
		return nil
	}
	old, err := b.st.Group(id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && old.State != store.GroupAllowed) {
		r.reply("groups.not_found", P{"id": id})
		return nil
	}
	if err != nil {
		return fmt.Errorf("read group %d: %w", id, err)
	}
	if _, err := b.st.PutGroup(store.Group{ChatID: id, Title: old.Title, State: store.GroupRefused, By: r.from.ID, ByName: r.who()}); err != nil {
		return fmt.Errorf("remove group %d: %w", id, err)
	}
	chat := describeChat(&tele.Chat{ID: id, Title: old.Title})
	r.log.Info("group removed; leaving it", "chat", id)
	if err := b.leave(r.ctx, id); err != nil {
		r.log.Warn("leave chat", "chat", id, "err", err) // it may have removed the bot already
	}
	r.reply("groups.removed", P{"chat": chat})
	b.toLogChat(slog.LevelInfo, r.logKey("groups_remove"), "log.groups_remove", P{"admin": r.who(), "chat": chat})
	return nil
}
