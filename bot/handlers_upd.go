// handlers_upd.go: /upd, a user's name and organization, and matching what they
// type against the organizations.

package bot

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"hpcbot/plugins/shellquote"
	"hpcbot/store"
)

// updFields is what /upd sets; nil fields are left alone.
type updFields struct {
	First, Last, Org *string
}

// updKeys maps the keys /upd understands (Russian and English, as users type
// them) to fields.
var updKeys = map[string]string{
	"имя": "first", "first name": "first", "firstname": "first", "first_name": "first", "name": "first",
	"фамилия": "last", "last name": "last", "lastname": "last", "last_name": "last", "surname": "last",
	"организация": "org", "organization": "org", "organisation": "org", "org": "org", "орг": "org",
}

// maxUpdValue caps a name or organization, in runes.
const maxUpdValue = 100

// parseUpd reads "/upd имя: X, фамилия: Y, организация: Z" (comma or newline
// separated; English keys too). ok is false when a part cannot be read (bad
// is the first such part) or nothing is set.
func parseUpd(s string) (f updFields, bad string, ok bool) {
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == ';' })
	for _, part := range parts {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, found := strings.Cut(part, ":")
		if !found {
			return f, part, false
		}
		key := strings.Join(strings.Fields(strings.ToLower(k)), " ")
		v = strings.Join(strings.Fields(v), " ")
		field, known := updKeys[key]
		if !known || v == "" || len([]rune(v)) > maxUpdValue || strings.ContainsFunc(v, shellquote.Forbidden) {
			return f, part, false
		}
		switch field {
		case "first":
			f.First = &v
		case "last":
			f.Last = &v
		case "org":
			f.Org = &v
		}
	}
	if f.First == nil && f.Last == nil && f.Org == nil {
		return f, strings.TrimSpace(s), false
	}
	return f, "", true
}

// cmdUpd sets the sender's name and organization.
func (b *Bot) cmdUpd(r *request) error {
	if !b.needUser(r) {
		return nil
	}
	arg := r.payload()
	if arg == "" {
		r.reply("upd.help", nil)
		return nil
	}
	if r.user.Approved {
		r.refused("upd.approved", P{"admin": b.adminContact(r.lang)}, "")
		return nil
	}
	f, bad, ok := parseUpd(arg)
	if !ok {
		r.reply("upd.bad_part", P{"part": truncate(bad, 100)})
		r.reply("upd.help", nil)
		return nil
	}
	var org store.Organization
	if f.Org != nil {
		o, cands, several, err := b.matchOrganization(*f.Org)
		if err != nil {
			return fmt.Errorf("find organization: %w", err)
		}
		if o == nil {
			key := "upd.org_none"
			if several {
				key = "upd.org_many"
			}
			text := tr(r.lang, key, P{"query": *f.Org})
			if len(cands) > 0 {
				text += "\n" + tr(r.lang, "upd.org_candidates", P{"list": orgList(cands)})
			}
			r.send(text)
			return nil
		}
		org = *o
	}
	u, err := b.st.UpdateUser(r.user.ID, func(tx *store.Tx, u *store.User) error {
		if u.Approved {
			return errApproved
		}
		if f.First != nil {
			u.FirstName = *f.First
		}
		if f.Last != nil {
			u.LastName = *f.Last
		}
		if f.Org != nil {
			u.Org = org.Label
		}
		_, err := tx.AddEvent(store.Event{Actor: r.from.ID, Action: "user.update", Subject: u.Subject(),
			Detail: fmt.Sprintf("%s %s, %s", u.FirstName, u.LastName, u.Org)})
		return err
	})
	if errors.Is(err, errApproved) {
		r.reply("upd.approved", P{"admin": b.adminContact(r.lang)})
		return nil
	}
	if err != nil {
		return fmt.Errorf("update user: %w", err)
	}
	orgName := b.orgName(u.Org, r.lang)
	r.reply("upd.done", P{"first": u.FirstName, "last": u.LastName, "org": orgName})
	b.toLogChat(slog.LevelInfo, r.logKey("upd"), "log.upd", P{"id": u.ID, "who": r.who(), "first": u.FirstName, "last": u.LastName, "org": b.orgName(u.Org, b.lang)})
	return nil
}

var errApproved = errors.New("user is approved")

// matchOrganization finds the organization a user named: one whose label, name
// or alias equals the query (case-insensitively), else the only one that
// contains it. Otherwise it returns up to 5 candidates and whether several
// matched: those containing the query, or, when none does, those containing
// one of its words.
func (b *Bot) matchOrganization(query string) (*store.Organization, []store.Organization, bool, error) {
	found, err := b.st.FindOrganizations(query)
	if err != nil {
		return nil, nil, false, err
	}
	q := strings.ToLower(strings.TrimSpace(query))
	var exact []store.Organization
	for _, o := range found {
		if strings.ToLower(o.Label) == q || strings.ToLower(o.Name) == q || (o.Alias != "" && strings.ToLower(o.Alias) == q) {
			exact = append(exact, o)
		}
	}
	switch {
	case len(exact) == 1:
		return &exact[0], nil, false, nil
	case len(exact) > 1:
		return nil, firstN(exact, 5), true, nil
	case len(found) == 1:
		return &found[0], nil, false, nil
	case len(found) > 1:
		return nil, firstN(found, 5), true, nil
	}
	seen := map[string]bool{}
	var cands []store.Organization
	for _, w := range strings.Fields(q) {
		if len([]rune(w)) < 3 {
			continue
		}
		more, err := b.st.FindOrganizations(w)
		if err != nil {
			return nil, nil, false, err
		}
		for _, o := range more {
			if !seen[o.Label] {
				seen[o.Label] = true
				cands = append(cands, o)
			}
		}
	}
	return nil, firstN(cands, 5), false, nil
}

func firstN(os []store.Organization, n int) []store.Organization {
	if len(os) > n {
		return os[:n]
	}
	return os
}

func orgList(os []store.Organization) string {
	var parts []string
	for _, o := range os {
		s := o.Name
		if o.Alias != "" && o.Alias != o.Name {
			s += " (" + o.Alias + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// orgName is the name of the organization with this label, for messages.
func (b *Bot) orgName(label, lang string) string {
	if label == "" {
		return tr(lang, "status.no_org", nil)
	}
	if o, err := b.st.Organization(label); err == nil && o.Name != "" {
		return o.Name
	}
	return label
}
