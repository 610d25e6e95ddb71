package store

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Cancel is how far a cancel request got.
type Cancel string

const (
	CancelNone      Cancel = ""          // nobody asked
	CancelRequested Cancel = "requested" // the user or an admin asked; the scheduler has not yet
	CancelSent      Cancel = "sent"      // the scheduler plugin accepted the cancel
)

// Progress is the scheduler's durable bookkeeping of a calculation besides
// the record's other fields. The scheduler writes each field in the
// transaction of the step it records.
type Progress struct {
	Cancel       Cancel `json:"cancel,omitempty"`
	Accepted     bool   `json:"accepted,omitempty"`      // the user was told the cluster took the job
	FailoverFrom string `json:"failover_from,omitempty"` // the cluster the calculation left at intake

	Started        time.Time `json:"started,omitzero"`          // job start as the scheduler plugin saw it
	Ended          time.Time `json:"ended,omitzero"`            // job end as the scheduler plugin saw it
	OutcomeUnknown bool      `json:"outcome_unknown,omitempty"` // the job ended but its exit status is unknown

	Files   []string      `json:"files,omitempty"`   // fetched result files, slash-separated, relative to LocalDir
	Skipped []SkippedFile `json:"skipped,omitempty"` // the result files not fetched, and why

	// Upload is the resumable state of a cloud upload in progress, as the
	// Nextcloud client encodes it (scheduler/nextcloud.UploadState); the store
	// does not read it.
	Upload json.RawMessage `json:"upload,omitempty"`
	// DeliveryHeld: in StateDeliveryFailed, the cloud refused the bot's
	// credentials; no retry until an admin's /redeliver or a restart.
	DeliveryHeld bool     `json:"delivery_held,omitempty"`
	Send         []string `json:"send,omitempty"`  // local files the bot sends as documents
	Code         string   `json:"code,omitempty"`  // the finish's notice code (too_large)
	Where        string   `json:"where,omitempty"` // too_large: where the results are on the cluster

	ErrorCode     string        `json:"error_code,omitempty"`     // why the calculation is in error
	Refusal       *InputRefusal `json:"refusal,omitempty"`        // input_refused: what the runner's Check said
	ErrorNotified bool          `json:"error_notified,omitempty"` // the error notice was queued
	Cleaned       bool          `json:"cleaned,omitempty"`        // the remote folder was removed

	// Drained is since when the calculation waits at intake for its cluster's
	// maintenance to end (the drain's start); zero once it goes on.
	Drained time.Time `json:"drained,omitzero"`
}

// InputRefusal is a runner's refusal of an input before upload
// (plugins.Refusal, kept here so that the store knows nothing of plugins).
type InputRefusal struct {
	Code   string `json:"code"`
	Detail string `json:"detail,omitempty"`
	Line   int    `json:"line,omitempty"`  // 1-based; 0: none
	Limit  string `json:"limit,omitempty"` // the number it compares with
}

// SkippedFile is a result file that was not fetched. Code is the scheduler
// plugin's reason (plugins.Skip*: too_large, limit_reached, link, ...), which
// the bot words in the user's language. A record written before codes holds
// the English "path: reason" it showed then, kept whole in Text (JSON: a plain
// string); Path and Code are empty.
type SkippedFile struct {
	Path string `json:"path,omitempty"`
	Code string `json:"code,omitempty"`
	Text string `json:"text,omitempty"`
}

// UnmarshalJSON reads both forms: an object, or an older record's string.
func (f *SkippedFile) UnmarshalJSON(b []byte) error {
	var text string
	if err := json.Unmarshal(b, &text); err == nil {
		*f = SkippedFile{Text: text}
		return nil
	}
	type plain SkippedFile
	return json.Unmarshal(b, (*plain)(f))
}

// legacyProgress converts the map of strings schema 3 kept under "delivery"
// (times as RFC 3339, lists as JSON, flags as "1") into a Progress. A value it
// cannot read is an error naming the key: the migration stops rather than
// drop what it cannot convert.
func legacyProgress(d map[string]string) (Progress, error) {
	var p Progress
	list := func(k string, dst any) error {
		if v := d[k]; v != "" {
			if err := json.Unmarshal([]byte(v), dst); err != nil {
				return fmt.Errorf("delivery %q: %w", k, err)
			}
		}
		return nil
	}
	when := func(k string, dst *time.Time) error {
		if v := d[k]; v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return fmt.Errorf("delivery %q: %w", k, err)
			}
			*dst = t
		}
		return nil
	}
	for k, v := range d {
		switch k {
		case "cancel":
			if v != string(CancelRequested) && v != string(CancelSent) {
				return p, fmt.Errorf("delivery %q: unknown value %q", k, v)
			}
			p.Cancel = Cancel(v)
		case "accepted":
			p.Accepted = v != ""
		case "failover_from":
			p.FailoverFrom = v
		case "outcome":
			p.OutcomeUnknown = v == "unknown"
		case "upload":
			if v != "" {
				if !json.Valid([]byte(v)) {
					return p, fmt.Errorf("delivery %q: not JSON", k)
				}
				p.Upload = json.RawMessage(v)
			}
		case "code":
			p.Code = v
		case "where":
			p.Where = v
		case "error_code":
			p.ErrorCode = v
		case "error_notified":
			p.ErrorNotified = v != ""
		case "cleaned":
			p.Cleaned = v != ""
		case "refusal": // the JSON of plugins.Refusal (Go field names)
			var r struct {
				Code, Detail, Limit string
				Line                int
			}
			if err := json.Unmarshal([]byte(v), &r); err != nil {
				return p, fmt.Errorf("delivery %q: %w", k, err)
			}
			if r.Code != "" {
				p.Refusal = &InputRefusal{Code: r.Code, Detail: r.Detail, Line: r.Line, Limit: r.Limit}
			}
		case "files", "skipped", "send", "started", "ended":
		default:
			return p, fmt.Errorf("delivery: unknown key %q", k)
		}
	}
	for _, err := range []error{
		list("files", &p.Files), list("skipped", &p.Skipped), list("send", &p.Send),
		when("started", &p.Started), when("ended", &p.Ended),
	} {
		if err != nil {
			return p, err
		}
	}
	return p, nil
}

// convertProgress is the migration step of schema 4: every calculation's
// "delivery" map of strings becomes its typed Progress, and calcs_active is
// rebuilt in its new format (which carries Cancel and Accepted instead of the
// map).
func convertProgress(tx *bolt.Tx) error {
	calcs := tx.Bucket(bCalcs)
	type legacy struct {
		Delivery map[string]string `json:"delivery"`
	}
	var conv []Calculation
	err := calcs.ForEach(func(k, v []byte) error {
		var old legacy
		if err := json.Unmarshal(v, &old); err != nil {
			return fmt.Errorf("calc %d: %w", getU64(k), err)
		}
		var c Calculation
		if err := json.Unmarshal(v, &c); err != nil {
			return fmt.Errorf("calc %d: %w", getU64(k), err)
		}
		p, err := legacyProgress(old.Delivery)
		if err != nil {
			return fmt.Errorf("calc %d: %w", c.ID, err)
		}
		c.Progress = p
		conv = append(conv, c)
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range conv { // not inside ForEach: a bucket must not change while it is iterated
		if err := putJSON(calcs, u64(c.ID), c); err != nil {
			return fmt.Errorf("calc %d: %w", c.ID, err)
		}
	}
	return buildActiveIndex(tx)
}
