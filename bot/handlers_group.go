package bot

import (
	"context"
	"fmt"
	"log/slog"

	tele "gopkg.in/telebot.v3"
)

// onMembership handles my_chat_member: the bot's own membership changed.
//
//   - In a group: added by an admin, the log chat is told; added by anyone
//     else, the group hears that only the admin may add the bot, the bot
//     leaves, and the log chat is told; removed, the log chat is told.
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
	switch {
	case !was && now && r.admin:
		r.log.Info("added to a group", "chat", r.chat.ID)
		b.toLogChat(slog.LevelInfo, r.logKey("added"), "log.group_added", P{"who": r.who(), "chat": describeChat(r.chat)})
	case !was && now:
		r.log.Warn("added to a group by a non-admin; leaving", "chat", r.chat.ID)
		r.reply("group.only_admin", P{"admin": b.adminContact(r.lang)})
		if err := b.leave(r.ctx, r.chat.ID); err != nil {
			r.log.Error("leave chat", "chat", r.chat.ID, "err", err)
		}
		b.toLogChat(slog.LevelWarn, r.logKey("refused"), "log.group_refused", P{"who": r.who(), "chat": describeChat(r.chat)})
	case was && !now:
		r.log.Info("removed from a group", "chat", r.chat.ID)
		b.toLogChat(slog.LevelWarn, r.logKey("removed"), "log.group_removed", P{"who": r.who(), "chat": describeChat(r.chat)})
	}
	return nil
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
	done := make(chan error, 1)
	go func() { done <- b.tb.Leave(&tele.Chat{ID: chatID}) }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("leave chat %d: %s", chatID, b.redact(err.Error()))
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// onMigration follows a group that became a supergroup: when it is the log
// chat, the new id is stored and used from now on, and the admins are told to
// update the configuration.
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
	return nil
}
