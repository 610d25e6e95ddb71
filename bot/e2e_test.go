package bot

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	tele "gopkg.in/telebot.v3"

	"hpcbot/bot/tgtest"
	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
	"hpcbot/plugins/detached"
	"hpcbot/runners/command"
	"hpcbot/scheduler"
	"hpcbot/store"
)

// The end-to-end tests drive real Telegram updates through the fake Bot API
// server (tgtest) into the real bot (poller, handlers, sender) with the real
// store and the real scheduler running shell scripts on this host (the local
// plugin and the command runner).

// waitLimit bounds every wait: a guard against a hang, never a speed assertion.
const waitLimit = 60 * time.Second

// Chats and people of the tests.
var (
	tgAdmin    = tgtest.User{ID: 1001, FirstName: "Ada", LastName: "Admin", Username: "ada_admin", LanguageCode: "en"}
	tgUser     = tgtest.User{ID: 2002, FirstName: "Ivan", LastName: "Petrov", Username: "ivan", LanguageCode: "en"}
	tgRuUser   = tgtest.User{ID: 2003, FirstName: "Мария", Username: "masha", LanguageCode: "ru"}
	tgBlocked  = tgtest.User{ID: 3003, FirstName: "Bob", Username: "bob_blocked", LanguageCode: "en"}
	tgStranger = tgtest.User{ID: 4004, FirstName: "Eve", Username: "eve", LanguageCode: "de"}
	groupChat  = tgtest.Group(-500, "Chem group")
	logChat    = int64(-100900)
)

// shRules: input files *.sh run with sh; "-e" is the only argument allowed.
var shRules = []plugins.RunnerRule{{
	Runner:       "command",
	Program:      "sh",
	AllowedArgs:  []string{"{}", "-e"},
	DefaultArgs:  []string{"{}"},
	Associations: []string{".sh"},
	Description:  "POSIX shell",
}}

// env is one test's world.
type env struct {
	t     *testing.T
	srv   *tgtest.Server
	st    *store.Store
	bot   *Bot
	sched *scheduler.Scheduler
	calcs *calcsProbe
	logs  *syncBuffer
	dl    string

	user, blocked store.User
	ru            store.User

	stop func() // stops the bot and the scheduler and waits for them (once; at cleanup otherwise)
}

type envOpt func(*Options)

