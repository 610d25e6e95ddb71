package nextcloud

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"hpcbot/plugins"
)

// StatusError is an HTTP answer from Nextcloud that was not a success. It is always
// wrapped in a *plugins.Error that says what to do with it (see classify); its text
// is meant for a person: "507 Insufficient Storage (the Nextcloud account is full)".
// It never holds a password: the request went out with credentials in a header,
// and neither the header nor the response body is kept.
type StatusError struct {
	Method string // PUT, MKCOL, ...
	Path   string // the remote path or API the request was about (no host, no credentials)
	Status int    // HTTP status, or the OCS status code for OCS replies that carry one
	// OCSMessage is meta.message of an OCS reply, when there was one.
	OCSMessage string
	// RetryAfter is what the server asked us to wait (Retry-After), 0 when it said nothing.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	text := http.StatusText(e.Status)
	if text == "" {
		text = "status"
	}
	s := strconv.Itoa(e.Status) + " " + text
	if hint := statusHint(e.Status); hint != "" {
		s += " (" + hint + ")"
	}
	if e.OCSMessage != "" {
		s += ": " + e.OCSMessage
	}
	return s
}

// statusHint says in a few words what a status means for an operator.
func statusHint(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "Nextcloud refused the user name or app password; fix storage.user/storage.password, hpcbot does not retry a refused login because Nextcloud's brute-force protection would lock the account out"
	case http.StatusForbidden:
		return "the Nextcloud account may not do this"
	case http.StatusRequestEntityTooLarge:
		return "a web server in front of Nextcloud limits the request size"
	case http.StatusInsufficientStorage:
		return "the Nextcloud account is full"
	case http.StatusTooManyRequests:
		return "Nextcloud rate limit"
	case http.StatusLocked:
		return "the file is locked on the server"
	}
	return ""
}

// Kinds of failure that are not an HTTP status.
var errStalled = errors.New("no progress")

// classify turns a non-success status into an error with a plugins.Kind:
//   - 401 and 403 are KindAuth: never retried automatically, because every failed
//     login counts towards Nextcloud's brute-force protection
//     (docs/FACTS.md#nextcloud-brute-force-protection);
//   - 404 is KindNotFound;
//   - 507 and the other 4xx are KindPermanent (retrying cannot help);
//   - 423 Locked, 429 and every other 5xx are KindTransient.
func classify(op string, e *StatusError) error {
	kind := plugins.KindPermanent
	switch {
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		kind = plugins.KindAuth
	case e.Status == http.StatusNotFound:
		kind = plugins.KindNotFound
	case e.Status == http.StatusInsufficientStorage:
		kind = plugins.KindPermanent
	case e.Status == http.StatusTooManyRequests || e.Status == http.StatusLocked ||
		e.Status == http.StatusRequestTimeout || e.Status >= 500:
		kind = plugins.KindTransient
	}
	return &plugins.Error{Kind: kind, Msg: op, Err: e}
}

// transportError wraps a failure to talk to the server at all (refused, reset,
// timeout, stalled) as transient. ctx is the request's own context, whose cause
// tells a stall from the caller giving up.
func transportError(ctx context.Context, op string, err error) error {
	if cause := context.Cause(ctx); cause != nil && errors.Is(cause, errStalled) {
		err = cause
	}
	return &plugins.Error{Kind: plugins.KindTransient, Msg: op, Err: fmt.Errorf("cannot reach Nextcloud: %w", err)}
}

// statusOf returns the HTTP status behind err, 0 if there is none.
func statusOf(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	return 0
}

// RetryAfter returns how long the server (or the client's own share limiter) asked
// the caller to wait before trying again, and whether it said anything. The
// scheduler uses it as the lower bound of its backoff.
func RetryAfter(err error) (time.Duration, bool) {
	var se *StatusError
	if errors.As(err, &se) && se.RetryAfter > 0 {
		return se.RetryAfter, true
	}
	var le *LimitError
	if errors.As(err, &le) {
		return le.Wait, true
	}
	return 0, false
}

// parseRetryAfter reads a Retry-After header: delta seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
