package bot

import (
	"slices"
	"strings"
	"testing"
	"time"

	"hpcbot/scheduler"
	"hpcbot/store"
)

// cardCalc is calculation 42 that went through states (history entries an
// hour apart from t0), with the record's other fields set by mutate.
func cardCalc(t0 time.Time, mutate func(*store.Calculation), states ...store.State) store.Calculation {
	c := store.Calculation{ID: 42, InputName: "h2o.inp", Program: "orca", Cluster: "hpc", Created: t0, State: store.StateReceived}
	c.History = append(c.History, store.Transition{State: store.StateReceived, At: t0})
	for i, s := range states {
		c.State = s
		c.History = append(c.History, store.Transition{State: s, At: t0.Add(time.Duration(i+1) * time.Minute)})
	}
	if mutate != nil {
		mutate(&c)
	}
	return c
}

// TestCardStates renders the card of every stage of a calculation's life, in
// English and Russian: what it says, and which buttons it has.
func TestCardStates(t *testing.T) {
	b := &Bot{}
	t0 := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	now := t0.Add(3*time.Hour + 25*time.Minute)
	job := func(c *store.Calculation) { c.JobID = "777" }
	zero := 0
	cases := []struct {
		name    string
		c       store.Calculation
		confirm string
		en, ru  []string
		acts    []cardAction
	}{
		{"accepted", cardCalc(t0, nil), "",
			[]string{"Calculation <b>#42</b> accepted: <code>orca</code> on hpc"},
			[]string{"Расчёт <b>#42</b> принят: <code>orca</code> на hpc"}, []cardAction{actCancel}},
		{"drained", cardCalc(t0, func(c *store.Calculation) { c.Progress.Drained = t0 }), "",
			[]string{"closed cluster hpc for maintenance"}, []string{"закрыли кластер hpc на обслуживание"}, []cardAction{actCancel}},
		{"queued", cardCalc(t0, job, store.StateStaged, store.StateSubmitted, store.StatePending), "",
			[]string{"is on hpc: job 777.", "The job waits in the queue."},
			[]string{"на кластере hpc: задача 777.", "Задача ждёт в очереди."}, []cardAction{actCancel, actLog}},
		{"queued, Priority", cardCalc(t0, func(c *store.Calculation) { job(c); c.Progress.Reason = "Priority" }, store.StateStaged, store.StateSubmitted, store.StatePending), "",
			[]string{"The job waits in the queue: jobs with a higher priority go first."},
			[]string{"Задача ждёт в очереди: сначала пойдут задачи с более высоким приоритетом."}, []cardAction{actCancel, actLog}},
		{"queued, Resources", cardCalc(t0, func(c *store.Calculation) { job(c); c.Progress.Reason = "Resources" }, store.StateStaged, store.StateSubmitted, store.StatePending), "",
			[]string{"the resources it asked for are busy"}, []string{"запрошенные ресурсы пока заняты"}, []cardAction{actCancel, actLog}},
		{"queued, another reason", cardCalc(t0, func(c *store.Calculation) { job(c); c.Progress.Reason = "QOSMaxJobsPerUserLimit<x>" }, store.StateStaged, store.StateSubmitted), "",
			[]string{"the scheduler gives the reason <code>QOSMaxJobsPerUserLimit&lt;x&gt;</code>"},
			[]string{"причина по данным планировщика — <code>QOSMaxJobsPerUserLimit&lt;x&gt;</code>"}, []cardAction{actCancel, actLog}},
		{"running", cardCalc(t0, func(c *store.Calculation) {
			job(c)
			c.Progress.Node, c.Progress.Started = "node07", t0.Add(5*time.Minute)
		}, store.StateStaged, store.StateSubmitted, store.StateRunning), "",
			[]string{"Running on <code>node07</code> since " + t0.Add(5*time.Minute).Local().Format(timeLayout) + "; 3 hours 20 minutes so far."},
			[]string{"Считается на <code>node07</code> с " + t0.Add(5*time.Minute).Local().Format(timeLayout) + "; время счёта — 3 часа 20 минут."},
			[]cardAction{actCancel, actLog}},
		{"running, no node, asked to confirm the cancel", cardCalc(t0, job, store.StateStaged, store.StateSubmitted, store.StateRunning), "cancel",
			[]string{"Running since", "Cancel this calculation?"}, []string{"Считается с", "Отменить этот расчёт?"},
			[]cardAction{actCancelYes, actNo}},
		{"cancel under way", cardCalc(t0, func(c *store.Calculation) { job(c); c.Progress.Cancel = store.CancelSent }, store.StateStaged, store.StateSubmitted, store.StateRunning), "cancel",
			[]string{"Cancel requested: the job is being stopped."}, []string{"Отмена запрошена, задача останавливается."}, []cardAction{actLog}},
		{"ended, results on their way", cardCalc(t0, func(c *store.Calculation) { job(c); c.ExitCode = &zero }, store.StateStaged, store.StateSubmitted, store.StateRunning, store.StateSucceeded), "",
			[]string{"The job ended: succeeded. I am bringing the results back."}, []string{"Расчёт на кластере закончен: успешно. Забираю результаты."}, []cardAction{actLog}},
		{"finished with a digest and a link", cardCalc(t0, func(c *store.Calculation) {
			job(c)
			c.ExitCode, c.ShareLink = &zero, "https://cloud.example/s/abc"
			c.Digest = &store.Digest{Program: "orca", Termination: store.DigestNormal, Energy: "-76.4"}
		}, store.StateStaged, store.StateSubmitted, store.StateRunning, store.StateSucceeded, store.StateRetrieved, store.StateDelivered, store.StateNotified), "",
			[]string{"finished: succeeded, exit code 0", "ORCA: normal termination.", "Final energy -76.4 Eh.", "Results: https://cloud.example/s/abc"},
			[]string{"закончился: успешно, код выхода 0", "ORCA: нормальное завершение.", "Итоговая энергия -76.4 Eh.", "Результаты: https://cloud.example/s/abc"},
			[]cardAction{actLog, actAgain}},
		{"finished with files, asked to confirm a new run", cardCalc(t0, func(c *store.Calculation) {
			job(c)
			c.ExitCode, c.Progress.Send = &zero, []string{"/d/out.zip"}
		}, store.StateStaged, store.StateSubmitted, store.StateRunning, store.StateFailed, store.StateRetrieved, store.StateDelivered, store.StateNotified), "again",
			[]string{"finished: failed", "The results are in the files below.", "Run this input again"},
			[]string{"закончился: с ошибкой", "Результаты в файлах ниже.", "Запустить этот файл снова"}, []cardAction{actAgainYes, actNo}},
		{"delivery held", cardCalc(t0, func(c *store.Calculation) { job(c); c.Progress.DeliveryHeld = true },
			store.StateStaged, store.StateSubmitted, store.StateRunning, store.StateSucceeded, store.StateRetrieved, store.StateDeliveryFailed), "",
			[]string{"refused the bot's login"}, []string{"не приняло учётные данные бота"}, []cardAction{actLog}},
		{"cancelled before it started", cardCalc(t0, nil, store.StateCancelled, store.StateRetrieved, store.StateDelivered, store.StateNotified), "",
			[]string{"was cancelled before it started"}, []string{"отменён до запуска"}, []cardAction{actAgain}},
		{"error", cardCalc(t0, func(c *store.Calculation) { c.Progress.ErrorCode = scheduler.CodeSubmitRejected }, store.StateStaged, store.StateError), "",
			[]string{"could not run: the cluster's scheduler refused the job"}, []string{"не удалось запустить: планировщик кластера отклонил задачу."}, []cardAction{actAgain}},
		{"input refused", cardCalc(t0, func(c *store.Calculation) {
			c.Progress.ErrorCode, c.Progress.Refusal = scheduler.CodeInputRefused, &store.InputRefusal{Code: "bad_input", Detail: "no geometry"}
		}, store.StateError), "again",
			[]string{"was not started."}, []string{"не запущен."}, nil},
	}
	for _, tc := range cases {
		for _, lang := range []string{"en", "ru"} {
			text := b.cardText(tc.c, tc.confirm, lang, now)
			want := tc.en
			if lang == "ru" {
				want = tc.ru
			}
			for _, w := range want {
				if !strings.Contains(text, w) {
					t.Errorf("%s (%s): card\n%s\nlacks %q", tc.name, lang, text, w)
				}
			}
			if acts := cardActions(tc.c, tc.confirm); !slices.Equal(acts, tc.acts) {
				t.Errorf("%s: buttons %v, want %v", tc.name, acts, tc.acts)
			}
			kb := cardKeyboard(lang, tc.c.ID, cardActions(tc.c, tc.confirm), 0)
			for _, row := range kb {
				for _, btn := range row {
					if btn.Text == "" || len(btn.Data) > 64 || !(strings.HasSuffix(btn.Data, ":42") || btn.Data == "card:again_yes:42:0") {
						t.Errorf("%s (%s): button %+v", tc.name, lang, btn)
					}
				}
			}
		}
	}
}

