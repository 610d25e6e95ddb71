package store

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// testClock is a settable clock for the store.
type testClock struct{ t time.Time }

func (c *testClock) now() time.Time { return c.t }

func openTest(t testing.TB) (*Store, *testClock) {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "hpcbot.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	clk := &testClock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	s.now = clk.now
	return s, clk
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		path string
		want string // "" = valid
	}{
		{"hpcbot.db", ""},
		{filepath.Join(dir, "x.db"), ""},
		{"", "store.path is empty"},
		{"   ", "store.path is empty"},
		{"data/", "names a directory"},
		{dir, "is a directory"},
		{"a\x00b", "NUL"},
	}
	for _, tt := range tests {
		err := Config{Path: tt.path}.Validate()
		if tt.want == "" {
			if err != nil {
				t.Errorf("Validate(%q) = %v, want nil", tt.path, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "store.path") {
			t.Errorf("Validate(%q) = %v, want an error naming store.path and %q", tt.path, err, tt.want)
		}
	}
}

func TestOpenNewFileIsCurrent(t *testing.T) {
	s, _ := openTest(t)
	v, err := s.SchemaVersion()
	if err != nil || v != LatestSchema() {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, LatestSchema())
	}
}

func TestMigrateIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	// A version-0 file that already holds something (an empty bucket) is not
	// "new": Open must refuse it until migrated.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket(bMeta); return err }); err != nil {
		t.Fatal(err)
	}
	db.Close()

	if _, err := Open(path, Options{}); !errors.Is(err, ErrSchemaTooOld) || !strings.Contains(err.Error(), "hpcbot migrate") {
		t.Fatalf("Open of a stale store = %v, want ErrSchemaTooOld telling to run hpcbot migrate", err)
	}
	s, err := Open(path, Options{AllowOldSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	from, to, err := s.Migrate()
	if err != nil || from != 0 || to != LatestSchema() {
		t.Fatalf("first Migrate = %d, %d, %v; want 0, %d, nil", from, to, err, LatestSchema())
	}
	u, err := s.CreateUser(User{FirstName: "Ada", Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	from, to, err = s.Migrate()
	if err != nil || from != LatestSchema() || to != LatestSchema() {
		t.Fatalf("second Migrate = %d, %d, %v; want a no-op at %d", from, to, err, LatestSchema())
	}
	s.Close()

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.User(u.ID)
	if err != nil || got.FirstName != "Ada" {
		t.Fatalf("user after migrations = %+v, %v", got, err)
	}
}

func TestRefuseNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bMeta).Put(metaSchema, u64(uint64(LatestSchema()+1)))
	})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, opts := range []Options{{}, {AllowOldSchema: true}, {ReadOnly: true}} {
		_, err := Open(path, opts)
		if !errors.Is(err, ErrSchemaTooNew) {
			t.Errorf("Open(%+v) = %v, want ErrSchemaTooNew", opts, err)
		}
	}
}

func TestLockTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, opts := range []Options{{LockTimeout: 20 * time.Millisecond}, {ReadOnly: true, LockTimeout: 20 * time.Millisecond}} {
		_, err = Open(path, opts)
		if !errors.Is(err, ErrLocked) {
			t.Fatalf("second Open(%+v) = %v, want ErrLocked", opts, err)
		}
		want := "store " + path + " is in use by another hpcbot process (is `hpcbot run` running?)"
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestReadOnlyRefusesWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	r, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.CreateUser(User{Limit: 1}); err == nil {
		t.Fatal("CreateUser on a read-only store succeeded")
	}
	if _, err := r.Users(); err != nil {
		t.Fatal(err)
	}
}

func TestKeyOrder(t *testing.T) {
	vals := []int64{-1 << 62, -5, -1, 0, 1, 7, 1 << 40}
	for i := 1; i < len(vals); i++ {
		if string(i64(vals[i-1])) >= string(i64(vals[i])) {
			t.Errorf("i64(%d) does not sort before i64(%d)", vals[i-1], vals[i])
		}
		if getI64(i64(vals[i])) != vals[i] {
			t.Errorf("i64 round trip of %d", vals[i])
		}
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if string(timeKey(time.Time{})) >= string(timeKey(t0)) || string(timeKey(t0)) >= string(timeKey(t0.Add(time.Nanosecond))) {
		t.Error("timeKey does not sort by time (zero time included)")
	}
}

func TestMigrateNewFileReportsSteps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	s, err := Open(path, Options{AllowOldSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	from, to, err := s.Migrate()
	if err != nil || from != 0 || to != LatestSchema() {
		t.Fatalf("Migrate of a new file = %d, %d, %v; want 0, %d", from, to, err, LatestSchema())
	}
}

func TestKV(t *testing.T) {
	s, _ := openTest(t)
	if _, ok, err := s.Value("share/user/1"); ok || err != nil {
		t.Fatalf("Value of a missing key = %v, %v", ok, err)
	}
	if err := s.SetValue("share/user/1", "https://cloud/s/abc"); err != nil {
		t.Fatal(err)
	}
	if v, ok, _ := s.Value("share/user/1"); !ok || v != "https://cloud/s/abc" {
		t.Fatalf("Value = %q, %v", v, ok)
	}
	if err := s.SetValue("share/user/1", ""); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Value("share/user/1"); ok {
		t.Fatal("empty value did not delete the key")
	}
	if err := s.SetValue("", "x"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty key: %v", err)
	}
}
