package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Sentinel errors. Callers test them with errors.Is; the returned errors wrap
// them with context (which record, which numbers).
var (
	// ErrNotFound: the record (organization, user, account, calculation, inbox or
	// outbox item) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrQuotaExceeded: the user already has Limit calculations in the quota window.
	ErrQuotaExceeded = errors.New("quota exceeded")
	// ErrBlocked: the user is blocked and may not create calculations.
	ErrBlocked = errors.New("user is blocked")
	// ErrDuplicateUpdate: a calculation for this Telegram update already exists;
	// CreateCalculation returns that calculation together with this error.
	ErrDuplicateUpdate = errors.New("telegram update already has a calculation")
	// ErrBadTransition: the transition table does not allow the state change.
	ErrBadTransition = errors.New("state transition not allowed")
	// ErrLocked: another process holds the store file.
	ErrLocked = errors.New("store is locked")
	// ErrSchemaTooNew: the file was written by a newer hpcbot; this binary refuses it.
	ErrSchemaTooNew = errors.New("store schema is newer than this hpcbot")
	// ErrSchemaTooOld: the file needs `hpcbot migrate` before the daemon may use it.
	ErrSchemaTooOld = errors.New("store schema is older than this hpcbot")
	// ErrInvalid: the record handed to the store breaks one of its rules (an empty
	// label, an unknown parent, a field changed that may not change).
	ErrInvalid = errors.New("invalid record")
)

// invalidError is a message that matches ErrInvalid without repeating its
// text, for operator-facing lists (one line per bad CSV row).
type invalidError struct{ msg string }

func (e invalidError) Error() string { return e.msg }
func (e invalidError) Unwrap() error { return ErrInvalid }

func invalidf(format string, args ...any) error {
	return invalidError{msg: fmt.Sprintf(format, args...)}
}

// DefaultPath is the store file used when the configuration names none.
const DefaultPath = "hpcbot.db"

// DefaultLockTimeout is how long Open waits for another process to release the file.
const DefaultLockTimeout = 2 * time.Second

// Config is the [store] section of hpcbot.toml.
type Config struct {
	// Path of the bbolt file; created by `hpcbot migrate` or on the first `run`.
	Path string `toml:"path"`
}

// Validate reports problems with the section, each naming its key.
func (c Config) Validate() error {
	var errs []error
	switch {
	case strings.TrimSpace(c.Path) == "":
		errs = append(errs, errors.New(`store.path is empty: set it to the bbolt file, for example "hpcbot.db"`))
	case strings.ContainsRune(c.Path, 0):
		errs = append(errs, errors.New("store.path contains a NUL byte"))
	case strings.HasSuffix(c.Path, "/") || strings.HasSuffix(c.Path, string(os.PathSeparator)):
		errs = append(errs, fmt.Errorf("store.path %q names a directory: give a file name inside it, for example %q", c.Path, strings.TrimRight(c.Path, "/")+"/hpcbot.db"))
	default:
		if fi, err := os.Stat(c.Path); err == nil && fi.IsDir() {
			errs = append(errs, fmt.Errorf("store.path %q is a directory: give a file name inside it, for example %q", c.Path, c.Path+"/hpcbot.db"))
		}
	}
	return errors.Join(errs...)
}

// Options tune Open.
type Options struct {
	// ReadOnly opens the file with a shared lock and refuses every write.
	ReadOnly bool
	// LockTimeout is how long to wait for another process to release the file;
	// 0 means DefaultLockTimeout.
	LockTimeout time.Duration
	// AllowOldSchema lets Open succeed on a file whose schema is older than this
	// binary's, so that Migrate (and Backup) can run. Until Migrate has run,
	// use only Migrate, SchemaVersion, Backup, BackupFile, Check and Close.
	// The daemon leaves it false.
	AllowOldSchema bool
}

// Store is the bbolt file with every persistent record of hpcbot. It is safe
// for concurrent use; each method runs in its own transaction.
type Store struct {
	db   *bolt.DB
	path string
	// now is the clock; tests replace it.
	now func() time.Time
}

// Open opens (and, unless ReadOnly, creates) the store at path.
//
// A file whose schema is newer than this binary is refused with ErrSchemaTooNew.
// An older schema is refused with ErrSchemaTooOld unless opts.AllowOldSchema is
// set; a brand-new empty file is initialised to the current schema at once
// (with AllowOldSchema it is left to Migrate, so that it reports 0 → latest).
// When another process holds the file for longer than opts.LockTimeout, the
// error wraps ErrLocked.
func Open(path string, opts Options) (*Store, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:  opts.LockTimeout,
		ReadOnly: opts.ReadOnly,
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("store %s is in use by another hpcbot process (is `hpcbot run` running?): %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &Store{db: db, path: path, now: time.Now}
	if err := s.checkSchema(opts); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Path is the file the store was opened from.
func (s *Store) Path() string { return s.path }

// Close releases the file.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store %s: %w", s.path, err)
	}
	return nil
}

// Tx is a write transaction handed to the callbacks of UpdateUser, UpdateCalc
// and Transition, so that an audit event or an outgoing message commits
// together with the change (or not at all). It must not be used after the
// callback returns.
type Tx struct {
	tx  *bolt.Tx
	now time.Time
}

func (s *Store) update(fn func(*Tx) error) error {
	return s.db.Update(func(btx *bolt.Tx) error {
		return fn(&Tx{tx: btx, now: s.now().Round(0)})
	})
}

func (s *Store) view(fn func(*Tx) error) error {
	return s.db.View(func(btx *bolt.Tx) error {
		return fn(&Tx{tx: btx, now: s.now().Round(0)})
	})
}

// Bucket names. doc.go describes each one.
var (
	bMeta          = []byte("meta")
	bOrgs          = []byte("orgs")
	bUsers         = []byte("users")
	bAccounts      = []byte("accounts")
	bAccByUsername = []byte("accounts_by_username")
	bAccByUser     = []byte("accounts_by_user")
	bCalcs         = []byte("calcs")
	bCalcByState   = []byte("calcs_by_state")
	bCalcByUser    = []byte("calcs_by_user")
	bCalcByUpdate  = []byte("calcs_by_update")
	bCalcActive    = []byte("calcs_active")
	bCalcEnded     = []byte("calcs_ended")
	bEvents        = []byte("events")
	bInbox         = []byte("inbox")
	bInboxPending  = []byte("inbox_pending")
	bOutbox        = []byte("outbox")
	bOutboxPending = []byte("outbox_pending")
	bKV            = []byte("kv")
	bGroups        = []byte("groups")
	bCards         = []byte("cards")
	bCardsLive     = []byte("cards_live")
)

func (t *Tx) bucket(name []byte) *bolt.Bucket {
	b := t.tx.Bucket(name)
	if b == nil {
		// Open checks the schema, so a missing bucket is a bug, not a user error.
		panic(fmt.Sprintf("store: bucket %s missing (schema not migrated?)", name))
	}
	return b
}

// u64 encodes an id as an 8-byte big-endian key, so that keys sort by id.
func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

// i64 encodes a signed value so that byte order equals numeric order.
func i64(v int64) []byte { return u64(uint64(v) ^ (1 << 63)) }

func getU64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

func getI64(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)) }

func cat(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]byte, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode record %x: %w", key, err)
	}
	return b.Put(key, data)
}

func getJSON(b *bolt.Bucket, key []byte, v any) (bool, error) {
	data := b.Get(key)
	if data == nil {
		return false, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return true, fmt.Errorf("decode record %x: %w", key, err)
	}
	return true, nil
}
