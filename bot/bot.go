package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	tele "gopkg.in/telebot.v3"

	"hpcbot/internal/backoff"
	"hpcbot/plugins"
	"hpcbot/scheduler"
	"hpcbot/store"
)

// Calculations is what the front end asks of the scheduler (*scheduler.Scheduler
// implements it).
//
//   - Route picks the cluster and runner for an input file and caption; when no
//     runner takes the file it returns a *plugins.Refusal (Code, Detail) to show
//     the user; any other error means the runners could not answer.
//   - Clusters describes every cluster and its programs, for /help.
//   - Accept makes a calculation of an input file: it chooses the folder, has
//     the bot download the file into it, creates the record (once per update)
//     and wakes the cluster; store.ErrQuotaExceeded or store.ErrBlocked
//     (wrapped) when the store refuses it.
//   - RunAgain makes a new calculation of an old one's input and caption (the
//     card's Run again button; ask withinQuota first), once per press;
//     scheduler.ErrInputGone when the input is no longer kept,
//     store.ErrNotFound for an unknown id, a *plugins.Refusal when no runner
//     takes it any more.
//   - Wake makes sure a calculation already created goes on (a redelivered update).
//   - Cancel stops a calculation: nil when cancelled or under way,
//     scheduler.ErrFinished (wrapped) when it has already ended,
//     store.ErrNotFound for an unknown id.
type Calculations interface {
	Route(ctx context.Context, fileName, caption string) (scheduler.Route, error)
	Clusters() []scheduler.ClusterInfo
	Accept(ctx context.Context, req scheduler.AcceptRequest) (store.Calculation, error)
	RunAgain(ctx context.Context, req scheduler.RunAgainRequest) (store.Calculation, error)
	Wake(calcID uint64)
	Cancel(ctx context.Context, calcID uint64) error
	// Tail returns the last lines of a calculation's job output (the card's
	// Log): scheduler.ErrNotOnCluster, ErrClusterUnreachable,
	// ErrTailNotSupported or ErrNoOutput (wrapped) when there are none to show.
	Tail(ctx context.Context, calcID uint64, lines int) (string, error)
	// Drain, Undrain and DrainState: a cluster's maintenance state (/drain,
	// /undrain); scheduler.ErrUnknownCluster (wrapped) for an unknown label.
	Drain(label, reason, by string) error
	Undrain(label string) error
	DrainState(label string) (scheduler.DrainState, error)
	// Health reports each cluster's health for /clusters.
	Health() ([]scheduler.ClusterHealth, error)
	// Redeliver tries the delivery of a calculation in delivery_failed again
	// (scheduler.ErrNotHeld for one in another state).
	Redeliver(ctx context.Context, calcID uint64) error
}

var _ Calculations = (*scheduler.Scheduler)(nil)

// Options is everything New needs besides the store and the logger.
type Options struct {
	Bot   Config
	Quota QuotaConfig
	// Language is the fallback language ("en" or "ru") for users whose Telegram
	// language the bot does not speak, and the language of the log chat.
	Language string
	// MaxFileSize is the largest input file accepted (max_file_size), in bytes.
	MaxFileSize int64
	// Client is the HTTP client for the Bot API (nil: a default with timeouts).
	Client *http.Client
	// PollTimeout is the long-poll timeout of getUpdates (0: 50 s).
	PollTimeout time.Duration
	// Secrets are every secret of the configuration (the main package's
	// Config.Secrets): the bot removes them, and the token, from its logs and
	// from every line it writes to the log chat.
	Secrets []string

	// sender tunes the sender (tests lift the pacing).
	sender SenderOptions
}

// publicDownloadLimit is what the public Bot API server lets a bot download
// (getFile, docs/FACTS.md#telegram-file-limits); a local server has no limit.
const publicDownloadLimit = 20 << 20

// unregisteredLogEvery is how often the log chat hears of one unregistered
// sender at most.
const unregisteredLogEvery = 10 * time.Minute

// refusedLogEvery is how often the log chat hears of one sender's refused
// attempts (admin commands, /access in a group that is not allowed) at most.
const refusedLogEvery = 10 * time.Minute

// refuseEvery is how often one sender is told at most that they may not do
// what they asked (unregistered, blocked, not an admin).
const refuseEvery = time.Minute

