package store

import "fmt"

// The kv bucket holds small values that belong to no record kind, keyed by a
// path-like string. Keys in use:
//
//	bot/log_chat_id        the log chat after its group became a supergroup:
//	                       "<configured id> <new id>", used while bot.log_chat_id
//	                       is still the configured id (bot.kvLogChat)
//	calc/key/<key>         the id of the calculation created under idempotency
//	                       key <key> (Calculation.Key), written with it
//	accept/<key>           the folder scheduler.Accept chose for key while it
//	                       writes the input (the same folder when a crash makes
//	                       it start again); removed once the calculation exists
//	cluster/<label>/drain  a cluster's maintenance state as JSON: drained, reason,
//	                       by, since, and the configuration's drained key when
//	                       it was written (scheduler.drainRecord)
//
// Reserved, written by nothing today (the scheduler asks Nextcloud for an
// existing share instead):
//
//	share/user/<user id>   the public Nextcloud share of a user's folder (share = "per_user")
//
// Add new keys to this list; prefer a typed record when a value grows fields.

// Value returns the value stored under key; ok is false when there is none.
func (s *Store) Value(key string) (value string, ok bool, err error) {
	err = s.view(func(t *Tx) error {
		value, ok = t.Value(key)
		return nil
	})
	return value, ok, err
}

// SetValue stores value under key (an empty value deletes the key).
func (s *Store) SetValue(key, value string) error {
	return s.update(func(t *Tx) error { return t.SetValue(key, value) })
}

// Value returns the value stored under key in this transaction.
func (t *Tx) Value(key string) (string, bool) {
	v := t.bucket(bKV).Get([]byte(key))
	return string(v), v != nil
}

// SetValue stores value under key in this transaction (empty: delete).
func (t *Tx) SetValue(key, value string) error {
	if key == "" {
		return fmt.Errorf("set value: empty key: %w", ErrInvalid)
	}
	if value == "" {
		return t.bucket(bKV).Delete([]byte(key))
	}
	return t.bucket(bKV).Put([]byte(key), []byte(value))
}
