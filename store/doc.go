// Package store keeps every persistent record of hpcbot in one bbolt file,
// with the invariants that must hold across goroutines and crashes: the quota
// is checked and the calculation created in one transaction, a Telegram update
// creates at most one calculation, calculations change state only along the
// transition table, messages are queued together with the change that causes
// them, and a hot backup is always consistent. Nothing else opens the file.
//
// Records are JSON; numeric ids come from the bucket's NextSequence and are
// stored as 8-byte big-endian keys, so keys sort by id. Signed numbers
// (Telegram ids, update ids, times as Unix nanoseconds) are stored with the
// sign bit flipped, so byte order equals numeric order.
//
// Buckets (schema version 5) and their keys:
//
//	meta                  "schema_version" → uint64; "telegram_offset" → int64;
//	                      "telegram_last_update_at" → int64 Unix ns
//	orgs                  label → Organization
//	users                 user id → User
//	accounts              Telegram id → TelegramAccount
//	accounts_by_username  lower-case username (no "@") → Telegram id
//	accounts_by_user      user id ‖ Telegram id → (empty)
//	calcs                 calc id → Calculation
//	calcs_by_state        state ‖ 0x00 ‖ calc id → (empty)
//	calcs_by_user         user id ‖ created Unix ns ‖ calc id → 1 if it counts for the quota, else 0
//	calcs_by_update       Telegram update id → calc id
//	calcs_active          len(cluster) uvarint ‖ cluster ‖ state ‖ 0x00 ‖ calc id → what a poll
//	                      needs (ActiveJob, binary, active.go), for calculations in submitted,
//	                      pending or running only (schema 2)
//	calcs_ended           end Unix ns ‖ calc id → format, flags (remote cleanup due, error
//	                      notice due), cluster (EndedCalc, binary, ended.go), for calculations
//	                      in notified or error only; the end is the time the calculation
//	                      entered that state (schema 5)
//	events                event id → Event (append-only)
//	inbox                 update id → InboxItem (raw JSON until handled)
//	inbox_pending         update id → (empty), for updates not yet handled
//	outbox                key → OutItem
//	outbox_pending        sequence → key, for messages not yet sent, in queue order
//	kv                    string key → string value (small values of no record kind; kv.go lists the keys)
//	groups                chat id → Group: groups an admin allowed or the bot refused (schema 3)
//	cards                 calc id → Card: the calculation's live message in Telegram (card.go; schema 6)
//	cards_live            calc id → (empty), for the cards that may still change
//
// Every hot path reads an index: a cluster's active jobs (the scheduler's
// polls, ActiveJobs: no record decoded), the final calculations by end time
// (housekeeping, EndedCalcs and EndedDue: no record decoded), calculations by state, by user and time (quota, /jobs, /status, usage), by update id
// (redelivered updates); accounts by Telegram id and by username; the pending
// parts of the inbox and outbox.
//
// Schema changes are an append-only list of steps (migrations.go), each run in
// one transaction together with the version bump. Open refuses a file newer
// than the binary (ErrSchemaTooNew) and, unless Options.AllowOldSchema is set,
// one older than it (ErrSchemaTooOld: run `hpcbot migrate`); a new empty file
// is created at the current schema.
//
// Methods that change a record and take a callback (UpdateUser, UpdateCalc,
// Transition) hand it a *Tx, on which AddEvent, OutboxPut and SetValue join
// the same transaction.
//
// A running daemon holds the file's lock, so no other process can open it,
// not even read-only: a hot backup is taken by the process holding the store
// (Backup, BackupFile).
package store