// TestCardElapsed: the elapsed time changes at most once a minute in the
// first hour, every ten minutes in the first day, every hour after that.
func TestCardElapsed(t *testing.T) {
	for _, tc := range []struct {
		d      time.Duration
		en, ru string
	}{
		{30 * time.Second, "under a minute", "меньше минуты"},
		{time.Minute + 59*time.Second, "1 minute", "1 минута"},
		{22 * time.Minute, "22 minutes", "22 минуты"},
		{time.Hour + 9*time.Minute, "1 hour", "1 час"},
		{2*time.Hour + 59*time.Minute, "2 hours 50 minutes", "2 часа 50 минут"},
		{49*time.Hour + 59*time.Minute, "2 days 1 hour", "2 дня 1 час"},
		{5 * 24 * time.Hour, "5 days", "5 дней"},
	} {
		if got := elapsedText("en", tc.d); got != tc.en {
			t.Errorf("elapsed %v in English: %q, want %q", tc.d, got, tc.en)
		}
		if got := elapsedText("ru", tc.d); got != tc.ru {
			t.Errorf("elapsed %v in Russian: %q, want %q", tc.d, got, tc.ru)
		}
	}
}

// TestCardHash: the hash follows the text and every button, and nothing else.
func TestCardHash(t *testing.T) {
	kb := cardKeyboard("en", 42, []cardAction{actCancel, actLog}, 0)
	h := cardHash("text", kb)
	if cardHash("text", cardKeyboard("en", 42, []cardAction{actAgainYes, actNo}, 0)) == cardHash("text", cardKeyboard("en", 42, []cardAction{actAgainYes, actNo}, 1)) {
		t.Error("Run again's Yes of two generations gives the same hash")
	}
	if cardHash("text", cardKeyboard("en", 42, []cardAction{actCancel, actLog}, 0)) != h {
		t.Fatal("the same card hashed twice differently")
	}
	for name, other := range map[string]string{
		"text":     cardHash("text2", kb),
		"keyboard": cardHash("text", cardKeyboard("en", 42, []cardAction{actCancel}, 0)),
		"language": cardHash("text", cardKeyboard("ru", 42, []cardAction{actCancel, actLog}, 0)),
		"calc":     cardHash("text", cardKeyboard("en", 43, []cardAction{actCancel, actLog}, 0)),
		"none":     cardHash("text", [][]Button{}),
		"rerun":    cardHash("text", cardKeyboard("en", 42, []cardAction{actAgainYes, actNo}, 1)),
	} {
		if other == h {
			t.Errorf("a different %s gives the same hash", name)
		}
	}
}