// Bot is the Telegram front end. Create it with New, hand it to the scheduler
// as its Notifier, then Run it.
type Bot struct {
	opts     Options
	st       *store.Store
	log      *slog.Logger
	lang     string
	logLevel slog.Level
	admins   map[int64]bool
	groups   map[int64]bool // bot.groups
	now      func() time.Time
	// connectMin and connectMax bound the pause between two getMe tries at start.
	connectMin, connectMax time.Duration

	cbs callbacks // callback data prefixes and their handlers (onCallbackData)

	// Set by Run.
	api    *Client          // every Bot API call
	tb     *tele.Bot        // routing and types only: its own calls are refused (guard)
	guard  *refuseTransport // telebot's HTTP transport
	calcs  Calculations
	out    *Sender
	poller *Poller
	ctx    context.Context

	logChatID  atomic.Int64
	rate       rateLimiter
	quiet      throttle               // unregistered senders reach the log chat once in a while, not at every message
	dropNote   throttle               // a user whose updates the poller dropped is told once in a while
	notAdmin   throttle               // so do one sender's refused admin commands
	badGroup   throttle               // and one sender's /access in groups that are not allowed
	refused    throttle               // and hear why they are refused once in a while (refuseEvery)
	refusedLog throttle               // the log chat hears of one sender's refusals once per refuseEvery, with a count
	sender     atomic.Pointer[Sender] // set while Run runs; Notify wakes its drainer
	fwd        *logForwarder          // LogHandler's state
	scrub      *plugins.Scrubber      // the secrets (Options.Secrets and the token); see redact

	cardKick chan struct{} // a calculation changed: look at the live cards
	cardLock cardLocks
	// cardEdited, when set (tests), is called after Telegram took a card's
	// edit and before it is recorded.
	cardEdited atomic.Pointer[func(calcID uint64)]

	mu      sync.Mutex
	running bool
}

