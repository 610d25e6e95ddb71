package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// copySchema3 copies testdata/schema3.bolt, a store written by the hpcbot of
// schema 3 (the scheduler's bookkeeping in a map of strings under "delivery",
// calcs_active in format 1), to a temporary file.
func copySchema3(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "schema3.bolt"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "schema3.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestMigrateTypedProgress migrates the schema-3 file and checks every
// calculation's Progress against what its map of strings said, that no record
// keeps the old key, that calcs_active is readable in its new format, and that
// a second Migrate is a no-op.
func TestMigrateTypedProgress(t *testing.T) {
	path := copySchema3(t)
	if _, err := Open(path, Options{}); !errors.Is(err, ErrSchemaTooOld) {
		t.Fatalf("Open of a schema-3 store = %v, want ErrSchemaTooOld", err)
	}
	s, err := Open(path, Options{AllowOldSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if from, to, err := s.Migrate(); err != nil || from != 3 || to != LatestSchema() || to < 4 {
		t.Fatalf("Migrate = %d, %d, %v", from, to, err)
	}
	at := func(v string) time.Time {
		tm, err := time.Parse(time.RFC3339, v)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	want := map[uint64]Progress{
		1: {Cancel: CancelRequested, FailoverFrom: "hpc"},
		2: {Accepted: true, Cancel: CancelSent, Started: at("2026-11-20T09:01:02Z")},
		3: {Accepted: true},
		4: {Accepted: true, Files: []string{"d.out", "sub/d.xyz"}, Skipped: []SkippedFile{{Text: "big.bin: too large"}}, OutcomeUnknown: true,
			Started: at("2026-11-20T09:01:02Z"), Ended: at("2026-11-20T10:11:12Z"),
			Upload: json.RawMessage(`{"d.out":{"id":"hpcbot-7","chunk":10485760,"done":2,"size":31457280,"mtime":"2026-11-20T10:11:12Z"}}`)},
		5: {Accepted: true, Files: []string{"e.out"}, Code: "too_large", Where: "hpc:/scratch/f_e", Cleaned: true},
		6: {Accepted: true, Files: []string{"f.out", "f.err"}, Send: []string{"/var/hpcbot/f_f/results.zip"}},
		7: {ErrorCode: "cloud_refused", ErrorNotified: true},
		8: {ErrorCode: "submit_failed"},
		9: {},
	}
	states := map[uint64]State{1: StateReceived, 2: StateRunning, 3: StatePending, 4: StateRetrieved, 5: StateNotified,
		6: StateDelivered, 7: StateError, 8: StateError, 9: StateReceived}
	for id, w := range want {
		c, err := s.Calc(id)
		if err != nil {
			t.Fatal(err)
		}
		if c.State != states[id] || c.InputName == "" || c.Cluster == "" {
			t.Errorf("calc %d after migration: state %s, input %q, cluster %q", id, c.State, c.InputName, c.Cluster)
		}
		if !reflect.DeepEqual(c.Progress, w) {
			t.Errorf("calc %d progress\n%+v\nwant\n%+v", id, c.Progress, w)
		}
	}
	if err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bCalcs).ForEach(func(k, v []byte) error {
			if bytes.Contains(v, []byte(`"delivery"`)) {
				t.Errorf("calc %d keeps the old map: %s", getU64(k), v)
			}
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	checkActive(t, s, []string{"loc", "hpc"})
	if got, err := s.ActiveJobs("hpc"); err != nil || len(got) != 1 || got[0].Cancel != CancelSent || !got[0].Accepted {
		t.Fatalf("ActiveJobs(hpc) = %+v, %v; want calc 2, accepted, cancel sent", got, err)
	}
	if from, to, err := s.Migrate(); err != nil || from != to {
		t.Fatalf("second Migrate = %d, %d, %v; want a no-op", from, to, err)
	}
	// The migrated records are written and read like new ones.
	if _, err := s.Transition(3, StateRunning, "", func(_ *Tx, c *Calculation) error {
		c.Progress.Cancel = CancelRequested
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	checkActive(t, s, []string{"loc", "hpc"})
}

// TestMigrateTypedProgressRefusesWhatItCannotRead: a value the conversion
// cannot read stops the migration with the calculation and key named, and
// leaves the file at schema 3 with the record unchanged.
func TestMigrateTypedProgressRefusesWhatItCannotRead(t *testing.T) {
	path := copySchema3(t)
	s, err := Open(path, Options{AllowOldSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var before []byte
	if err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bCalcs)
		v := bytes.Replace(b.Get(u64(6)), []byte(`\"f.err\"]`), []byte(`\"f.err\"`), 1)
		before = v
		return b.Put(u64(6), v)
	}); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.Migrate()
	if err == nil || !strings.Contains(err.Error(), "calc 6") || !strings.Contains(err.Error(), `"files"`) {
		t.Fatalf("Migrate of a broken record = %v; want an error naming calc 6 and its files", err)
	}
	if v, _ := s.SchemaVersion(); v != 3 {
		t.Fatalf("schema after a failed migration = %d, want 3", v)
	}
	if err := s.db.View(func(tx *bolt.Tx) error {
		if got := tx.Bucket(bCalcs).Get(u64(6)); !bytes.Equal(got, before) {
			t.Errorf("record changed by a failed migration:\n%s\nwas\n%s", got, before)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestLegacyProgressRefusal: a schema-3 record of an input the runner's Check
// refused kept the refusal as plugins.Refusal's JSON; step 4 keeps it, typed.
func TestLegacyProgressRefusal(t *testing.T) {
	p, err := legacyProgress(map[string]string{"error_code": "input_refused",
		"refusal": `{"Code":"cores_over_limit","Detail":"%pal nprocs 64","Line":3,"Limit":"16"}`})
	if err != nil {
		t.Fatal(err)
	}
	want := InputRefusal{Code: "cores_over_limit", Detail: "%pal nprocs 64", Line: 3, Limit: "16"}
	if p.ErrorCode != "input_refused" || p.Refusal == nil || *p.Refusal != want {
		t.Errorf("progress %+v, refusal %+v; want %+v", p, p.Refusal, want)
	}
	if _, err := legacyProgress(map[string]string{"refusal": "{"}); err == nil {
		t.Error("an unreadable refusal was accepted")
	}
}

// TestSkippedFileJSON: a record written before skip codes holds "path: reason"
// strings; it reads back as Text, and the coded form round-trips.
func TestSkippedFileJSON(t *testing.T) {
	var p Progress
	if err := json.Unmarshal([]byte(`{"skipped":["big.chk: too large",{"path":"x.out","code":"link"}]}`), &p); err != nil {
		t.Fatal(err)
	}
	want := []SkippedFile{{Text: "big.chk: too large"}, {Path: "x.out", Code: "link"}}
	if !reflect.DeepEqual(p.Skipped, want) {
		t.Fatalf("skipped %+v, want %+v", p.Skipped, want)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var again Progress
	if err := json.Unmarshal(b, &again); err != nil || !reflect.DeepEqual(again.Skipped, want) {
		t.Fatalf("round trip of %s: %+v, %v", b, again.Skipped, err)
	}
	if err := json.Unmarshal([]byte(`{"skipped":[3]}`), &p); err == nil {
		t.Error("a number accepted as a skipped file")
	}
}