// newEnv starts the fake Bot API, the store, the scheduler and the bot, with
// the admin, a user, a Russian-speaking user and a blocked user registered,
// and groupChat allowed (bot.groups).
func newEnv(t *testing.T, opts ...envOpt) *env {
	t.Helper()
	e := &env{t: t, srv: tgtest.New(t), logs: &syncBuffer{}, dl: t.TempDir()}
	st, err := store.Open(filepath.Join(t.TempDir(), "hpcbot.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.st = st
	if err := st.UpsertOrganizations([]store.Organization{
		{Label: "ipc", Name: "Institute of Physical Chemistry", Alias: "IPC RAS"},
		{Label: "msu", Name: "Moscow State University", Alias: "МГУ"},
		{Label: "msu-chem", Name: "MSU Chemistry Department", Alias: "ХимФак", Parent: "msu"},
		{Label: "spbu", Name: "Saint Petersburg State University", Alias: "СПбГУ"},
	}); err != nil {
		t.Fatal(err)
	}
	reg := func(u tgtest.User, limit int) store.User {
		su, _, err := st.RegisterUser(store.TelegramAccount{TelegramID: u.ID, Username: u.Username,
			DisplayName: u.FirstName + " " + u.LastName, LanguageCode: u.LanguageCode}, limit)
		if err != nil {
			t.Fatal(err)
		}
		return su
	}
	e.user = reg(tgUser, 3)
	e.ru = reg(tgRuUser, 3)
	e.blocked = reg(tgBlocked, 3)
	if _, err := st.UpdateUser(e.blocked.ID, func(_ *store.Tx, u *store.User) error { u.Blocked = true; return nil }); err != nil {
		t.Fatal(err)
	}

	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o := Options{
		Bot: Config{Token: plugins.Secret(e.srv.Token), APIURL: e.srv.URL, Admins: []int64{tgAdmin.ID},
			Groups: []int64{groupChat.ID}, LogChatID: logChat, LogChatLevel: "info", SubmitsPerMinute: 5},
		Quota:       QuotaConfig{NewUser: 2, Approved: 7, Window: plugins.Duration(720 * time.Hour)},
		Language:    "en",
		MaxFileSize: 4000,
		PollTimeout: time.Second,
		// Pacing is the sender's business (and its tests'); here it would only slow things down.
		sender: SenderOptions{PerChat: 1000, PerChatBurst: 1000, PerGroupMinute: 100000, Global: 100000},
	}
	for _, f := range opts {
		f(&o)
	}
	b, err := New(o, st, log)
	if err != nil {
		t.Fatal(err)
	}
	// Each refusal is said here (TestRefusalsOncePerInterval tests the throttle).
	b.refused.every = 0
	e.bot = b

	ctx := context.Background()
	pc := plugins.Cluster{Label: "loc", Scheduler: "local", UploadPath: t.TempDir(), MaxJobs: 4}
	local := detached.NewLocal(cluster.WithLostGrace(2*time.Second), cluster.WithLogger(slog.New(slog.DiscardHandler)))
	if err := local.Configure(ctx, pc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { local.Close() })
	runner := command.New()
	if err := runner.Configure(ctx, "loc", shRules); err != nil {
		t.Fatal(err)
	}
	sched, err := scheduler.New(scheduler.Config{
		DownloadPath:        e.dl,
		FetchTime:           scheduler.FetchTime{Min: 30 * time.Millisecond, Max: 60 * time.Millisecond},
		ExtensionsWhitelist: []string{".out", ".txt", ".log"},
		GiveUpAfter:         time.Hour,
		Clusters:            []scheduler.ClusterConfig{{Cluster: pc, Runners: shRules}},
	}, st, map[string]plugins.Scheduler{"loc": local}, map[string][]plugins.Runner{"loc": {runner}}, b, log,
		scheduler.WithBackoff(10*time.Millisecond, 40*time.Millisecond), scheduler.WithStopGrace(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	e.sched = sched
	e.calcs = &calcsProbe{Calculations: sched}

	runCtx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); sched.Run(runCtx) }()
	runErr := make(chan error, 1)
	go func() { defer wg.Done(); runErr <- b.Run(runCtx, e.calcs) }()
	e.stop = sync.OnceFunc(func() {
		cancel()
		wg.Wait()
		if err := <-runErr; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Cleanup(e.stop)
	// The bot is serving once it has set its command menu.
	e.srv.Wait(t, func(calls []tgtest.Call) bool { return countOK(calls, "setMyCommands") >= 2 })
	return e
}

// calcsProbe wraps the scheduler; it panics or fails on demand.
type calcsProbe struct {
	Calculations
	panicHelp atomic.Bool
	routes    atomic.Int32
	routeErr  atomic.Pointer[error]
	cancelErr atomic.Pointer[error]
	tailErr   atomic.Pointer[error]
	onRoute   atomic.Pointer[func()]
}

func (p *calcsProbe) Cancel(ctx context.Context, id uint64) error {
	if err := p.cancelErr.Load(); err != nil {
		return *err
	}
	return p.Calculations.Cancel(ctx, id)
}

func (p *calcsProbe) Tail(ctx context.Context, id uint64, lines int) (string, error) {
	if err := p.tailErr.Load(); err != nil {
		return "", *err
	}
	return p.Calculations.Tail(ctx, id, lines)
}

func (p *calcsProbe) Clusters() []scheduler.ClusterInfo {
	if p.panicHelp.Load() {
		panic("injected panic in Clusters")
	}
	return p.Calculations.Clusters()
}

func (p *calcsProbe) Route(ctx context.Context, name, caption string) (scheduler.Route, error) {
	p.routes.Add(1)
	if f := p.onRoute.Load(); f != nil {
		(*f)()
	}
	if err := p.routeErr.Load(); err != nil {
		return scheduler.Route{}, *err
	}
	return p.Calculations.Route(ctx, name, caption)
}

func countOK(calls []tgtest.Call, method string) int {
	n := 0
	for _, c := range calls {
		if c.Method == method && c.OK() {
			n++
		}
	}
	return n
}

// syncBuffer collects log output from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// handled waits until the update was stored, its handler has finished, and
// the replies it queued (in the outbox, or in memory) are sent: handlers do
// not wait for them.
func (e *env) handled(id int64) {
	e.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		if !slices.Contains(e.srv.Unconfirmed(), id) {
			pending, err := e.st.InboxPending()
			if err != nil {
				e.t.Fatal(err)
			}
			out, err := e.st.OutboxPending()
			if err != nil {
				e.t.Fatal(err)
			}
			replies := fmt.Sprintf("update/%d/reply/", id)
			if !slices.ContainsFunc(pending, func(it store.InboxItem) bool { return it.UpdateID == id }) &&
				!slices.ContainsFunc(out, func(it store.OutItem) bool { return strings.HasPrefix(it.Key, replies) }) &&
				e.bot.out.repliesQueued() == 0 {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.t.Fatalf("update %d not handled within %v", id, waitLimit)
}

// repliesQueued counts the messages queued by Post (not the outbox's) to
// chats other than the log chat and not yet sent or given up.
func (s *Sender) repliesQueued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for chat, q := range s.chats {
		if chat == logChat {
			continue
		}
		for _, j := range q.jobs {
			if j.key == "" {
				n++
			}
		}
	}
	return n
}

// say sends text from `from` in chat and waits until it has been handled; it
// returns the texts sent to that chat meanwhile (direct replies).
func (e *env) say(from tgtest.User, chat tgtest.Chat, text string) []string {
	e.t.Helper()
	before := len(e.srv.Sent(chat.ID))
	id := e.srv.PushText(from, chat, text)
	e.handled(id)
	return sentTexts(e.srv.Sent(chat.ID)[before:])
}

// private is say in the sender's private chat.
func (e *env) private(from tgtest.User, text string) []string {
	e.t.Helper()
	return e.say(from, tgtest.Private(from), text)
}

// sendFile sends a document and waits until it has been handled.
func (e *env) sendFile(from tgtest.User, name string, data []byte, caption string) (int64, []string) {
	e.t.Helper()
	chat := tgtest.Private(from)
	before := len(e.srv.Sent(chat.ID))
	id := e.srv.PushDocument(from, chat, name, data, caption)
	e.handled(id)
	return id, sentTexts(e.srv.Sent(chat.ID)[before:])
}

func sentTexts(calls []tgtest.Call) []string {
	var out []string
	for _, c := range calls {
		out = append(out, c.Text())
	}
	return out
}

// waitSent waits until a message to chat contains all of parts, and returns it.
func (e *env) waitSent(chat int64, parts ...string) tgtest.Call {
	e.t.Helper()
	var found tgtest.Call
	e.srv.Wait(e.t, func(calls []tgtest.Call) bool {
		for _, c := range calls {
			if c.OK() && c.ChatID() == chat && containsAll(c.Text(), parts...) {
				found = c
				return true
			}
		}
		return false
	})
	return found
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// want checks that one of the replies contains every part.
func want(t *testing.T, replies []string, parts ...string) {
	t.Helper()
	for _, r := range replies {
		if containsAll(r, parts...) {
			return
		}
	}
	t.Errorf("no reply contains %q; replies:\n%s", parts, strings.Join(replies, "\n---\n"))
}

// quiesce waits until the outbox is empty (everything queued was sent or dropped).
func (e *env) quiesce() {
	e.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		items, err := e.st.OutboxPending()
		if err != nil {
			e.t.Fatal(err)
		}
		if len(items) == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.t.Fatalf("outbox not drained within %v", waitLimit)
}

func (e *env) userByTG(id int64) store.User {
	e.t.Helper()
	u, _, err := e.st.UserByTelegramID(id)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

func (e *env) calcsOf(u store.User) []store.Calculation {
	e.t.Helper()
	cs, err := e.st.CalcsOfUser(u.ID, time.Time{}, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return cs
}

// logTexts returns what reached the log chat.
func (e *env) logTexts() []string { return sentTexts(e.srv.Sent(logChat)) }

var _ = errors.New
var _ = fmt.Sprint
var _ = os.Stat

func TestE2EHelp(t *testing.T) {
	e := newEnv(t)
	replies := e.private(tgUser, "/start")
	want(t, replies, "<b>loc</b> (local)", "<code>sh</code>", "POSIX shell", ".sh", "-e", "/cancel N")
	for _, r := range replies {
		if strings.Contains(r, "/approve") {
			t.Errorf("a user sees the admin commands: %s", r)
		}
	}
	want(t, e.private(tgAdmin, "/help"), "/approve U", "<b>loc</b>")
	// Russian for a Russian-speaking user.
	want(t, e.private(tgRuUser, "/help"), "Я запускаю расчёты", "<b>loc</b>")
	// An unregistered sender gets the help and how to get access; the log chat hears of it.
	replies = e.private(tgStranger, "/help")
	want(t, replies, "<b>loc</b>")
	want(t, replies, "not registered", `<a href="tg://user?id=1001">1001</a>`)
	e.waitSent(logChat, "Unregistered", "@eve")
	// The command menus: users by default, admins in their chat, both languages.
	if cmds, ok := e.srv.Commands(tgtest.CommandScope{Type: "default"}, ""); !ok || len(cmds) != 6 {
		t.Errorf("default menu: %v %v", cmds, ok)
	}
	if cmds, ok := e.srv.Commands(tgtest.CommandScope{Type: "chat", ChatID: tgAdmin.ID}, "ru"); !ok || len(cmds) != 20 {
		t.Errorf("admin menu in Russian: %v %v", cmds, ok)
	}
}

func TestE2EUnknownInput(t *testing.T) {
	e := newEnv(t)
	want(t, e.private(tgUser, "hello"), "/help")
	want(t, e.private(tgUser, "/frobnicate now"), "/help")
	// A blocked user is told they are blocked, not given a hint.
	want(t, e.private(tgBlocked, "/upd имя: Боб"), "blocked", "tg://user?id=1001")
	// An unregistered sender is refused, whatever they send.
	for _, text := range []string{"hello", "/status", "/jobs", "/cancel 1", "/upd имя: Ева"} {
		want(t, e.private(tgStranger, text), "not registered", "Your Telegram id is 4004")
	}
	if _, _, err := e.st.UserByTelegramID(tgStranger.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the stranger was registered: %v", err)
	}
	// The log chat heard of the stranger once, not at every message.
	e.quiesce()
	n := 0
	for _, text := range e.logTexts() {
		if strings.Contains(text, "Unregistered") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the log chat heard of the stranger %d times, want 1", n)
	}
	// Plain group chatter is not answered.
	if got := e.say(tgUser, groupChat, "hi all"); len(got) != 0 {
		t.Errorf("answered group chatter: %q", got)
	}
}

func TestE2EPanicIsReported(t *testing.T) {
	e := newEnv(t)
	e.calcs.panicHelp.Store(true)
	want(t, e.private(tgUser, "/help"), "Something went wrong")
	e.waitSent(logChat, "Failure while handling /help", "injected panic")
	e.calcs.panicHelp.Store(false)
	want(t, e.private(tgUser, "/help"), "<b>loc</b>")
}

func TestE2EAccess(t *testing.T) {
	e := newEnv(t)
	replies := e.say(tgStranger, groupChat, "/access")
	want(t, replies, "Welcome, Eve", "2 calculations in 30 days", "/upd")
	u := e.userByTG(tgStranger.ID)
	if u.Limit != 2 || u.Approved || u.Blocked {
		t.Errorf("registered as %+v, want limit quota.new_user=2", u)
	}
	e.waitSent(logChat, "New user #", "@eve", "Chem group")
	// Again: already has access, nothing new.
	want(t, e.say(tgStranger, groupChat, "/access@hpcbot_test_bot"), "already have access")
	if users, _ := e.st.Users(); len(users) != 4 {
		t.Errorf("%d users, want 4", len(users))
	}
	// Addressed to another bot: not for us.
	if got := e.say(tgUser, groupChat, "/access@other_bot"); len(got) != 0 {
		t.Errorf("answered a command for another bot: %q", got)
	}
	want(t, e.say(tgBlocked, groupChat, "/access"), "blocked")
	// An admin registering in the group is approved at once.
	want(t, e.say(tgAdmin, groupChat, "/access"), "Welcome, Ada", "7 calculations")
	if a := e.userByTG(tgAdmin.ID); !a.Approved || a.Limit != 7 {
		t.Errorf("admin registered as %+v", a)
	}
	// In private, /access does not register anyone.
	other := tgtest.User{ID: 5005, FirstName: "Mallory", LanguageCode: "en"}
	want(t, e.private(other, "/access"), "not registered")
	if _, _, err := e.st.UserByTelegramID(other.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("/access in private registered someone: %v", err)
	}
	// Other user commands in a group are sent to the private chat.
	want(t, e.say(tgUser, groupChat, "/status"), "private chat")
	want(t, e.say(tgAdmin, groupChat, "/list"), "private chat")
}

func TestE2EUpd(t *testing.T) {
	e := newEnv(t)
	want(t, e.private(tgUser, "/upd"), "/upd first name: Ivan")
	want(t, e.private(tgUser, "/upd имя: Иван, фамилия: Петров, организация: мгу"), "Saved: Иван Петров, Moscow State University")
	u := e.userByTG(tgUser.ID)
	if u.FirstName != "Иван" || u.LastName != "Петров" || u.Org != "msu" {
		t.Errorf("user %+v", u)
	}
	e.waitSent(logChat, "updated their data", "Иван Петров", "Moscow State University")
	// English keys, newline separated, by alias.
	want(t, e.private(tgUser, "/upd first name: Ivan\nlast name: Petrov-<b>Vodkin</b>\norganization: ipc ras"),
		"Saved: Ivan Petrov-&lt;b&gt;Vodkin&lt;/b&gt;, Institute of Physical Chemistry")
	// Several organizations match: says so, lists candidates, changes nothing.
	replies := e.private(tgUser, "/upd organization: state university")
	want(t, replies, "Several organizations match", "Moscow State University", "Saint Petersburg State University")
	// None matches: says so, offers what shares a word.
	want(t, e.private(tgUser, "/upd organization: Chemistry Institute of Nowhere"), "No organization matches", "Institute of Physical Chemistry")
	want(t, e.private(tgUser, "/upd organization: zzz"), "No organization matches")
	if got := e.userByTG(tgUser.ID); got.Org != "ipc" {
		t.Errorf("organization changed to %q by a failed /upd", got.Org)
	}
	// Unreadable parts.
	want(t, e.private(tgUser, "/upd nickname: x"), "cannot read", "nickname: x")
	want(t, e.private(tgUser, "/upd Ivan Petrov"), "cannot read")
	// Russian replies for a Russian speaker.
	want(t, e.private(tgRuUser, "/upd имя: Мария, организация: ХимФак"), "Сохранено: Мария", "MSU Chemistry Department")
	// Approved users cannot change their data.
	if _, err := e.st.UpdateUser(u.ID, func(_ *store.Tx, u *store.User) error { u.Approved = true; return nil }); err != nil {
		t.Fatal(err)
	}
	want(t, e.private(tgUser, "/upd имя: Пётр"), "already approved")
	if got := e.userByTG(tgUser.ID); got.FirstName != "Ivan" {
		t.Errorf("an approved user changed their name to %q", got.FirstName)
	}
}

func TestE2EStatusJobsCancel(t *testing.T) {
	e := newEnv(t)
	want(t, e.private(tgUser, "/status"), fmt.Sprintf("<b>#%d</b>", e.user.ID), "not approved yet", "0 of 3 in the last 30 days", "@ivan 2002")
	want(t, e.private(tgBlocked, "/status"), "blocked")
	want(t, e.private(tgUser, "/jobs"), "no calculations yet")
	// A calculation that sleeps, so that it can be cancelled.
	_, replies := e.sendFile(tgUser, "slow.sh", []byte("sleep 30\n"), "")
	_ = replies
	calcs := e.calcsOf(e.user)
	if len(calcs) != 1 {
		t.Fatalf("%d calculations", len(calcs))
	}
	id := calcs[0].ID
	e.waitSent(int64(tgUser.ID), fmt.Sprintf("Calculation <b>#%d</b> accepted", id), "<code>sh</code>", "loc")
	want(t, e.private(tgUser, "/jobs"), fmt.Sprintf("<b>#%d</b> slow.sh", id), "<code>sh</code> on loc")
	want(t, e.private(tgUser, "/status"), "1 of 3")
	// Someone else's calculation is not found for a user.
	want(t, e.private(tgRuUser, fmt.Sprintf("/cancel %d", id)), fmt.Sprintf("У вас нет расчёта #%d", id))
	want(t, e.private(tgUser, "/cancel"), "/cancel 42")
	want(t, e.private(tgUser, "/cancel x"), "/cancel 42")
	want(t, e.private(tgUser, "/cancel 999"), "no calculation #999")
	// Wait until it runs, then cancel it.
	waitState(t, e.st, id, store.StateRunning)
	want(t, e.private(tgUser, fmt.Sprintf("/cancel #%d", id)), fmt.Sprintf("Stopping calculation #%d", id))
	e.waitSent(logChat, fmt.Sprintf("cancelled calculation #%d", id))
	waitState(t, e.st, id, store.StateNotified)
	e.waitSent(int64(tgUser.ID), fmt.Sprintf("Calculation <b>#%d</b> (slow.sh) finished: cancelled", id))
	want(t, e.private(tgUser, fmt.Sprintf("/cancel %d", id)), "already finished")
	want(t, e.private(tgUser, "/jobs"), fmt.Sprintf("<b>#%d</b> slow.sh", id), "cancelled, job ", ", ended 20")
}

// waitState waits until calculation id reaches state.
func waitState(t *testing.T, st *store.Store, id uint64, state store.State) store.Calculation {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	var c store.Calculation
	for time.Now().Before(deadline) {
		var err error
		if c, err = st.Calc(id); err != nil {
			t.Fatal(err)
		}
		if c.State == state {
			return c
		}
		if c.State.Final() && state != c.State {
			t.Fatalf("calc %d ended in %s (%s), want %s", id, c.State, c.Error, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("calc %d is %s after %v, want %s", id, c.State, waitLimit, state)
	return c
}

// tgAdmin2 is a second admin (TestE2EAdminCommands).
var tgAdmin2 = tgtest.User{ID: 1002, FirstName: "Grace", LastName: "Second", Username: "grace_admin", LanguageCode: "en"}

func TestE2EAdminCommands(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Bot.Admins = append(o.Bot.Admins, tgAdmin2.ID) })
	if _, _, err := e.st.RegisterUser(store.TelegramAccount{TelegramID: tgAdmin2.ID, Username: tgAdmin2.Username, DisplayName: "Grace Second"}, 7); err != nil {
		t.Fatal(err)
	}
	uid := fmt.Sprint(e.user.ID)
	// Every admin command from a non-admin (user, blocked, unregistered) is
	// refused and changes nothing.
	for _, who := range []tgtest.User{tgUser, tgBlocked, tgStranger} {
		for _, cmd := range []string{"/approve #" + uid, "/block " + uid, "/unblock @ivan", "/list all", "/status #" + uid,
			"/search Petrov", "/alter_limit #" + uid + " 100", "/stats"} {
			want(t, e.private(who, cmd), "Only admins may use", "Nothing was changed")
		}
	}
	if u := e.userByTG(tgUser.ID); u.Approved || u.Blocked || u.Limit != 3 {
		t.Fatalf("a non-admin changed a user: %+v", u)
	}
	e.waitSent(logChat, "tried /approve without being an admin", "@eve")

	// /approve; the user is told. The admin hears what the user has not
	// given, and sets it (/user), adding the organization (/org).
	replies := e.private(tgAdmin, "/approve #"+uid)
	want(t, replies, "User #"+uid, "is approved: 7 calculations in 30 days")
	want(t, replies, "has not given their first and last name and their organization", "/user "+uid+" name")
	if u := e.userByTG(tgUser.ID); !u.Approved || u.Limit != 7 {
		t.Errorf("approved user: %+v", u)
	}
	e.waitSent(tgUser.ID, "You are approved", "7 calculations in 30 days")
	e.waitSent(logChat, "approved user #"+uid)
	// Again: said so, nobody told.
	want(t, e.private(tgAdmin, "/approve @ivan"), "is already approved; nothing changed")
	want(t, e.private(tgAdmin, "/user #"+uid+" name Ivan Petrov"), "User #"+uid+" is now Ivan Petrov")
	want(t, e.private(tgAdmin, "/user @ivan org nosuch"), "no organization with the label nosuch")
	want(t, e.private(tgAdmin, "/user @ivan"), "/user #7 name First Last")
	want(t, e.private(tgAdmin, "/org"), "/org add LABEL Name [PARENT]")
	want(t, e.private(tgAdmin, "/org add qc-lab Laboratory of Quantum Chemistry ipc"), "Organization qc-lab added: Laboratory of Quantum Chemistry (part of Institute of Physical Chemistry)")
	want(t, e.private(tgAdmin, "/org add qc-lab Again"), "already taken by Laboratory of Quantum Chemistry")
	want(t, e.private(tgAdmin, "/org add ../x <b>Bad</b>"), "The label ../x cannot be used")
	want(t, e.private(tgAdmin, "/org list"), "<code>qc-lab</code> Laboratory of Quantum Chemistry (part of Institute of Physical Chemistry)", "<code>spbu</code>")
	e.waitSent(logChat, "added the organization qc-lab")
	want(t, e.private(tgAdmin, "/user @ivan org qc-lab"), "now belongs to Laboratory of Quantum Chemistry")
	if u := e.userByTG(tgUser.ID); userName(u) != "Ivan Petrov" || u.Org != "qc-lab" {
		t.Errorf("corrected user: %+v", u)
	}
	// A user who gave everything is approved without a word about it.
	want(t, e.private(tgRuUser, "/upd имя: Маша, фамилия: Иванова, организация: ipc"), "Сохранено")
	for _, r := range e.private(tgAdmin, "/approve @masha") {
		if strings.Contains(r, "has not given") {
			t.Errorf("a complete user: %s", r)
		}
	}
	// The admin's own organization.
	want(t, e.private(tgAdmin, "/status"), "Ada Admin")
	want(t, e.private(tgAdmin, "/user @ada_admin org msu"), "now belongs to Moscow State University")
	want(t, e.private(tgAdmin, "/approve @nobody"), "There is no user @nobody")
	want(t, e.private(tgAdmin, "/approve #999"), "There is no user #999")
	want(t, e.private(tgAdmin, "/approve <b>"), "There is no user &lt;b&gt;")

	// Admins cannot be blocked, the sender least of all.
	want(t, e.private(tgAdmin, "/block @ada_admin"), "You cannot block yourself")
	want(t, e.private(tgAdmin, "/block @grace_admin"), "is an admin (bot.admins)")
	if u := e.userByTG(tgAdmin2.ID); u.Blocked {
		t.Fatal("an admin was blocked")
	}
	want(t, e.private(tgAdmin, "/unblock @ivan"), "is not blocked; nothing changed")

	// /block and /unblock; the user is told, in their language.
	want(t, e.private(tgAdmin, "/block @masha"), fmt.Sprintf("User #%d", e.ru.ID), "is blocked")
	if u := e.userByTG(tgRuUser.ID); !u.Blocked {
		t.Error("not blocked")
	}
	e.waitSent(tgRuUser.ID, "заблокирована администратором")
	want(t, e.private(tgAdmin, "/block @masha"), "is already blocked; nothing changed")
	want(t, e.private(tgRuUser, "/upd имя: Маша"), "заблокирована")
	want(t, e.private(tgAdmin, fmt.Sprint("/unblock ", e.ru.ID)), "is unblocked")
	e.waitSent(tgRuUser.ID, "разблокирована")
	want(t, e.private(tgAdmin, "/unblock @masha"), "is not blocked; nothing changed")
	e.quiesce()
	// The repeated commands told nobody.
	for chat, part := range map[int64]string{tgUser.ID: "You are approved", tgRuUser.ID: "заблокирова"} {
		n := 0
		for _, text := range sentTexts(e.srv.Sent(chat)) {
			if strings.Contains(text, part) {
				n++
			}
		}
		if want := map[bool]int{true: 1, false: 2}[chat == tgUser.ID]; n != want {
			t.Errorf("chat %d was sent %q %d times, want %d", chat, part, n, want)
		}
	}

	// /alter_limit
	want(t, e.private(tgAdmin, "/alter_limit @ivan 40"), "may now run 40 calculations")
	if u := e.userByTG(tgUser.ID); u.Limit != 40 {
		t.Errorf("limit %d", u.Limit)
	}
	e.waitSent(logChat, "set the limit of user #"+uid, "to 40")
	for _, bad := range []string{"/alter_limit @ivan", "/alter_limit @ivan -1", "/alter_limit @ivan many", "/alter_limit"} {
		want(t, e.private(tgAdmin, bad), "/alter_limit #7 40")
	}
	want(t, e.private(tgAdmin, "/alter_limit @ivan -5"), "cannot be negative (-5)")
	want(t, e.private(tgAdmin, "/alter_limit @ivan 1e3"), "1e3 is not a number")
	want(t, e.private(tgAdmin, "/alter_limit @ivan 99999999999999999999"), "the limit is at most 10000")
	want(t, e.private(tgAdmin, "/alter_limit @ivan 50000"), "the limit is at most 10000")
	if u := e.userByTG(tgUser.ID); u.Limit != 40 {
		t.Errorf("a bad /alter_limit changed the limit to %d", u.Limit)
	}

	// /status U, /list, /search
	want(t, e.private(tgAdmin, "/status @ivan"), "<b>#"+uid+"</b>", "approved", "0 of 40")
	replies = e.private(tgAdmin, "/list")
	want(t, replies, "#"+uid, "0/40 ✓")
	for _, r := range replies {
		if strings.Contains(r, "bob_blocked") || strings.Contains(r, fmt.Sprintf("#%d ", e.blocked.ID)) {
			t.Errorf("/list shows a blocked user: %s", r)
		}
	}
	want(t, e.private(tgAdmin, "/list all"), fmt.Sprintf("#%d Bob", e.blocked.ID), "⛔")
	if _, err := e.st.UpdateUser(e.user.ID, func(_ *store.Tx, u *store.User) error {
		u.FirstName, u.LastName, u.Org = "Ivan", "Petrov", "ipc"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want(t, e.private(tgAdmin, "/search petrov"), "#"+uid+" Ivan Petrov @ivan, Institute of Physical Chemistry")
	want(t, e.private(tgAdmin, "/search , ivan, ipc ras"), "#"+uid+" Ivan Petrov")
	want(t, e.private(tgAdmin, "/search nobody"), "Nobody matches")
	want(t, e.private(tgAdmin, "/search"), "/search last name")

	// /stats with no calculations, then with some.
	want(t, e.private(tgAdmin, "/stats"), "No calculations in the last 30 days")
	for i := range 2 {
		_, replies := e.sendFile(tgUser, fmt.Sprintf("job%d.sh", i), []byte("echo hi\n"), "")
		_ = replies
	}
	waitQuiet(t, e, e.user, 2)
	replies = e.private(tgAdmin, "/stats")
	want(t, replies, "Calculations and core-hours in the last 30 days", "By organization:", "Institute of Physical Chemistry: 2 calculations, ",
		"By user:", "Ivan Petrov (IPC RAS): 2 calculations, ")
	want(t, e.private(tgAdmin, "/stats 2020-01"), "No calculations in January 2020.")
	want(t, e.private(tgAdmin, "/stats yesterday"), "/stats 7d")
	photos := e.srv.Calls("sendPhoto")
	if len(photos) != 1 || !photos[0].OK() {
		t.Fatalf("sendPhoto calls: %d", len(photos))
	}
	pic := photos[0].Files["photo"]
	if _, err := pngDecode(pic.Data); err != nil || pic.Name != "stats.png" {
		t.Errorf("the chart is not a PNG named stats.png: %v %q", err, pic.Name)
	}
	if !strings.Contains(photos[0].Params["caption"], "Calculations and core-hours in the last 30 days (") {
		t.Errorf("caption %q", photos[0].Params["caption"])
	}

	// Admin /cancel of anyone's calculation.
	_, _ = e.sendFile(tgUser, "long.sh", []byte("sleep 30\n"), "")
	calcs := e.calcsOf(e.user)
	id := calcs[0].ID
	waitState(t, e.st, id, store.StateRunning)
	// /jobs all: everyone's active calculations, for admins only.
	want(t, e.private(tgAdmin, "/jobs all"), "Active calculations of all users (1)", "long.sh", "Ivan Petrov @ivan")
	for _, r := range e.private(tgUser, "/jobs all") {
		if strings.Contains(r, "all users") {
			t.Errorf("a user sees everyone's calculations: %s", r)
		}
	}
	want(t, e.private(tgAdmin, fmt.Sprintf("/cancel %d", id)), fmt.Sprintf("Stopping calculation #%d", id))
	// Its owner is told by whom.
	e.waitSent(tgUser.ID, fmt.Sprintf("Your calculation #%d (long.sh) was stopped by the admin Ada Admin @ada_admin", id))
	waitState(t, e.st, id, store.StateNotified)
	want(t, e.private(tgAdmin, "/jobs all"), "No calculation is active now")
}

// zipHas reports whether the zip archive holds a file named name containing part.
func zipHas(data []byte, name, part string) bool {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return false
	}
	for _, f := range zr.File {
		if filepath.Base(f.Name) != name {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return false
		}
		body, err := io.ReadAll(rc)
		rc.Close()
		return err == nil && strings.Contains(string(body), part)
	}
	return false
}

// waitQuiet waits until the user's n calculations are all notified.
func waitQuiet(t *testing.T, e *env, u store.User, n int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		cs := e.calcsOf(u)
		done := 0
		for _, c := range cs {
			if c.State.Final() {
				done++
			}
		}
		if len(cs) == n && done == n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("calculations of user %d not all final within %v", u.ID, waitLimit)
}

func TestE2EDocumentAccepted(t *testing.T) {
	e := newEnv(t)
	script := []byte("echo 'H2O energy -76.4' > result.out\necho done\n")
	upd, replies := e.sendFile(tgUser, "h2o.sh", script, "")
	_ = replies
	calcs := e.calcsOf(e.user)
	if len(calcs) != 1 {
		t.Fatalf("%d calculations", len(calcs))
	}
	c := calcs[0]
	if c.UpdateID != upd || c.ChatID != tgUser.ID || c.TelegramID != tgUser.ID || c.Cluster != "loc" || c.Program != "sh" ||
		!slices.Equal(c.Argv, []string{"sh", "./h2o.sh"}) || c.InputName != "h2o.sh" {
		t.Errorf("calculation %+v", c)
	}
	if c.LocalDir != filepath.Join(e.dl, c.Folder) || !strings.HasSuffix(c.Folder, fmt.Sprintf("_%d_%d_h2o", e.user.ID, upd)) {
		t.Errorf("folder %q in %q", c.Folder, c.LocalDir)
	}
	got, err := os.ReadFile(filepath.Join(c.LocalDir, "h2o.sh"))
	if err != nil || !bytes.Equal(got, script) {
		t.Errorf("downloaded input: %q %v", got, err)
	}
	// Only hpcbot's user may read what users send (a 0700 folder, a 0600 file).
	for path, want := range map[string]os.FileMode{c.LocalDir: 0o700 | os.ModeDir, filepath.Join(c.LocalDir, "h2o.sh"): 0o600} {
		if fi, err := os.Stat(path); err != nil || fi.Mode() != want {
			t.Errorf("%s: mode %v (%v), want %v", path, fi.Mode(), err, want)
		}
	}
	e.waitSent(tgUser.ID, fmt.Sprintf("Calculation <b>#%d</b> accepted: <code>sh</code> on loc", c.ID), fmt.Sprintf("/cancel %d", c.ID))
	// The log chat gets the input itself, with who sent it and the exact command.
	fwd := e.waitSent(logChat, fmt.Sprintf("#%d:", c.ID), "@ivan", "h2o.sh", "<code>sh ./h2o.sh</code>")
	if fwd.Method != "sendDocument" || fwd.Params["document"] == "" {
		t.Errorf("log chat copy: %s %v", fwd.Method, fwd.Params)
	}
	// It runs, and the results come back.
	waitState(t, e.st, c.ID, store.StateNotified)
	e.waitSent(tgUser.ID, fmt.Sprintf("Calculation <b>#%d</b> (h2o.sh) finished: succeeded, exit code 0, run time", c.ID), "files below")
	e.srv.Wait(t, func(calls []tgtest.Call) bool {
		for _, call := range calls {
			if call.Method == "sendDocument" && call.OK() && call.ChatID() == tgUser.ID {
				for _, f := range call.Files {
					if f.Name == "result.out" && strings.Contains(string(f.Data), "-76.4") {
						return true
					}
					if f.Name == "h2o_results.zip" && zipHas(f.Data, "result.out", "-76.4") {
						return true
					}
				}
			}
		}
		return false
	})
	e.waitSent(logChat, fmt.Sprintf("#%d (", c.ID), "finished: succeeded")

	// A caption chooses the program and its arguments.
	_, _ = e.sendFile(tgUser, "fail.sh", []byte("echo oops >&2\nexit 3\n"), "sh -e {}")
	calcs = e.calcsOf(e.user)
	c = calcs[0]
	if !slices.Equal(c.Argv, []string{"sh", "-e", "./fail.sh"}) {
		t.Errorf("argv from caption: %q", c.Argv)
	}
	waitState(t, e.st, c.ID, store.StateNotified)
	e.waitSent(tgUser.ID, fmt.Sprintf("<b>#%d</b> (fail.sh) finished: failed, exit code 3", c.ID))
}

func TestE2EDocumentRefused(t *testing.T) {
	e := newEnv(t)
	routes := func() int32 { return e.calcs.routes.Load() }
	// Names: refused before anything else is asked.
	for _, name := range []string{"../evil.sh", "/etc/x.sh", "my file.sh", "it's.sh", `a"b.sh`, "a\nb.sh", "noext", "$(id).sh",
		"a;b.sh", "`id`.sh", ".hidden.sh", "файл.sh"} {
		_, replies := e.sendFile(tgUser, name, []byte("echo\n"), "")
		want(t, replies, "cannot take the file name", "Rename the file")
	}
	// A name starting with a dash would be an option to the program
	// (`python3 -mhttp.server`): refused with the reason, whatever the caption.
	for _, name := range []string{"-mhttp.server", "-e.sh", "--help.sh"} {
		_, replies := e.sendFile(tgUser, name, []byte("echo\n"), "sh {}")
		want(t, replies, "starts with a dash", "read by the program as an option", "Rename the file")
	}
	if n := routes(); n != 0 {
		t.Errorf("Route was asked %d times for bad names", n)
	}
	// Captions the runner refuses: nothing reaches a shell.
	captions := map[string]string{
		"sh {} $(rm -rf ~)":   "is not allowed",
		"sh {}; rm -rf ~":     "is not allowed",
		"sh `id` {}":          "is not allowed",
		"sh {} && reboot":     "is not allowed",
		"sh {} 'unterminated": "cannot read the caption",
		"sh {} | tee /x":      "is not allowed",
		"orca {}":             "no program called orca",
		"sh -e":               "must contain <code>{}</code>",
	}
	for caption, part := range captions {
		_, replies := e.sendFile(tgUser, "ok.sh", []byte("echo\n"), caption)
		want(t, replies, part)
		for _, r := range replies {
			if strings.Contains(r, "<script") || strings.Contains(r, "$(rm -rf ~)<") {
				t.Errorf("unescaped: %s", r)
			}
		}
	}
	// A newline in the caption.
	_, replies := e.sendFile(tgUser, "ok.sh", []byte("echo\n"), "sh {}\nrm -rf ~")
	if len(replies) == 0 || strings.Contains(replies[0], "accepted") {
		t.Errorf("a caption with a newline: %q", replies)
	}
	// Unknown extension, oversize file.
	_, replies = e.sendFile(tgUser, "h2o.inp", []byte("! B3LYP\n"), "")
	want(t, replies, "No program takes files ending in .inp", "/help")
	_, replies = e.sendFile(tgUser, "big.sh", bytes.Repeat([]byte("#"), 5000), "")
	want(t, replies, "The file is 4.9 kB, more than the limit of 3.9 kB")
	if calcs := e.calcsOf(e.user); len(calcs) != 0 {
		t.Fatalf("refused files created %d calculations", len(calcs))
	}
	// Blocked, unregistered, and a file in a group.
	_, replies = e.sendFile(tgBlocked, "ok.sh", []byte("echo\n"), "")
	want(t, replies, "blocked")
	_, replies = e.sendFile(tgStranger, "ok.sh", []byte("echo\n"), "")
	want(t, replies, "not registered")
	e.waitSent(logChat, "Unregistered", "@eve", "ok.sh")
	before := len(e.srv.Sent(groupChat.ID))
	id := e.srv.PushDocument(tgUser, groupChat, "ok.sh", []byte("echo\n"), "")
	e.handled(id)
	if got := e.srv.Sent(groupChat.ID)[before:]; len(got) != 0 {
		t.Errorf("answered a file in a group: %v", sentTexts(got))
	}
	if n := len(e.calcsOf(e.user)) + len(e.calcsOf(e.blocked)); n != 0 {
		t.Fatalf("%d calculations", n)
	}

	// The quota: 3 calculations, the fourth is refused.
	for i := range 3 {
		_, replies := e.sendFile(tgUser, fmt.Sprintf("q%d.sh", i), []byte("echo\n"), "")
		_ = replies
	}
	if n := len(e.calcsOf(e.user)); n != 3 {
		t.Fatalf("%d calculations, want 3", n)
	}
	_, replies = e.sendFile(tgUser, "q4.sh", []byte("echo\n"), "")
	want(t, replies, "used all 3 calculations of the last 30 days", "raise your limit")
	if n := len(e.calcsOf(e.user)); n != 3 {
		t.Errorf("quota exceeded: %d calculations", n)
	}
}

func TestE2ESubmitRate(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Bot.SubmitsPerMinute = 2 })
	for i := range 2 {
		_, _ = e.sendFile(tgAdmin, fmt.Sprintf("r%d.sh", i), []byte("echo\n"), "")
	}
	_, replies := e.sendFile(tgAdmin, "r3.sh", []byte("echo\n"), "")
	want(t, replies, "at most 2 files a minute", "Wait a minute")
	admin := e.userByTG(tgAdmin.ID)
	if !admin.Approved || admin.Limit != 7 {
		t.Errorf("the admin was registered as %+v", admin)
	}
	if n := len(e.calcsOf(admin)); n != 2 {
		t.Errorf("%d calculations, want 2", n)
	}
}

func TestE2ERedeliveredUpdate(t *testing.T) {
	e := newEnv(t)
	doc := e.srv.AddFile("twice.sh", []byte("echo twice\n"))
	u := e.srv.DocumentUpdate(tgUser, tgtest.Private(tgUser), doc, "")
	id := e.srv.Push(u)
	u.UpdateID = id
	raw, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.PushRaw(raw) // Telegram hands the same update over again
	e.handled(id)
	calcs := e.calcsOf(e.user)
	if len(calcs) != 1 {
		t.Fatalf("%d calculations from one update", len(calcs))
	}
	waitState(t, e.st, calcs[0].ID, store.StateNotified)
	e.quiesce()

	// The handler runs again for the same update, as after a crash before the
	// update was marked done: no second calculation, no second message.
	var tu tele.Update
	if err := json.Unmarshal(raw, &tu); err != nil {
		t.Fatal(err)
	}
	before := len(e.srv.Sent(tgUser.ID)) + len(e.srv.Sent(logChat))
	e.bot.tb.ProcessUpdate(tu)
	e.quiesce()
	if n := len(e.calcsOf(e.user)); n != 1 {
		t.Errorf("%d calculations after the handler ran twice", n)
	}
	if after := len(e.srv.Sent(tgUser.ID)) + len(e.srv.Sent(logChat)); after != before {
		t.Errorf("%d more messages after the handler ran twice: %q", after-before, sentTexts(e.srv.Sent(tgUser.ID)))
	}
	accepted := 0
	for _, text := range sentTexts(e.srv.Sent(tgUser.ID)) {
		if strings.Contains(text, "accepted") {
			accepted++
		}
	}
	if accepted != 1 {
		t.Errorf("%d 'accepted' replies, want 1", accepted)
	}
}

// Two files of the same name from one user in the same second are two
// calculations with two folders: neither input nor results are shared.
func TestE2ESameNameSameSecond(t *testing.T) {
	e := newEnv(t)
	chat := tgtest.Private(tgUser)
	bodies := []string{"echo first-input > result.out\n", "echo second-input > result.out\n"}
	var ids []int64
	date := time.Now().Unix()
	for _, body := range bodies {
		u := e.srv.DocumentUpdate(tgUser, chat, e.srv.AddFile("same.sh", []byte(body)), "")
		u.Message.Date = date
		ids = append(ids, e.srv.Push(u))
	}
	for _, id := range ids {
		e.handled(id)
	}
	calcs := e.calcsOf(e.user)
	if len(calcs) != 2 {
		t.Fatalf("%d calculations, want 2", len(calcs))
	}
	if calcs[0].Folder == calcs[1].Folder || calcs[0].LocalDir == calcs[1].LocalDir {
		t.Fatalf("two calculations share the folder %q", calcs[0].Folder)
	}
	marker := map[uint64]string{}
	for _, c := range calcs {
		i := slices.Index(ids, c.UpdateID)
		if i < 0 {
			t.Fatalf("calc %d from update %d, not one of %v", c.ID, c.UpdateID, ids)
		}
		marker[c.ID] = []string{"first-input", "second-input"}[i]
		if got, err := os.ReadFile(filepath.Join(c.LocalDir, "same.sh")); err != nil || string(got) != bodies[i] {
			t.Errorf("calc %d input: %q %v, want %q", c.ID, got, err, bodies[i])
		}
	}
	for _, c := range calcs {
		c = waitState(t, e.st, c.ID, store.StateNotified)
		got, err := os.ReadFile(filepath.Join(c.LocalDir, "result.out"))
		if err != nil || strings.TrimSpace(string(got)) != marker[c.ID] {
			t.Errorf("calc %d result: %q %v, want %s", c.ID, got, err, marker[c.ID])
		}
		e.waitSent(tgUser.ID, fmt.Sprintf("<b>#%d</b> (same.sh) finished: succeeded", c.ID))
	}
	// Each "finished" message is followed by its own result file (one chat's
	// messages go out in order).
	e.quiesce()
	calls := e.srv.Sent(tgUser.ID)
	for id, mark := range marker {
		at := slices.IndexFunc(calls, func(c tgtest.Call) bool {
			return strings.Contains(c.Text(), fmt.Sprintf("<b>#%d</b> (same.sh) finished", id))
		})
		if at < 0 {
			t.Fatalf("no finished message for calc %d", id)
		}
		i := slices.IndexFunc(calls[at:], func(c tgtest.Call) bool { return c.Method == "sendDocument" })
		if i < 0 {
			t.Fatalf("no result file after calc %d's finished message", id)
		}
		found := false
		for _, f := range calls[at+i].Files {
			if (f.Name == "result.out" && strings.Contains(string(f.Data), mark)) || zipHas(f.Data, "result.out", mark) {
				found = true
			}
		}
		if !found {
			t.Errorf("calc %d's result file does not hold %s: %v", id, mark, calls[at+i].Files)
		}
	}
}

func TestE2EFloodControl(t *testing.T) {
	e := newEnv(t)
	// Telegram answers the next sends with 429, retry after 1 s.
	e.srv.Inject(tgtest.TooManyRequests("sendMessage", 6, 1))
	var wg sync.WaitGroup
	ids := make(chan int64, 3)
	for _, u := range []tgtest.User{tgUser, tgRuUser, tgAdmin} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids <- e.srv.PushText(u, tgtest.Private(u), "/status")
		}()
	}
	wg.Wait()
	close(ids)
	for id := range ids {
		e.handled(id)
	}
	for _, u := range []tgtest.User{tgUser, tgRuUser, tgAdmin} {
		if got := e.srv.Sent(u.ID); len(got) != 1 {
			t.Errorf("chat %d got %d messages, want exactly 1: %q", u.ID, len(got), sentTexts(got))
		}
	}
	// Every retry came at least retry_after after the 429 of its chat.
	calls := e.srv.Calls("sendMessage")
	limited := 0
	for i, c := range calls {
		if c.Code != 429 {
			continue
		}
		limited++
		for _, next := range calls[i+1:] {
			if next.ChatID() == c.ChatID() {
				if gap := next.Time.Sub(c.Time); gap < time.Second {
					t.Errorf("chat %d retried %v after a 429 with retry_after 1 s", c.ChatID(), gap)
				}
				break
			}
		}
	}
	if limited != 6 {
		t.Errorf("%d answers were 429, want 6", limited)
	}
}

func TestE2EGroups(t *testing.T) {
	e := newEnv(t)
	// Added by someone who is not an admin: says so, leaves, the log chat hears.
	lab := tgtest.Group(-600, "Random <group>")
	e.handled(e.srv.Push(e.srv.MyChatMemberUpdate(tgUser, lab, "left", "member")))
	want(t, sentTexts(e.srv.Calls("sendMessage")), "Only the admin", "may add me to a group")
	if !e.srv.Left(lab.ID) {
		t.Error("the bot did not leave a group a non-admin added it to")
	}
	e.waitSent(logChat, "not an admin, added me to Random &lt;group&gt; (-600)")
	// Added by an admin: stays; the log chat hears.
	e.handled(e.srv.Push(e.srv.MyChatMemberUpdate(tgAdmin, groupChat, "left", "member")))
	if e.srv.Left(groupChat.ID) {
		t.Error("left a group an admin added it to")
	}
	e.waitSent(logChat, "@ada_admin", "added me to Chem group")
	// Removed from a group; blocked by a user.
	e.handled(e.srv.Push(e.srv.MyChatMemberUpdate(tgAdmin, groupChat, "member", "kicked")))
	e.waitSent(logChat, "removed me from Chem group")
	e.handled(e.srv.Push(e.srv.MyChatMemberUpdate(tgUser, tgtest.Private(tgUser), "member", "kicked")))
	e.waitSent(logChat, "@ivan", "blocked the bot")
}

func TestE2ELogChatMigrates(t *testing.T) {
	e := newEnv(t)
	old := tgtest.Group(logChat, "Log")
	const super = int64(-1001234567)
	e.handled(e.srv.Push(e.srv.MigrationUpdate(tgAdmin, old, super)))
	e.waitSent(super, "became a supergroup", fmt.Sprint(super), "bot.log_chat_id")
	if v, ok, _ := e.st.Value(kvLogChat); !ok || v != fmt.Sprint(logChat, " ", super) {
		t.Errorf("stored log chat %q %v", v, ok)
	}
	// What follows goes to the supergroup.
	e.private(tgStranger, "hello")
	e.waitSent(super, "Unregistered", "@eve")
}

func TestE2ENoTokenInLogs(t *testing.T) {
	e := newEnv(t)
	// Failures whose errors name the URL, which holds the token.
	e.srv.Inject(tgtest.Drop("getFile", 1))
	e.srv.Inject(tgtest.ServerError("sendMessage", 2))
	e.srv.Inject(tgtest.Drop("sendMessage", 1))
	e.srv.Inject(tgtest.Drop("getUpdates", 1))
	e.srv.Inject(tgtest.Drop("leaveChat", 1))
	_, replies := e.sendFile(tgUser, "x.sh", []byte("echo\n"), "")
	want(t, replies, "could not download the file")
	e.handled(e.srv.Push(e.srv.MyChatMemberUpdate(tgUser, tgtest.Group(-700, "G"), "left", "member")))
	e.private(tgUser, "/status")
	e.quiesce()
	logs := e.logs.String()
	if !strings.Contains(logs, "getFile") || !strings.Contains(logs, "leave chat") {
		t.Fatalf("the failures were not logged:\n%s", logs)
	}
	if strings.Contains(logs, e.srv.Token) || strings.Contains(logs, strings.SplitN(e.srv.Token, ":", 2)[1]) {
		t.Errorf("the token is in the logs:\n%s", logs)
	}
	for _, text := range e.logTexts() {
		if strings.Contains(text, e.srv.Token) {
			t.Errorf("the token reached the log chat: %s", text)
		}
	}
	e.waitSent(logChat, "Failure while handling x.sh")
}

func TestE2EInfrastructureFailures(t *testing.T) {
	e := newEnv(t)
	// No runner answers (plugins down): the user is told to try later, the log chat why.
	down := fmt.Errorf("route x.sh: %w", errors.New("cluster loc: plugin exited"))
	e.calcs.routeErr.Store(&down)
	_, replies := e.sendFile(tgUser, "x.sh", []byte("echo\n"), "")
	want(t, replies, "cannot take files right now")
	e.waitSent(logChat, "Failure while handling x.sh", "plugin exited")
	e.calcs.routeErr.Store(nil)
	if n := len(e.calcsOf(e.user)); n != 0 {
		t.Fatalf("%d calculations", n)
	}
	// Cancel fails for an infrastructure reason.
	_, _ = e.sendFile(tgUser, "s.sh", []byte("sleep 30\n"), "")
	id := e.calcsOf(e.user)[0].ID
	failing := errors.New("cancel job on loc: ssh: connection refused")
	e.calcs.cancelErr.Store(&failing)
	want(t, e.private(tgUser, fmt.Sprintf("/cancel %d", id)), fmt.Sprintf("could not stop calculation #%d", id))
	e.waitSent(logChat, fmt.Sprintf("/cancel %d", id), "connection refused")
	e.calcs.cancelErr.Store(nil)
	want(t, e.private(tgUser, fmt.Sprintf("/cancel %d", id)), fmt.Sprintf("Stopping calculation #%d", id))
	waitState(t, e.st, id, store.StateNotified)
}

// Every command from every kind of sender, in a private chat: each gets the
// answer meant for them.
func TestE2ECommandMatrix(t *testing.T) {
	e := newEnv(t)
	uid := fmt.Sprint(e.user.ID)
	const (
		help     = "I run calculations"
		unreg    = "You are not registered yet"
		blocked  = "Your account is blocked"
		notAdmin = "Only admins may use"
	)
	adminCmds := []string{"/approve #" + uid, "/block #" + uid, "/unblock #" + uid, "/list", "/status #" + uid,
		"/search Petrov", "/alter_limit #" + uid + " 3", "/stats", "/groups", "/clusters", "/drain loc", "/undrain loc"}
	type row struct {
		cmd                          string
		user, admin, stranger, block string
	}
	rows := []row{
		{"/start", help, help, unreg, help},
		{"/help", help, "/approve U", unreg, help},
		{"/access", "already have access", "already have access", unreg, blocked},
		{"/upd", "Tell me who you are", "Tell me who you are", unreg, blocked},
		{"/upd имя: Иван", "Saved: Иван", "already approved", unreg, blocked},
		{"/status", "Calculations: 0 of 3", "Calculations: 0 of 7", unreg, "Status: blocked"},
		{"/jobs", "no calculations yet", "no calculations yet", unreg, "no calculations yet"},
		{"/cancel 999", "no calculation #999", "no calculation #999", unreg, "no calculation #999"},
		{"/nonsense", "Send /help", "Send /help", unreg, "Send /help"},
	}
	for _, c := range adminCmds {
		rows = append(rows, row{c, notAdmin, "", notAdmin, notAdmin})
	}
	senders := []struct {
		u    tgtest.User
		want func(row) string
	}{
		{tgUser, func(r row) string { return r.user }},
		{tgStranger, func(r row) string { return r.stranger }},
		{tgBlocked, func(r row) string { return r.block }},
		{tgAdmin, func(r row) string { return r.admin }},
	}
	for _, s := range senders {
		for _, r := range rows {
			replies := e.private(s.u, r.cmd)
			if len(replies) == 0 {
				t.Errorf("%s from %s: no answer", r.cmd, s.u.Username)
				continue
			}
			if w := s.want(r); w != "" {
				want(t, replies, w)
			}
		}
	}
	if u := e.userByTG(tgUser.ID); u.FirstName != "Иван" || u.Limit != 3 {
		t.Errorf("user after the matrix: %+v", u)
	}
}

func TestE2EWrongToken(t *testing.T) {
	srv := tgtest.New(t)
	st, err := store.Open(filepath.Join(t.TempDir(), "hpcbot.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	logs := &syncBuffer{}
	b, err := New(Options{Bot: Config{Token: "999:WrongTokenValue", APIURL: srv.URL}}, st, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	err = b.Run(context.Background(), &calcsProbe{})
	if err == nil || !strings.Contains(err.Error(), "check bot.token") {
		t.Fatalf("Run with a refused token: %v", err)
	}
	if strings.Contains(err.Error()+logs.String(), "WrongTokenValue") {
		t.Errorf("the token leaked: %v\n%s", err, logs)
	}
}

// The sender learns from Telegram's answer that the log chat became a
// supergroup: the log chat follows it.
func TestE2ELogChatMigratedOnSend(t *testing.T) {
	e := newEnv(t)
	const super = int64(-1009876)
	e.srv.Inject(tgtest.Fault{ChatID: logChat, Code: 400, Description: "Bad Request: group chat was upgraded to a supergroup chat", MigrateTo: super})
	e.private(tgStranger, "hello")
	e.waitSent(super, "Unregistered", "@eve")
	if v, ok, _ := e.st.Value(kvLogChat); !ok || v != fmt.Sprint(logChat, " ", super) {
		t.Errorf("stored log chat %q %v", v, ok)
	}
	if got := e.bot.logChatID.Load(); got != super {
		t.Errorf("log chat %d", got)
	}
}

// An admin changes the user while their file is being taken in: the store's
// check, in the transaction that creates the calculation, has the last word.
func TestE2EUserChangedDuringIntake(t *testing.T) {
	e := newEnv(t)
	set := func(f func(*store.User)) {
		hook := func() {
			if _, err := e.st.UpdateUser(e.user.ID, func(_ *store.Tx, u *store.User) error { f(u); return nil }); err != nil {
				t.Error(err)
			}
		}
		e.calcs.onRoute.Store(&hook)
	}
	set(func(u *store.User) { u.Limit = 0 })
	_, replies := e.sendFile(tgUser, "late.sh", []byte("echo\n"), "")
	want(t, replies, "used all 0 calculations")
	if _, err := e.st.UpdateUser(e.user.ID, func(_ *store.Tx, u *store.User) error { u.Limit = 3; return nil }); err != nil {
		t.Fatal(err)
	}
	set(func(u *store.User) { u.Blocked = true })
	_, replies = e.sendFile(tgUser, "late.sh", []byte("echo\n"), "")
	want(t, replies, "Your account is blocked")
	e.calcs.onRoute.Store(nil)
	if n := len(e.calcsOf(e.user)); n != 0 {
		t.Errorf("%d calculations", n)
	}
	if entries := leftInDownloadPath(t, e.dl); len(entries) != 0 {
		t.Errorf("inputs left in download_path: %v", entries)
	}
}

// A long answer arrives whole, in several messages under Telegram's limit.
func TestE2ELongListIsSplit(t *testing.T) {
	e := newEnv(t)
	for i := range 150 {
		if _, err := e.st.CreateUser(store.User{FirstName: fmt.Sprintf("Person%03d", i), LastName: "With-A-Rather-Long-Surname", Org: "ipc", Limit: 5}); err != nil {
			t.Fatal(err)
		}
	}
	replies := e.private(tgAdmin, "/list")
	if len(replies) < 2 {
		t.Fatalf("%d messages for 150 users", len(replies))
	}
	all := strings.Join(replies, "\n")
	for i := range 150 {
		if !strings.Contains(all, fmt.Sprintf("Person%03d With-A-Rather-Long-Surname", i)) {
			t.Errorf("Person%03d missing", i)
		}
	}
	for _, r := range replies {
		if n := len([]rune(r)); n > 4096 {
			t.Errorf("a message of %d characters", n)
		}
	}
}

// A user who blocked the bot stops nothing: their messages are dropped (not
// retried for ever), everyone else is served.
func TestE2EUserBlockedTheBot(t *testing.T) {
	e := newEnv(t)
	e.srv.Inject(tgtest.Blocked(tgUser.ID))
	_, _ = e.sendFile(tgUser, "quiet.sh", []byte("echo\n"), "")
	c := e.calcsOf(e.user)
	if len(c) != 1 {
		t.Fatalf("%d calculations", len(c))
	}
	waitState(t, e.st, c[0].ID, store.StateNotified)
	e.quiesce() // the messages for the user are given up, not pending
	want(t, e.private(tgRuUser, "/status"), "Расчёты: 0 из 3")
	e.waitSent(logChat, fmt.Sprintf("#%d", c[0].ID), "finished")
}

// TestE2EReplyIsStoredBeforeItsUpdateIsDone: a handler does not wait for
// Telegram, so its reply must be in the store before the update is marked
// handled; otherwise a kill -9 in between would lose it (the update is not
// handled again). Telegram refuses every message to the user here: the
// update ends handled with its reply waiting in the outbox, handling the
// update again queues no second reply, and once Telegram takes messages again
// the reply arrives once.
func TestE2EReplyIsStoredBeforeItsUpdateIsDone(t *testing.T) {
	e := newEnv(t)
	e.srv.Inject(tgtest.Fault{Method: "sendMessage", ChatID: tgUser.ID, Code: 500, Description: "Internal Server Error"})
	u := e.srv.TextUpdate(tgUser, tgtest.Private(tgUser), "/status")
	id := e.srv.Push(u)
	u.UpdateID = id
	replies := func() []store.OutItem {
		out, err := e.st.OutboxPending()
		if err != nil {
			t.Fatal(err)
		}
		var mine []store.OutItem
		for _, it := range out {
			if strings.HasPrefix(it.Key, fmt.Sprintf("update/%d/reply/", id)) {
				mine = append(mine, it)
			}
		}
		return mine
	}
	deadline := time.Now().Add(waitLimit)
	for {
		pending, err := e.st.InboxPending()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(e.srv.Unconfirmed(), id) && !slices.ContainsFunc(pending, func(it store.InboxItem) bool { return it.UpdateID == id }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("update %d not handled", id)
		}
		time.Sleep(5 * time.Millisecond)
	}
	got := replies()
	if len(got) != 1 || !strings.Contains(got[0].Msg.Params[paramText], "@ivan 2002") {
		t.Fatalf("outbox after the update was handled: %+v, want the /status reply", got)
	}
	raw, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	var tu tele.Update
	if err := json.Unmarshal(raw, &tu); err != nil {
		t.Fatal(err)
	}
	e.bot.tb.ProcessUpdate(tu) // as after a crash before the update was marked done
	if n := len(replies()); n != 1 {
		t.Errorf("%d replies queued after the handler ran twice, want 1", n)
	}
	e.srv.ClearFaults()
	e.bot.wakeOut()
	e.waitSent(tgUser.ID, "@ivan 2002")
	e.quiesce()
	n := 0
	for _, c := range e.srv.Sent(tgUser.ID) {
		if c.OK() && strings.Contains(c.Text(), "@ivan 2002") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the reply arrived %d times, want once", n)
	}
}
