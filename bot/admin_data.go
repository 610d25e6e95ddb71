package bot

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"

	"hpcbot/store"
)

// Admin commands that correct users' data and keep the organizations.

const (
	actionUserName = "user.name"
	actionUserOrg  = "user.org"
	actionOrgAdd   = "org.add"
)

// orgLabelRx is a label /org add accepts: the same characters as a file name's
// stem, so that it can be typed in /user U org LABEL.
var orgLabelRx = regexp.MustCompile(`^[\p{L}\p{N}][\p{L}\p{N}._-]{0,39}$`)

// cmdUser: /user U name First Last, /user U org LABEL. The admin corrects a
// user's data (approved users can no longer change it themselves with /upd),
// their own included.
func (b *Bot) cmdUser(r *request) error {
	f := strings.Fields(r.payload())
	if len(f) < 3 {
		r.reply("user.usage", nil)
		return nil
	}
	switch strings.ToLower(f[1]) {
	case "name":
		if len(f) != 4 {
			r.reply("user.usage", nil)
			return nil
		}
		first, last := truncate(f[2], 64), truncate(f[3], 64)
		u, ok := b.changeUser(r, f[0], actionUserName, func(u *store.User) error {
			u.FirstName, u.LastName = first, last
			return nil
		})
		if !ok {
			return nil
		}
		r.reply("user.name_done", P{"id": u.ID, "name": userName(u)})
		b.toLogChat(slog.LevelInfo, r.logKey("user"), "log.user_name", P{"admin": r.who(), "id": u.ID, "name": userName(u)})
	case "org":
		if len(f) != 3 {
			r.reply("user.usage", nil)
			return nil
		}
		org, err := b.st.Organization(f[2])
		if errors.Is(err, store.ErrNotFound) {
			r.reply("user.org_unknown", P{"label": truncate(f[2], 40)})
			return nil
		}
		if err != nil {
			return fmt.Errorf("read organization: %w", err)
		}
		u, ok := b.changeUser(r, f[0], actionUserOrg, func(u *store.User) error {
			u.Org = org.Label
			return nil
		})
		if !ok {
			return nil
		}
		r.reply("user.org_done", P{"id": u.ID, "name": userName(u), "org": b.orgName(u.Org, r.lang)})
		b.toLogChat(slog.LevelInfo, r.logKey("user"), "log.user_org", P{"admin": r.who(), "id": u.ID, "name": userName(u), "org": b.orgName(u.Org, b.lang)})
	default:
		r.reply("user.usage", nil)
	}
	return nil
}

// cmdOrg: /org list, /org add LABEL Name [PARENT]. The last word of the name
// is taken for the parent when it is the label of a stored organization.
func (b *Bot) cmdOrg(r *request) error {
	f := strings.Fields(r.payload())
	if len(f) == 0 {
		r.reply("org.usage", nil)
		return nil
	}
	switch strings.ToLower(f[0]) {
	case "list":
		orgs, err := b.st.Organizations()
		if err != nil {
			return fmt.Errorf("list organizations: %w", err)
		}
		if len(orgs) == 0 {
			r.reply("org.none", nil)
			return nil
		}
		lines := []string{tr(r.lang, "org.header", nil)}
		for _, o := range orgs {
			lines = append(lines, tr(r.lang, "org.line", P{"label": o.Label, "name": o.Name, "parent": b.orgParent(r.lang, o)}))
		}
		r.send(strings.Join(lines, "\n"))
	case "add":
		if len(f) < 3 {
			r.reply("org.usage", nil)
			return nil
		}
		label, words := f[1], f[2:]
		if !orgLabelRx.MatchString(label) {
			r.reply("org.bad_label", P{"label": truncate(label, 40)})
			return nil
		}
		if o, err := b.st.Organization(label); err == nil {
			r.reply("org.exists", P{"label": label, "name": o.Name})
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("read organization: %w", err)
		}
		org := store.Organization{Label: label}
		if len(words) > 1 {
			if _, err := b.st.Organization(words[len(words)-1]); err == nil {
				org.Parent, words = words[len(words)-1], words[:len(words)-1]
			}
		}
		org.Name = truncate(strings.Join(words, " "), 200)
		if err := b.st.UpsertOrganizations([]store.Organization{org}); err != nil {
			return fmt.Errorf("add organization: %w", err)
		}
		if _, err := b.st.AddEvent(store.Event{Actor: r.from.ID, Action: actionOrgAdd, Subject: "org/" + org.Label,
			Detail: fmt.Sprintf("%s, parent %q", org.Name, org.Parent)}); err != nil {
			r.log.Warn("audit event", "err", err)
		}
		r.log.Info("organization added", "org", org.Label)
		r.reply("org.added", P{"label": org.Label, "name": org.Name, "parent": b.orgParent(r.lang, org)})
		b.toLogChat(slog.LevelInfo, r.logKey("org"), "log.org_add", P{"admin": r.who(), "label": org.Label, "name": org.Name})
	default:
		r.reply("org.usage", nil)
	}
	return nil
}

// orgParent is " (part of PARENT)" for an organization with a parent.
func (b *Bot) orgParent(lang string, o store.Organization) HTML {
	if o.Parent == "" {
		return ""
	}
	return HTML(tr(lang, "org.parent", P{"parent": b.orgName(o.Parent, lang)}))
}

// jobsAll answers /jobs all for an admin: everyone's active calculations.
func (b *Bot) jobsAll(r *request) error {
	var active []store.State
	for _, s := range store.States {
		if s.Active() {
			active = append(active, s)
		}
	}
	calcs, err := b.st.CalcsByState(active...)
	if err != nil {
		return fmt.Errorf("active calculations: %w", err)
	}
	if len(calcs) == 0 {
		r.reply("jobs.all_none", nil)
		return nil
	}
	lines := []string{tr(r.lang, "jobs.all_header", P{"count": len(calcs)})}
	names := map[uint64]string{}
	for _, c := range calcs {
		who, ok := names[c.UserID]
		if !ok {
			who = fmt.Sprintf("#%d", c.UserID)
			if u, err := b.st.User(c.UserID); err == nil && userName(u) != "" {
				who += " " + userName(u)
			}
			if acc, err := b.st.AccountByTelegramID(c.TelegramID); err == nil && acc.Username != "" {
				who += " @" + acc.Username
			}
			names[c.UserID] = who
		}
		lines = append(lines, b.jobLine(r.lang, c)+tr(r.lang, "jobs.owner", P{"who": who}))
	}
	r.send(strings.Join(lines, "\n"))
	return nil
}