// TestStateMarks: /jobs marks each calculation by where it is.
func TestStateMarks(t *testing.T) {
	t0 := time.Now()
	for _, tc := range []struct {
		c    store.Calculation
		want string
	}{
		{cardCalc(t0, nil), "⏳"},
		{cardCalc(t0, nil, store.StateStaged, store.StateSubmitted, store.StatePending), "⏳"},
		{cardCalc(t0, nil, store.StateStaged, store.StateSubmitted, store.StateRunning), "▶️"},
		{cardCalc(t0, nil, store.StateStaged, store.StateSubmitted, store.StateRunning, store.StateSucceeded, store.StateRetrieved, store.StateDelivered, store.StateNotified), "✅"},
		{cardCalc(t0, nil, store.StateStaged, store.StateSubmitted, store.StateRunning, store.StateTimedOut, store.StateRetrieved), "❌"},
		{cardCalc(t0, nil, store.StateStaged, store.StateSubmitted, store.StateRunning, store.StateFailed), "❌"},
		{cardCalc(t0, nil, store.StateCancelled, store.StateRetrieved, store.StateDelivered, store.StateNotified), "⛔"},
		{cardCalc(t0, nil, store.StateStaged, store.StateError), "❌"},
	} {
		if got := stateMark(tc.c); got != tc.want {
			t.Errorf("calculation in %s (history %v): mark %s, want %s", tc.c.State, tc.c.History, got, tc.want)
		}
	}
}
