package bot

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	tele "gopkg.in/telebot.v3"

	"hpcbot/plugins/shellquote"
	"hpcbot/store"
)

// identify loads the sender's user, refreshing the account's username,
// display name and language when Telegram reports new ones.
func (b *Bot) identify(r *request) error {
	if r.from == nil || r.from.IsBot {
		return nil
	}
	u, acc, err := b.st.UserByTelegramID(r.from.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	r.known, r.user, r.acc = true, u, acc
	r.log = r.log.With("user", u.ID)
	fresh := accountOf(r.from)
	fresh.UserID = u.ID
	if fresh.Username != acc.Username || fresh.DisplayName != acc.DisplayName || fresh.LanguageCode != acc.LanguageCode {
		if err := b.st.UpsertAccount(fresh); err != nil {
			r.log.Warn("refresh account", "err", err)
		} else {
			r.acc = fresh
		}
	}
	return nil
}

func accountOf(u *tele.User) store.TelegramAccount {
	return store.TelegramAccount{
		TelegramID:   u.ID,
		Username:     u.Username,
		DisplayName:  displayName(u),
		LanguageCode: u.LanguageCode,
	}
}

// displayName is the name a person gave Telegram, without the control and
// invisible format characters (bidi overrides, zero-width) that /upd refuses:
// a stranger cannot make a log chat line read as if someone else wrote it.
func displayName(u *tele.User) string {
	name := strings.Map(func(r rune) rune {
		if shellquote.Forbidden(r) {
			return -1
		}
		return r
	}, u.FirstName+" "+u.LastName)
	return strings.Join(strings.Fields(name), " ")
}

// logKey is an outbox key for a log chat line caused by this update: handling
// the same update again (after a crash) does not repeat it.
func (r *request) logKey(kind string) string {
	if r.update == 0 {
		return ""
	}
	return fmt.Sprintf("update/%d/log/%s", r.update, kind)
}

// needUser lets registered, unblocked senders through, in a private chat. An
// admin who is not registered yet is registered (approved) on the spot. The
// others are told why not; the log chat hears of unregistered senders.
func (b *Bot) needUser(r *request) bool {
	if !r.private() {
		// In a group, one sender is answered once per refuseEvery: a member
		// cannot bury the group's other replies under their own.
		r.refuse("hint.private", P{"command": r.what})
		return false
	}
	if !r.known && r.admin {
		if err := b.registerAdmin(r); err != nil {
			r.log.Error("register admin", "err", err)
			r.failed(err)
			return false
		}
	}
	if !r.known {
		b.refuseUnregistered(r, b.mayRefuse(r))
		return false
	}
	if r.user.Blocked {
		r.refuse("auth.blocked", P{"admin": b.adminContact(r.lang)})
		what := ""
		if r.msg != nil && r.msg.Document != nil {
			what = docAttempt(r.msg.Document.FileName, r.msg.Caption)
		}
		r.logRefusal(what, tr(b.lang, "auth.blocked", P{"admin": b.adminContact(b.lang)}))
		return false
	}
	return true
}

// refuseUnregistered tells an unregistered sender how to get access (when
// say: see mayRefuse), and the log chat who wrote (once per
// unregisteredLogEvery).
func (b *Bot) refuseUnregistered(r *request, say bool) {
	if say {
		var id int64
		if r.from != nil {
			id = r.from.ID
		}
		r.reply("auth.unregistered", P{"admin": b.adminContact(r.lang), "id": id})
	}
	text := ""
	switch {
	case r.cb != nil:
		text = r.cb.Data // the button they pressed
	case r.msg != nil:
		text = r.msg.Text
		if r.msg.Document != nil {
			text = r.msg.Document.FileName
		}
	}
	if b.quiet.allow(r.from.ID, b.now()) {
		b.toLogChat(slog.LevelWarn, r.logKey("unregistered"), "log.unregistered", P{"who": r.who(), "text": truncate(text, 200)})
	}
}

// registerAdmin registers an admin writing for the first time, approved with
// the approved quota.
func (b *Bot) registerAdmin(r *request) error {
	u, _, err := b.st.RegisterUser(accountOf(r.from), b.opts.Quota.Approved)
	if err != nil {
		return err
	}
	u, err = b.st.UpdateUser(u.ID, func(_ *store.Tx, u *store.User) error {
		u.Approved = true
		if u.FirstName == "" {
			u.FirstName, u.LastName = r.from.FirstName, r.from.LastName
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.known, r.user = true, u
	r.acc, _ = b.st.AccountByTelegramID(r.from.ID)
	return nil
}

// admin guards an admin command: a non-admin is refused (nothing changes) and
// the log chat hears of the attempt, once in a while per sender.
func (b *Bot) admin(h func(*request) error) func(*request) error {
	return func(r *request) error {
		if !r.admin {
			// The sender hears why once per refuseEvery (r.refuse), the log
			// chat once per refusedLogEvery.
			r.refuse("auth.not_admin", P{"command": r.what})
			if r.from != nil && b.notAdmin.allow(r.from.ID, b.now()) {
				b.toLogChat(slog.LevelWarn, r.logKey("unauthorized"), "log.unauthorized", P{"who": r.who(), "command": r.what})
			}
			return nil
		}
		if !r.private() {
			r.refuse("hint.private", P{"command": r.what})
			return nil
		}
		return h(r)
	}
}

// errNoSuchUser is returned by resolveUser when nobody matches.
var errNoSuchUser = errors.New("no such user")

// resolveUser finds the user an admin named: "#7" or "7" (the id /list shows)
// or "@username".
func (b *Bot) resolveUser(ref string) (store.User, error) {
	ref = strings.TrimSpace(ref)
	switch {
	case strings.HasPrefix(ref, "@"):
		acc, err := b.st.AccountByUsername(ref)
		if errors.Is(err, store.ErrNotFound) {
			return store.User{}, errNoSuchUser
		}
		if err != nil {
			return store.User{}, err
		}
		return b.st.User(acc.UserID)
	default:
		id, err := strconv.ParseUint(strings.TrimPrefix(ref, "#"), 10, 64)
		if err != nil || id == 0 {
			return store.User{}, errNoSuchUser
		}
		u, err := b.st.User(id)
		if errors.Is(err, store.ErrNotFound) {
			return store.User{}, errNoSuchUser
		}
		return u, err
	}
}