// New checks the options and returns a Bot that does nothing until Run. Notify
// works from the start: it queues messages in the store's outbox, which Run
// drains. The logger's output never contains the token.
func New(opts Options, st *store.Store, log *slog.Logger) (*Bot, error) {
	if st == nil {
		return nil, errors.New("bot: store is required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts.Bot.SetDefaults()
	opts.Quota.SetDefaults()
	if err := errors.Join(opts.Bot.Validate(), opts.Quota.Validate()); err != nil {
		return nil, fmt.Errorf("bot: %w", err)
	}
	lang := SupportedLanguage(opts.Language)
	if lang == "" {
		if opts.Language != "" {
			return nil, fmt.Errorf("bot: language %q is not one of %s", opts.Language, strings.Join(Languages, ", "))
		}
		lang = Languages[0]
	}
	level, _ := ParseLevel(opts.Bot.LogChatLevel)
	if opts.MaxFileSize <= 0 {
		opts.MaxFileSize = publicDownloadLimit
	}
	scrub := newScrubber(string(opts.Bot.Token), opts.Secrets)
	b := &Bot{
		opts:     opts,
		st:       st,
		log:      slog.New(newRedactor(log.Handler(), scrub)),
		scrub:    scrub,
		lang:     lang,
		logLevel: level,
		admins:   map[int64]bool{},
		groups:   map[int64]bool{},
		now:      time.Now,
		cardKick: make(chan struct{}, 1),

		connectMin: time.Second,
		connectMax: 30 * time.Second,
	}
	for _, id := range opts.Bot.Admins {
		b.admins[id] = true
	}
	for _, id := range opts.Bot.Groups {
		b.groups[id] = true
	}
	b.notAdmin.every = refusedLogEvery
	b.badGroup.every = refusedLogEvery
	b.rate.perMinute = opts.Bot.SubmitsPerMinute
	b.quiet.every = unregisteredLogEvery
	b.dropNote.every = unregisteredLogEvery
	b.refused.every = refuseEvery
	b.refusedLog.every = refuseEvery
	b.logChatID.Store(opts.Bot.LogChatID)
	b.fwd = newLogForwarder(level, b.logChatID.Load, lang, b.redact)
	if v, ok, err := st.Value(kvLogChat); err == nil && ok {
		var from, to int64
		if _, err := fmt.Sscanf(v, "%d %d", &from, &to); err == nil && from == opts.Bot.LogChatID && from != 0 && to != 0 {
			b.logChatID.Store(to)
			b.log.Warn("the log chat became a supergroup; using its new id until bot.log_chat_id is updated", "chat", from, "new_chat", to)
		}
	}
	if len(opts.Bot.Admins) == 0 {
		// Admin rights come from ids alone: a @username can be given up and
		// taken by anyone, so bot.admin_name only names the contact.
		attrs := []any{}
		if opts.Bot.AdminName != "" {
			attrs = append(attrs, "admin_name", opts.Bot.AdminName)
		}
		b.log.Warn("bot.admins is empty, so nobody has admin rights (bot.admin_name is only the contact shown to users); the bot tells whoever writes to it their Telegram id: put the admins' ids in bot.admins and restart", attrs...)
	}
	return b, nil
}

// wakeOut tells the outbox drainer there is work (when the bot runs; else the
// messages wait in the store for Run).
func (b *Bot) wakeOut() {
	if s := b.sender.Load(); s != nil {
		s.Wake()
	}
}

// kvLogChat is the store key that follows the log chat after its group became
// a supergroup (the configured id no longer works): "<configured id> <new id>".
// It applies only while bot.log_chat_id is still the configured id.
const kvLogChat = "bot/log_chat_id"

// moveLogChat makes the log chat follow its group from one id to the next,
// and remembers it across restarts.
func (b *Bot) moveLogChat(from, to int64) bool {
	if !b.logChatID.CompareAndSwap(from, to) {
		return false
	}
	if err := b.st.SetValue(kvLogChat, fmt.Sprintf("%d %d", b.opts.Bot.LogChatID, to)); err != nil {
		b.log.Error("store the log chat's new id", "err", err)
	}
	b.log.Warn("the log chat became a supergroup; set bot.log_chat_id to the new id in hpcbot.toml", "chat", from, "new_chat", to)
	return true
}

// isPublicAPI reports whether the Bot API server is Telegram's own (with its
// 20 MB download limit).
func (b *Bot) isPublicAPI() bool {
	return strings.TrimRight(b.opts.Bot.APIURL, "/") == DefaultAPIURL
}

// maxInput is the largest input file the bot accepts, and whether the public
// Bot API's limit is what sets it.
func (b *Bot) maxInput() (int64, bool) {
	if b.isPublicAPI() && publicDownloadLimit < b.opts.MaxFileSize {
		return publicDownloadLimit, true
	}
	return b.opts.MaxFileSize, false
}

// isAdmin reports whether the Telegram user is an admin: listed by id in
// bot.admins. Nothing else makes an admin: a @username (bot.admin_name) can
// be given up and taken by anyone, so it is only the contact shown to users.
func (b *Bot) isAdmin(u *tele.User) bool {
	return u != nil && !u.IsBot && b.admins[u.ID]
}

// adminContact is how messages name the admin (HTML): the configured
// @username, the first admin's known @username, or a mention link to the
// first admin's id.
func (b *Bot) adminContact(lang string) HTML {
	if b.opts.Bot.AdminName != "" {
		return HTML(Escape(b.opts.Bot.AdminName))
	}
	for _, id := range b.opts.Bot.Admins {
		if acc, err := b.st.AccountByTelegramID(id); err == nil && acc.Username != "" {
			return HTML(Escape("@" + acc.Username))
		}
	}
	if len(b.opts.Bot.Admins) > 0 {
		id := b.opts.Bot.Admins[0]
		return HTML(fmt.Sprintf(`<a href="tg://user?id=%d">%d</a>`, id, id))
	}
	return HTML(tr(lang, "auth.admin_unknown", nil))
}

// Run connects to the Bot API, sets the command lists, and serves updates until
// ctx ends; it returns nil then. It returns an error at once when the Bot API
// refuses the token. calcs is the scheduler.
func (b *Bot) Run(ctx context.Context, calcs Calculations) error {
	b.mu.Lock()
	if b.running {
		b.mu.Unlock()
		return errors.New("bot: Run called twice")
	}
	b.running = true
	b.mu.Unlock()
	if calcs == nil {
		return errors.New("bot: Run needs the scheduler")
	}
	b.calcs = calcs
	b.ctx = ctx

	hc := b.opts.Client
	if hc == nil {
		hc = &http.Client{} // each call sets its own deadline
	}
	apiURL := strings.TrimRight(b.opts.Bot.APIURL, "/")
	client := NewClient(apiURL, string(b.opts.Bot.Token), hc)
	b.api = client
	b.poller = NewPoller(client, b.st, b.log.With("component", "poller"), PollerOptions{Timeout: b.opts.PollTimeout, OnDropped: b.tellDropped})
	tb, err := b.newRouter(apiURL)
	if err != nil {
		return err
	}
	b.tb = tb
	if err := b.connect(ctx); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return nil
	}
	b.out = NewSender(client, b.st, b.log.With("component", "sender"), b.senderOptions())
	defer b.out.Close()
	b.sender.Store(b.out)
	b.fwd.attach(b.out.Post)
	defer b.fwd.attach(nil) // before Close: nothing posts to a closed sender
	b.routes()
	b.setCommands()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.out.DrainOutbox(ctx, b.render)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.keepCards(ctx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		tb.Start()
	}()
	b.log.Info("bot running", "username", tb.Me.Username, "api", apiURL)
	var runErr error
	select {
	case <-ctx.Done():
	case <-b.poller.Done():
		runErr = b.poller.Err()
	}
	tb.Stop()
	wg.Wait()
	b.log.Info("bot stopped")
	if runErr != nil {
		return fmt.Errorf("bot: %w", runErr)
	}
	return nil
}

func (b *Bot) senderOptions() SenderOptions {
	o := b.opts.sender
	o.OnMigrate = b.followMigration
	o.Merge = func(chat int64) bool { return chat != 0 && chat == b.logChatID.Load() }
	o.Language = b.lang
	return o
}

// render turns an outbox item into what the sender sends: the text rendered
// when it was queued, and its files (or the Telegram file it names).
func (b *Bot) render(it store.OutItem) (Outgoing, error) {
	text := it.Msg.Params[paramText]
	o := Outgoing{ChatID: it.Msg.ChatID, Text: text, At: it.Msg.Created}
	if id := it.Msg.Params[paramFileID]; id != "" {
		o.Text, o.Caption = "", text
		o.Files = append(o.Files, OutFile{FileID: id})
	}
	for _, f := range it.Msg.Files {
		o.Files = append(o.Files, OutFile{Path: f})
	}
	if it.Msg.Kind == cardKind {
		if err := b.renderCard(it, &o); err != nil {
			return o, err
		}
	}
	if o.Text == "" && o.Caption == "" && len(o.Files) == 0 {
		return o, fmt.Errorf("outbox %s (%s): nothing to send", it.Key, it.Msg.Kind)
	}
	return o, nil
}

// followMigration follows a group that became a supergroup, when the sender
// learns it from Telegram's answer: the log chat moves with it.
func (b *Bot) followMigration(from, to int64) { b.moveLogChat(from, to) }

// connectReportEvery is how often connect says that the Bot API still cannot
// be reached: one clear line a minute, not one per try.
const connectReportEvery = time.Minute

// connect asks getMe until it answers: network errors and 5xx are retried with
// backoff (connectMin doubling up to connectMax, with jitter) and reported
// once a minute; a refused token ends Run at once.
func (b *Bot) connect(ctx context.Context) error {
	var report throttle
	report.every = connectReportEvery
	since := b.now()
	for tries := 0; ; tries++ {
		me, err := b.api.GetMe(ctx)
		if err == nil {
			b.tb.Me = me
			if tries > 0 {
				b.log.Info("the Bot API answers again", "tries", tries+1, "since", since.Format(time.RFC3339))
			}
			return nil
		}
		var ae *APIError
		if errors.As(err, &ae) && (ae.Code == http.StatusUnauthorized || ae.Code == http.StatusNotFound) {
			return fmt.Errorf("bot: the Bot API refused the token (%d %s): check bot.token; @BotFather shows or revokes it", ae.Code, ae.Description)
		}
		if ctx.Err() != nil {
			return nil
		}
		if report.allow(0, b.now()) {
			b.log.Warn(fmt.Sprintf("cannot reach the Bot API at %s; retrying until it answers (this line repeats once a minute)", b.opts.Bot.APIURL),
				"tries", tries+1, "since", since.Format(time.RFC3339), "err", err)
		}
		if backoff.Sleep(ctx, backoff.Delay(b.connectMin, b.connectMax, tries+1)) != nil {
			return nil
		}
	}
}

// routes registers every handler.
func (b *Bot) routes() {
	tb := b.tb
	tb.Handle("/start", b.wrap("/start", b.cmdHelp))
	tb.Handle("/help", b.wrap("/help", b.cmdHelp))
	tb.Handle("/access", b.wrap("/access", b.cmdAccess))
	tb.Handle("/upd", b.wrap("/upd", b.cmdUpd))
	tb.Handle("/status", b.wrap("/status", b.cmdStatus))
	tb.Handle("/jobs", b.wrap("/jobs", b.cmdJobs))
	tb.Handle("/cancel", b.wrap("/cancel", b.cmdCancel))
	tb.Handle("/approve", b.wrap("/approve", b.admin(b.cmdApprove)))
	tb.Handle("/block", b.wrap("/block", b.admin(b.cmdBlock)))
	tb.Handle("/unblock", b.wrap("/unblock", b.admin(b.cmdUnblock)))
	tb.Handle("/list", b.wrap("/list", b.admin(b.cmdList)))
	tb.Handle("/search", b.wrap("/search", b.admin(b.cmdSearch)))
	tb.Handle("/alter_limit", b.wrap("/alter_limit", b.admin(b.cmdAlterLimit)))
	tb.Handle("/stats", b.wrap("/stats", b.admin(b.cmdStats)))
	tb.Handle("/groups", b.wrap("/groups", b.admin(b.cmdGroups)))
	tb.Handle("/clusters", b.wrap("/clusters", b.admin(b.cmdClusters)))
	tb.Handle("/drain", b.wrap("/drain", b.admin(b.cmdDrain)))
	tb.Handle("/undrain", b.wrap("/undrain", b.admin(b.cmdUndrain)))
	tb.Handle("/redeliver", b.wrap("/redeliver", b.admin(b.cmdRedeliver)))
	tb.Handle("/user", b.wrap("/user", b.admin(b.cmdUser)))
	tb.Handle("/org", b.wrap("/org", b.admin(b.cmdOrg)))
	tb.Handle(tele.OnDocument, b.wrap("document", b.onDocument))
	tb.Handle(tele.OnText, b.wrap("text", b.onOther))
	tb.Handle(tele.OnMedia, b.wrap("media", b.onOther))
	tb.Handle(tele.OnMyChatMember, b.wrap("membership", b.onMembership))
	tb.Handle(tele.OnMigration, b.wrap("migration", b.onMigration))
	tb.Handle(tele.OnCallback, b.wrap("callback", b.onCallback))
	b.onCallbackData(cardDataStart, b.onCardButton)
}

// userMenu and adminMenu are the commands of the command menu
// (setMyCommands), in order; their descriptions are the catalogs' "menu.*"
// keys (an admin's /jobs is described by "menu.jobs_all").
var (
	userMenu  = []string{"help", "status", "jobs", "cancel", "upd", "access"}
	adminMenu = []string{"approve", "block", "unblock", "list", "search", "alter_limit", "redeliver", "stats", "groups", "user", "org", "clusters", "drain", "undrain"}
)

// commandList is the command menu for users, or for admins, in lang.
func commandList(lang string, admin bool) []tele.Command {
	var out []tele.Command
	for _, c := range userMenu {
		key := "menu." + c
		if admin && c == "jobs" {
			key = "menu.jobs_all"
		}
		out = append(out, tele.Command{Text: c, Description: tr(lang, key, nil)})
	}
	if admin {
		for _, c := range adminMenu {
			out = append(out, tele.Command{Text: c, Description: tr(lang, "menu."+c, nil)})
		}
	}
	return out
}

// setCommands sets the command menus: the users' list by default, the admins'
// list in each admin's private chat, in English and Russian. Failures are
// logged: the menu is a convenience.
func (b *Bot) setCommands() {
	for _, lang := range Languages {
		code := lang
		if lang == b.lang {
			code = "" // the default for every other language too
		}
		set := func(cmds []tele.Command, scope tele.CommandScope) {
			if err := b.api.SetMyCommands(b.ctx, cmds, scope, code); err != nil {
				b.log.Warn("set command menu", "scope", scope.Type, "lang", lang, "err", err)
			}
		}
		set(commandList(lang, false), tele.CommandScope{Type: tele.CommandScopeDefault})
		for _, id := range b.opts.Bot.Admins {
			set(commandList(lang, true), tele.CommandScope{Type: tele.CommandScopeChat, ChatID: id})
		}
	}
}
