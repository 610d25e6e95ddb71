package main

import (
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hpcbot/bot/tgtest"
	"hpcbot/store"
)

// reportFixture writes a store with organizations msu > msu-chem and ipc, a
// user in each of msu-chem and ipc, and calculations with known usage.
func reportFixture(t *testing.T, path string, day time.Time) {
	t.Helper()
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.UpsertOrganizations([]store.Organization{
		{Label: "msu", Name: "Moscow State University"},
		{Label: "msu-chem", Name: "MSU Chemistry", Parent: "msu"},
		{Label: "ipc", Name: "Institute of Physical Chemistry"},
	}); err != nil {
		t.Fatal(err)
	}
	chem, _ := st.CreateUser(store.User{FirstName: "Anna", LastName: "Petrova", Org: "msu-chem", Limit: 100})
	ipc, _ := st.CreateUser(store.User{FirstName: "Ivan", LastName: "Sidorov", Org: "ipc", Limit: 100})
	calc := func(u store.User, at time.Time, end store.State, usage *store.Usage) {
		c, err := st.CreateCalculation(store.Calculation{UserID: u.ID, InputName: "x.sh", Cluster: "here"}, 24*time.Hour, at)
		if err != nil {
			t.Fatal(err)
		}
		// To the end of the road, so that the running bot has nothing to do with them.
		path := []store.State{store.StateStaged, store.StateSubmitted, store.StateRunning, end,
			store.StateRetrieved, store.StateDelivered, store.StateNotified}
		if end == store.StateError {
			path = []store.State{store.StateError}
		}
		for _, s := range path {
			if _, err := st.Transition(c.ID, s, "", func(_ *store.Tx, c *store.Calculation) error {
				if s == store.StateSubmitted {
					c.JobID = "1"
				}
				if s.Ended() {
					c.Usage = usage
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	calc(chem, day.Add(10*time.Hour), store.StateSucceeded, &store.Usage{WallSeconds: 7200, Cores: 4, Source: store.UsageAccounting})
	calc(chem, day.Add(11*time.Hour), store.StateFailed, &store.Usage{WallSeconds: 1800, Cores: 2, Source: store.UsageEstimate})
	calc(ipc, day.Add(12*time.Hour), store.StateSucceeded, &store.Usage{WallSeconds: 3600, Cores: 1, Source: store.UsageAccounting})
	calc(ipc, day.Add(13*time.Hour), store.StateError, nil)
	calc(ipc, day.Add(-48*time.Hour), store.StateSucceeded, &store.Usage{WallSeconds: 36000, Cores: 64, Source: store.UsageAccounting}) // before --from
}

func csvRows(t *testing.T, out string) map[string][]string {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	m := map[string][]string{}
	for _, r := range recs[1:] {
		m[r[0]] = r
	}
	m["header"] = recs[0]
	return m
}

// `hpcbot report` sums per user and per organization (msu includes
// msu-chem), splits core-hours by source, and gives the same answer through the
// control socket while `hpcbot run` holds the store.
func TestReport(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "hpcbot.toml")
	os.WriteFile(cfgPath, []byte(localConfigText(tgtest.New(t))), 0o600)
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.Local)
	reportFixture(t, filepath.Join(dir, "hpcbot.db"), day)

	code, out, errs := runMain(t, "report", "--config", cfgPath, "--from", "2026-11-20", "--to", "2026-11-20", "--by", "org", "--format", "csv")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	rows := csvRows(t, out)
	col := map[string]int{}
	for i, h := range rows["header"] {
		col[h] = i
	}
	check := func(key, field, want string) {
		t.Helper()
		if r, ok := rows[key]; !ok || r[col[field]] != want {
			t.Errorf("%s %s: %v, want %s", key, field, r, want)
		}
	}
	// msu-chem: 2 h × 4 (accounting) + 0.5 h × 2 (estimate); msu rolls it up.
	for _, k := range []string{"msu", "msu-chem"} {
		check(k, "calculations", "2")
		check(k, "succeeded", "1")
		check(k, "failed", "1")
		check(k, "wall_hours", "2.50")
		check(k, "core_hours", "9.00")
		check(k, "core_hours_accounting", "8.00")
		check(k, "core_hours_estimate", "1.00")
	}
	check("msu-chem", "parent", "msu")
	check("ipc", "calculations", "2")
	check("ipc", "error", "1")
	check("ipc", "core_hours", "1.00")
	if len(rows) != 4 {
		t.Errorf("rows %v", rows)
	}

	code, table, errs := runMain(t, "report", "--config", cfgPath, "--from", "2026-11-20", "--to", "2026-11-20")
	if code != 0 || !strings.Contains(table, "Calculations created from 2026-11-20 to 2026-11-20, by user") ||
		!strings.Contains(table, "Anna Petrova") || !strings.Contains(table, "core_hours_accounting (the scheduler's accounting") {
		t.Errorf("table: exit %d: %s %s", code, table, errs)
	}
	if code, _, errs := runMain(t, "report", "--config", cfgPath, "--from", "20.11.2026"); code != 2 || !strings.Contains(errs, "YYYY-MM-DD") {
		t.Errorf("bad date: exit %d: %s", code, errs)
	}

	// While run holds the store, through the control socket.
	run := startDaemon(t, cfgPath)
	remote, err := exec.Command(binary, "report", "--config", cfgPath, "--from", "2026-11-20", "--to", "2026-11-20", "--by", "org", "--format", "csv").CombinedOutput()
	if err != nil || string(remote) != out {
		t.Errorf("report while running: %v:\n%s\nwant\n%s", err, remote, out)
	}
	run.stop(t)
}
