package bot

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"hpcbot/plugins"
	"hpcbot/plugins/shellquote"
	"hpcbot/scheduler"
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

// jobsShown is how many calculations /jobs lists.
const jobsShown = 15

// cmdJobs lists the sender's recent calculations.
func (b *Bot) cmdJobs(r *request) error {
	if !b.needKnown(r) {
		return nil
	}
	if r.admin && strings.EqualFold(firstWord(r.payload()), "all") {
		return b.jobsAll(r)
	}
	calcs, err := b.st.CalcsOfUser(r.user.ID, time.Time{}, jobsShown)
	if err != nil {
		return fmt.Errorf("list calculations: %w", err)
	}
	if len(calcs) == 0 {
		r.reply("jobs.none", nil)
		return nil
	}
	lines := []string{tr(r.lang, "jobs.header", nil)}
	for _, c := range calcs {
		lines = append(lines, b.jobLine(r.lang, c))
	}
	r.send(strings.Join(lines, "\n"))
	return nil
}

func (b *Bot) jobLine(lang string, c store.Calculation) string {
	job := HTML("")
	if c.JobID != "" {
		job = HTML(tr(lang, "jobs.job", P{"job": c.JobID}))
	}
	state := c.State
	ended := HTML("")
	if outcome, at, ok := jobOutcome(c); ok {
		if c.State == store.StateRetrieved || c.State == store.StateDelivered || c.State == store.StateNotified {
			state = outcome // "succeeded" says more than "done"
		}
		ended = HTML(tr(lang, "jobs.ended", P{"at": at.Local().Format(timeLayout)}))
	}
	return tr(lang, "jobs.line", P{
		"id": c.ID, "file": c.InputName, "program": c.Program, "cluster": c.Cluster,
		"state": stateName(lang, state), "job": job, "created": c.Created.Local().Format(timeLayout), "ended": ended,
	})
}

// timeLayout is how /jobs shows times.
const timeLayout = "2006-01-02 15:04"

// jobOutcome is how and when the calculation's job ended (store's Outcome),
// or when it went to error.
func jobOutcome(c store.Calculation) (store.State, time.Time, bool) {
	if n := len(c.History); n > 0 && c.History[n-1].State == store.StateError {
		return store.StateError, c.History[n-1].At, true
	}
	return c.Outcome()
}

func stateName(lang string, s store.State) string { return tr(lang, "state."+string(s), nil) }

// cmdCancel stops a calculation: the sender's own, or anyone's for an admin.
func (b *Bot) cmdCancel(r *request) error {
	if !b.needKnown(r) {
		return nil
	}
	id, err := strconv.ParseUint(strings.TrimPrefix(r.payload(), "#"), 10, 64)
	if err != nil || id == 0 {
		r.reply("cancel.usage", nil)
		return nil
	}
	c, err := b.st.Calc(id)
	if err == nil && c.UserID != r.user.ID && !r.admin {
		r.refused("cancel.not_found", P{"id": id}, "") // someone else's
		return nil
	}
	if errors.Is(err, store.ErrNotFound) {
		r.reply("cancel.not_found", P{"id": id})
		return nil
	}
	if err != nil {
		return fmt.Errorf("read calc %d: %w", id, err)
	}
	err = b.calcs.Cancel(r.ctx, id)
	switch {
	case err == nil:
		r.log.Info("calculation cancelled", "calc", id)
		r.reply("cancel.ok", P{"id": id})
		if c.UserID != r.user.ID {
			b.tellCancelledBy(r, c)
		}
		b.toLogChat(slog.LevelInfo, r.logKey("cancel"), "log.cancel", P{"who": r.who(), "id": id})
	case errors.Is(err, scheduler.ErrFinished):
		r.reply("cancel.finished", P{"id": id})
	case errors.Is(err, store.ErrNotFound):
		r.reply("cancel.not_found", P{"id": id})
	default:
		r.log.Error("cancel", "calc", id, "err", err)
		r.reply("cancel.failed", P{"id": id})
		b.toLogChat(slog.LevelError, r.logKey("cancel_failed"), "log.failure", P{"what": fmt.Sprintf("/cancel %d", id), "error": b.redact(err.Error())})
	}
	return nil
}

// tellCancelledBy tells the owner of c, in their chat and language, that the
// admin of r stopped it (once per update).
func (b *Bot) tellCancelledBy(r *request, c store.Calculation) {
	if c.ChatID == 0 {
		return
	}
	lang := b.lang
	if acc, err := b.st.AccountByTelegramID(c.TelegramID); err == nil {
		if l := SupportedLanguage(acc.LanguageCode); l != "" {
			lang = l
		}
	}
	admin := strings.TrimSpace(r.from.FirstName + " " + r.from.LastName)
	if r.from.Username != "" {
		admin = strings.TrimSpace(admin + " @" + r.from.Username)
	}
	key := fmt.Sprintf("update/%d/cancelled_by/%d", r.update, c.ID)
	text := tr(lang, "cancel.by_admin", P{"id": c.ID, "file": c.InputName, "admin": admin})
	if err := b.queue(key, store.OutMsg{ChatID: c.ChatID, Kind: "cancel.by_admin", Params: map[string]string{paramText: text}}); err != nil {
		r.log.Error("queue message to the owner", "calc", c.ID, "err", err)
	}
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
