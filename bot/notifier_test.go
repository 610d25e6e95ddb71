package bot

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tele "gopkg.in/telebot.v3"

	"hpcbot/plugins"
	"hpcbot/scheduler"
	"hpcbot/store"
)

// offlineBot is a Bot that is not running: Notify and the log chat only queue
// in the outbox.
func offlineBot(t *testing.T, level string, opts ...func(*Options)) (*Bot, *store.Store, *bytes.Buffer) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "hpcbot.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	o := Options{Bot: Config{Token: "1:secret", Admins: []int64{1}, LogChatID: -42, LogChatLevel: level}, Language: "en"}
	for _, f := range opts {
		f(&o)
	}
	var logs bytes.Buffer
	b, err := New(o, st, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return b, st, &logs
}

func outbox(t *testing.T, st *store.Store) map[string]store.OutMsg {
	t.Helper()
	items, err := st.OutboxPending()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.OutMsg{}
	for _, it := range items {
		out[it.Key] = it.Msg
	}
	return out
}

func TestNotify(t *testing.T) {
	b, st, _ := offlineBot(t, "info")
	u, _, err := st.RegisterUser(store.TelegramAccount{TelegramID: 77, Username: "masha", DisplayName: "Мария", LanguageCode: "ru"}, 5)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	exit := 2
	calc := store.Calculation{ID: 42, UserID: u.ID, TelegramID: 77, ChatID: 77, InputName: "h2o.inp", Cluster: "hpc", JobID: "1234",
		State: store.StateDelivered, ExitCode: &exit, History: []store.Transition{
			{State: store.StateReceived, At: t0}, {State: store.StateSubmitted, At: t0.Add(time.Minute)},
			{State: store.StateRunning, At: t0.Add(2 * time.Minute)}, {State: store.StateFailed, At: t0.Add(92 * time.Minute)},
			{State: store.StateRetrieved, At: t0.Add(93 * time.Minute)}, {State: store.StateDelivered, At: t0.Add(94 * time.Minute)}}}
	ctx := context.Background()
	n := scheduler.Notification{Key: "calc/42/finished", Event: scheduler.EventFinished, Calc: calc, Outcome: store.StateFailed,
		Files: []string{"/tmp/x/h2o_results.zip"}, Skipped: []store.SkippedFile{
			{Text: "big.chk: too large"},                      // a record from before skip codes
			{Text: "odd.bin: some reason of an older plugin"}, // shown as it was recorded
			{Path: "link.out", Code: plugins.SkipLink},
			{Path: "x.dat", Code: plugins.SkipOther},
			{Path: "y.dat", Code: "from_the_future"}}, Tail: "SCF <not> converged\n"}
	for range 3 { // repeated calls queue nothing more
		if err := b.Notify(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	got := outbox(t, st)
	if len(got) != 2 {
		t.Fatalf("outbox: %v", got)
	}
	msg := got["calc/42/finished"]
	text := msg.Params[paramText]
	for _, part := range []string{"Расчёт <b>#42</b> (h2o.inp) закончился: с ошибкой, код выхода 2, время счёта 1 ч 30 мин",
		"Результаты в файлах ниже", "<pre>SCF &lt;not&gt; converged</pre>",
		"Не скачано: big.chk (больше предела для одного файла); odd.bin: some reason of an older plugin; " +
			"link.out (символическая ссылка, по ссылкам я не перехожу); x.dat (другая причина; администратор видит её в журнале бота); " +
			"y.dat (другая причина; администратор видит её в журнале бота)"} {
		if !strings.Contains(text, part) {
			t.Errorf("finished message lacks %q:\n%s", part, text)
		}
	}
	if strings.Contains(text, "too large") {
		t.Errorf("the Russian message shows an English reason:\n%s", text)
	}
	if msg.ChatID != 77 || len(msg.Files) != 1 || msg.Files[0] != "/tmp/x/h2o_results.zip" {
		t.Errorf("finished message %+v", msg)
	}
	if l := got["calc/42/finished/log"]; l.ChatID != -42 || !strings.Contains(l.Params[paramText], "#42 (Мария @masha)") ||
		!strings.Contains(l.Params[paramText], "finished: failed") {
		t.Errorf("log line %+v", l)
	}

	// Success with a link; an error with its reason and tail; waiting; cancelled.
	calc.ExitCode = new(int)
	cases := []struct {
		n     scheduler.Notification
		parts []string
	}{
		{scheduler.Notification{Key: "k1", Event: scheduler.EventFinished, Calc: calc, Outcome: store.StateSucceeded, Link: "https://cloud/s/AbC", Tail: "noise"},
			[]string{"успешно, код выхода 0", "Результаты: https://cloud/s/AbC"}},
		{scheduler.Notification{Key: "k2", Event: scheduler.EventError, Calc: calc, Code: scheduler.CodeSubmitRejected, Reason: "sbatch: error: invalid partition", Tail: "sbatch: error"},
			[]string{"не удалось запустить: планировщик кластера отклонил задачу", "<pre>sbatch: error</pre>"}},
		{scheduler.Notification{Key: "k3", Event: scheduler.EventWaiting, Calc: calc, Code: scheduler.CodeClusterUnreachable},
			[]string{"ждёт: кластер недоступен."}},
		{scheduler.Notification{Key: "k4", Event: scheduler.EventCancelled, Calc: calc}, []string{"отменён до запуска"}},
		{scheduler.Notification{Key: "k5", Event: scheduler.EventAccepted, Calc: calc}, []string{"на кластере hpc: задача 1234"}},
		{scheduler.Notification{Key: "k6", Event: scheduler.EventFinished, Calc: calc, Outcome: store.StateFailed, Code: scheduler.CodeTooLarge, Where: "/scratch/42"},
			[]string{"слишком велики", "остались на hpc в /scratch/42"}},
		{scheduler.Notification{Key: "k7", Event: scheduler.EventError, Calc: calc, Code: "brand_new_code"}, []string{"непредвиденная проблема"}},
		{scheduler.Notification{Key: "k8", Event: scheduler.EventDeliveryFailed, Calc: calc, Outcome: store.StateSucceeded, Code: scheduler.CodeCloudUnavailable, Reason: "503 Service Unavailable"},
			[]string{"закончился: успешно. Результаты сохранены у бота", "облачное хранилище недоступно. Я продолжаю попытки"}},
		{scheduler.Notification{Key: "k9", Event: scheduler.EventDeliveryFailed, Calc: calc, Outcome: store.StateSucceeded, Code: scheduler.CodeCloudRefused, Reason: "401 Unauthorized"},
			[]string{"закончился: успешно. Результаты сохранены у бота", "не приняло учётные данные бота. Администраторы уже знают"}},
	}
	for _, c := range cases {
		if err := b.Notify(ctx, c.n); err != nil {
			t.Fatal(err)
		}
		text := outbox(t, st)[c.n.Key].Params[paramText]
		for _, p := range c.parts {
			if !strings.Contains(text, p) {
				t.Errorf("%s lacks %q:\n%s", c.n.Key, p, text)
			}
		}
		if c.n.Key == "k1" && strings.Contains(text, "noise") {
			t.Errorf("a success quotes the error output: %s", text)
		}
	}
	if l := outbox(t, st)["k2/log"].Params[paramText]; !strings.Contains(l, "submit_rejected: sbatch: error: invalid partition") {
		t.Errorf("error log line: %s", l)
	}
	// The log chat says what to fix: retried, or held for the admin.
	if l := outbox(t, st)["k8/log"].Params[paramText]; !strings.Contains(l, "503 Service Unavailable") || !strings.Contains(l, "/redeliver 42") {
		t.Errorf("delivery failed log line: %s", l)
	}
	if l := outbox(t, st)["k9/log"].Params[paramText]; !strings.Contains(l, "401 Unauthorized") || !strings.Contains(l, "storage.password") ||
		!strings.Contains(l, "/redeliver 42") {
		t.Errorf("delivery held log line: %s", l)
	}
}

func TestLogChatLevel(t *testing.T) {
	b, st, _ := offlineBot(t, "error")
	b.toLogChat(slog.LevelInfo, "a", "log.new_user", P{"id": 1, "who": "x", "chat": "y"})
	b.toLogChat(slog.LevelWarn, "b", "log.unauthorized", P{"who": "x", "command": "/approve"})
	b.toLogChat(slog.LevelError, "c", "log.failure", P{"what": "x", "error": "y"})
	calc := store.Calculation{ID: 1, ChatID: 5}
	if err := b.Notify(context.Background(), scheduler.Notification{Key: "calc/1/accepted", Event: scheduler.EventAccepted, Calc: calc}); err != nil {
		t.Fatal(err)
	}
	if err := b.Notify(context.Background(), scheduler.Notification{Key: "calc/1/error", Event: scheduler.EventError, Calc: calc, Code: scheduler.CodeGaveUp}); err != nil {
		t.Fatal(err)
	}
	got := outbox(t, st)
	for _, k := range []string{"c", "calc/1/accepted", "calc/1/error", "calc/1/error/log"} {
		if _, ok := got[k]; !ok {
			t.Errorf("%s not queued", k)
		}
	}
	for _, k := range []string{"a", "b", "calc/1/accepted/log"} {
		if _, ok := got[k]; ok {
			t.Errorf("%s queued below log_chat_level error", k)
		}
	}
	// No log chat: nothing for it.
	b2, st2, _ := offlineBot(t, "debug", func(o *Options) { o.Bot.LogChatID = 0 })
	b2.toLogChat(slog.LevelError, "c", "log.failure", P{"what": "x", "error": "y"})
	if got := outbox(t, st2); len(got) != 0 {
		t.Errorf("queued without a log chat: %v", got)
	}
}

func TestRender(t *testing.T) {
	b, _, _ := offlineBot(t, "info")
	o, err := b.render(store.OutItem{Key: "k", Msg: store.OutMsg{ChatID: 5, Params: map[string]string{paramText: "hi"}, Files: []string{"/a/b.zip"}}})
	if err != nil || o.ChatID != 5 || o.Text != "hi" || len(o.Files) != 1 || o.Files[0].Path != "/a/b.zip" {
		t.Errorf("render: %+v %v", o, err)
	}
	o, err = b.render(store.OutItem{Key: "k", Msg: store.OutMsg{ChatID: 5, Params: map[string]string{paramText: "who sent", paramFileID: "F1"}}})
	if err != nil || o.Text != "" || o.Caption != "who sent" || len(o.Files) != 1 || o.Files[0].FileID != "F1" {
		t.Errorf("render with file id: %+v %v", o, err)
	}
	if _, err := b.render(store.OutItem{Key: "k", Msg: store.OutMsg{ChatID: 5}}); err == nil {
		t.Error("an empty item renders")
	}
}

func TestNewOptions(t *testing.T) {
	// Only admin_name: it is the contact shown to users and makes nobody an
	// admin (whoever holds the @username), and New warns that nobody is.
	b, _, logs := offlineBot(t, "info", func(o *Options) { o.Bot.Admins = nil; o.Bot.AdminName = "@Chem_Admin" })
	if b.isAdmin(teleUser(9, "chem_admin")) || b.isAdmin(teleUser(9, "Chem_Admin")) || b.isAdmin(teleUser(9, "")) {
		t.Error("admin_name made an admin")
	}
	if got := b.adminContact("en"); got != "@Chem_Admin" {
		t.Errorf("contact %q", got)
	}
	if !strings.Contains(logs.String(), "nobody has admin rights") {
		t.Errorf("no warning that nobody is an admin:\n%s", logs)
	}
	// By id; a username does not make an admin, even beside listed ids.
	b, _, _ = offlineBot(t, "info", func(o *Options) { o.Bot.AdminName = "@chem_admin" })
	if !b.isAdmin(teleUser(1, "")) || b.isAdmin(teleUser(2, "chem_admin")) {
		t.Error("admin by id")
	}
	if !b.isAdmin(teleUser(1, "anything")) || b.isAdmin(&tele.User{ID: 1, IsBot: true}) {
		t.Error("admin by id, and a bot is never one")
	}
	// The public Bot API caps downloads at 20 MB whatever max_file_size says.
	b, _, _ = offlineBot(t, "info", func(o *Options) { o.MaxFileSize = 100 << 20; o.Bot.APIURL = DefaultAPIURL })
	if n, public := b.maxInput(); n != 20<<20 || !public {
		t.Errorf("public API: %d %v", n, public)
	}
	b, _, _ = offlineBot(t, "info", func(o *Options) { o.MaxFileSize = 100 << 20; o.Bot.APIURL = "http://127.0.0.1:8081" })
	if n, public := b.maxInput(); n != 100<<20 || public {
		t.Errorf("local API: %d %v", n, public)
	}
	// Bad options are refused.
	st, err := store.Open(filepath.Join(t.TempDir(), "x.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, o := range []Options{
		{Bot: Config{Token: "1:x"}, Language: "de"},
		{Bot: Config{Token: "nocolon"}},
		{Bot: Config{Token: "1:x", APIURL: "ftp://x"}},
		{Bot: Config{Token: "1:x"}, Quota: QuotaConfig{NewUser: -1}},
		{Bot: Config{Token: "1:x", Groups: []int64{-100123, 500}}}, // group ids are negative
	} {
		if _, err := New(o, st, nil); err == nil {
			t.Errorf("New accepted %+v", o)
		}
	}
	if _, err := New(Options{Bot: Config{Token: "1:x"}}, nil, nil); err == nil {
		t.Error("New without a store")
	}
	_ = plugins.Secret("")
}

// fakeClusters answers Clusters for helpText; nothing else is called.
type fakeClusters struct {
	Calculations
	infos []scheduler.ClusterInfo
}

func (f fakeClusters) Clusters() []scheduler.ClusterInfo { return f.infos }

func TestHelpText(t *testing.T) {
	b, _, _ := offlineBot(t, "info")
	b.calcs = fakeClusters{infos: []scheduler.ClusterInfo{
		{Label: "lomonosov", Scheduler: "slurm", Usable: true, Programs: []plugins.ProgramInfo{
			{Program: "orca_submit", Description: "ORCA <5>", AllowedArgs: []string{"{}", `-p\d{1,2}`}, DefaultArgs: []string{"{}"}, Associations: []string{".inp"}},
			{Program: "g16_submit", Associations: []string{".gjf", ".com"}}}},
		{Label: "ws", Scheduler: "ssh", Usable: false, Reason: "ssh: unable to authenticate"},
	}}
	en := b.helpText("en", false)
	for _, part := range []string{"<b>lomonosov</b> (slurm)", "<code>orca_submit</code> — ORCA &lt;5&gt;",
		"files: .inp; for example, as the caption: <code>orca_submit {}</code>\n  arguments you may add: <code>-pN</code>",
		"files: .gjf .com; for example, as the caption: <code>g16_submit</code>\n  arguments you may add: none",
		"<b>ws</b> (ssh): not available now"} {
		if !strings.Contains(en, part) {
			t.Errorf("help lacks %q:\n%s", part, en)
		}
	}
	if strings.Contains(en, `\d`) {
		t.Errorf("help shows a regular expression:\n%s", en)
	}
	if strings.Contains(en, "unable to authenticate") || strings.Contains(en, "/approve") {
		t.Errorf("help shows operator detail or admin commands:\n%s", en)
	}
	if ru := b.helpText("ru", true); !strings.Contains(ru, "сейчас недоступен") || !strings.Contains(ru, "/approve U") {
		t.Errorf("Russian admin help:\n%s", ru)
	}
	b.calcs = fakeClusters{}
	if got := b.helpText("en", false); !strings.Contains(got, "No cluster is configured") {
		t.Errorf("no clusters:\n%s", got)
	}
}

func TestLogChatFollowedAcrossRestarts(t *testing.T) {
	b, st, _ := offlineBot(t, "info")
	if !b.moveLogChat(-42, -100042) || b.logChatID.Load() != -100042 {
		t.Fatal("move")
	}
	if b.moveLogChat(-42, -7) {
		t.Error("moved from a chat that is not the log chat")
	}
	again, err := New(b.opts, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := again.logChatID.Load(); got != -100042 {
		t.Errorf("after a restart the log chat is %d", got)
	}
	// The operator configured another log chat: that one wins.
	o := b.opts
	o.Bot.LogChatID = -555
	other, err := New(o, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := other.logChatID.Load(); got != -555 {
		t.Errorf("configured -555, using %d", got)
	}
}

// TestLogChatRemovesEverySecret: what the bot writes to the log chat, and to
// its own log, is scrubbed of every secret of the configuration (not only the
// token), raw or HTML-escaped, whatever part of the line carries it.
func TestLogChatRemovesEverySecret(t *testing.T) {
	secrets := []string{"nc-pa&ss<1>", "cluster-pw-42"}
	b, st, logs := offlineBot(t, "info", func(o *Options) { o.Secrets = secrets })
	leak := "dial: password nc-pa&ss<1> refused by the cloud; ssh: cluster-pw-42; token 1:secret"
	b.toLogChat(slog.LevelError, "k/failure", "log.failure", P{"what": "x", "error": leak})
	b.log.Error("something failed", "err", leak)
	calc := store.Calculation{ID: 7, UserID: 1, TelegramID: 5, ChatID: 5, InputName: "a.inp", Cluster: "hpc", State: store.StateError}
	if err := b.Notify(context.Background(), scheduler.Notification{Key: "calc/7/error", Event: scheduler.EventError, Calc: calc,
		Code: "fetch_failed", Reason: leak}); err != nil {
		t.Fatal(err)
	}
	got := outbox(t, st)
	var lines []string
	for key, msg := range got {
		if msg.ChatID == -42 {
			lines = append(lines, key+": "+msg.Params[paramText])
		}
	}
	if len(lines) != 2 {
		t.Fatalf("log chat lines %q, want 2", lines)
	}
	for _, text := range append(lines, logs.String()) {
		for _, s := range []string{"nc-pa", "&amp;ss", "cluster-pw-42", "1:secret"} {
			if strings.Contains(text, s) {
				t.Errorf("%q reached %q", s, text)
			}
		}
		if !strings.Contains(text, "[redacted]") {
			t.Errorf("no [redacted] in %q", text)
		}
	}
}

// The finish message shows the runner's digest in the user's language: how
// the program ended (its own line when it failed), the energy as printed, the
// optimization's cycles, the imaginary frequencies and the wall time.
func TestFinishMessageShowsTheDigest(t *testing.T) {
	zero := 0
	calc := store.Calculation{ID: 7, InputName: "water.xyz", Cluster: "hpc", JobID: "99", ExitCode: &zero}
	ok := &store.Digest{Program: "orca", Termination: store.DigestNormal, Energy: "-76.026765747", EnergyMethod: "SCF",
		Optimization: true, OptConverged: true, OptCycles: 5, Frequencies: 3, Imaginary: 2, LowestFrequency: "-123.45",
		WallSeconds: 3723, GeometryFile: "water.xyz"}
	failed := &store.Digest{Program: "xtb", Termination: store.DigestFailed, TerminationLine: "-1- Error: Atom number <missmatch>"}
	cases := []struct {
		lang  string
		d     *store.Digest
		parts []string
	}{
		{"en", ok, []string{"ORCA: normal termination.", "Final energy (SCF) -76.026765747 Eh.", "converged in 5 cycles",
			"2 imaginary frequencies, the lowest -123.45 cm⁻¹", "wall time of 1 h 02 min", "Final geometry: water.xyz"}},
		{"ru", ok, []string{"ORCA: нормальное завершение.", "Итоговая энергия (SCF) -76.026765747 Eh.", "сошлась за 5 циклов",
			"2 мнимые частоты, самая низкая -123.45 см⁻¹", "время работы 1 ч 02 мин"}},
		{"en", failed, []string{"xtb stopped with an error: <code>-1- Error: Atom number &lt;missmatch&gt;</code>"}},
		{"ru", failed, []string{"Программа xtb остановилась с ошибкой: <code>-1- Error: Atom number &lt;missmatch&gt;</code>"}},
		{"ru", &store.Digest{Program: "gaussian", Termination: store.DigestUnfinished, Optimization: true, OptCycles: 21, Frequencies: 9, LowestFrequency: "12.5"},
			[]string{"Программа Gaussian не завершилась нормально", "не сошлась за 21 цикл.", "Мнимых частот нет, самая низкая частота 12.5 см⁻¹"}},
	}
	b, _, _ := offlineBot(t, "info")
	for _, c := range cases {
		calc.Digest = c.d
		text := b.notificationText(c.lang, scheduler.Notification{Event: scheduler.EventFinished, Calc: calc, Outcome: store.StateSucceeded})
		for _, p := range c.parts {
			if !strings.Contains(text, p) {
				t.Errorf("%s: lacks %q:\n%s", c.lang, p, text)
			}
		}
	}
	calc.Digest = &store.Digest{Program: "gaussian", Termination: store.DigestNone}
	for lang, want := range map[string]string{"en": "No summary: the output of Gaussian was not found or not recognised.",
		"ru": "Сводки нет: вывод программы Gaussian не найден или не распознан."} {
		if text := b.notificationText(lang, scheduler.Notification{Event: scheduler.EventFinished, Calc: calc, Outcome: store.StateSucceeded}); !strings.Contains(text, want) {
			t.Errorf("%s: lacks %q:\n%s", lang, want, text)
		}
	}
	calc.Digest = nil
	text := b.notificationText("en", scheduler.Notification{Event: scheduler.EventFinished, Calc: calc, Outcome: store.StateSucceeded})
	if strings.Contains(text, "termination") || strings.Contains(text, "energy") {
		t.Errorf("no digest, yet a summary:\n%s", text)
	}
}

// An input the runner refused before upload: the user reads the refusal, with
// its line and limit, not a generic error.
func TestRefusedInputMessage(t *testing.T) {
	b, _, _ := offlineBot(t, "info")
	calc := store.Calculation{ID: 9, InputName: "big.inp"}
	n := scheduler.Notification{Event: scheduler.EventError, Calc: calc, Code: scheduler.CodeInputRefused,
		Refusal: &plugins.Refusal{Code: plugins.RefuseTooManyCores, Line: 3, Detail: "64", Limit: "16"}}
	for lang, want := range map[string]string{
		"en": "Calculation <b>#9</b> (big.inp) was not started. Line 3 asks for 64 cores, and this cluster allows at most 16.",
		"ru": "Расчёт <b>#9</b> (big.inp) не запущен. В строке 3 указано число ядер 64, а на этом кластере можно не больше 16.",
	} {
		if got := b.notificationText(lang, n); !strings.Contains(got, want) {
			t.Errorf("%s: %q lacks %q", lang, got, want)
		}
	}
}

// TestTellDropped: a registered user whose updates the poller dropped is told,
// in their language, once in a while; strangers and groups are not.
func TestTellDropped(t *testing.T) {
	b, st, _ := offlineBot(t, "info")
	if _, _, err := st.RegisterUser(store.TelegramAccount{TelegramID: 77, LanguageCode: "ru"}, 5); err != nil {
		t.Fatal(err)
	}
	b.tellDropped(77, 77, 185)
	b.tellDropped(77, 77, 3)     // again within the interval: not told twice
	b.tellDropped(88, 88, 50)    // a stranger
	b.tellDropped(-500, 77, 120) // in a group
	var texts []string
	for _, msg := range outbox(t, st) {
		texts = append(texts, fmt.Sprint(msg.ChatID, ": ", msg.Params[paramText]))
	}
	if len(texts) != 1 || !strings.HasPrefix(texts[0], "77: ") || !strings.Contains(texts[0], "пропущено 185 сообщений") {
		t.Errorf("queued %q, want one notice to 77 in Russian", texts)
	}
}
