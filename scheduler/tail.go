package scheduler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"hpcbot/plugins"
	"hpcbot/store"
)

// Errors of Tail, each wrapped with the details; the bot tells them apart
// with errors.Is.
var (
	// ErrNotOnCluster: the calculation has no job yet (its input is still
	// being uploaded or submitted, or it never got that far).
	ErrNotOnCluster = errors.New("the calculation is not on a cluster yet")
	// ErrClusterUnreachable: the cluster (or its plugin) did not answer; try later.
	ErrClusterUnreachable = errors.New("the cluster cannot be reached")
	// ErrTailNotSupported: the cluster's scheduler plugin cannot show logs.
	ErrTailNotSupported = errors.New("the cluster's scheduler plugin cannot show logs")
	// ErrNoOutput: the job has written no output yet, or its folder is gone.
	ErrNoOutput = errors.New("the job has no output yet")
)

// DefaultTailLines is how many lines Tail shows when asked for 0.
const DefaultTailLines = 30

// Tail returns the last lines (at most plugins.MaxTailLines, and
// plugins.MaxTailBytes bytes) of a calculation's job output, for the bot's
// "Log" button: valid UTF-8 with no control characters but newline and tab,
// safe to show once escaped for the chat's markup. It shows the program's
// standard output while the job runs or after it succeeded, and its standard
// error after it failed (that is where a program says why), each falling back
// to the other stream when it is empty.
//
// Once the results are fetched it reads the fetched copies on this host; before
// that it asks the cluster's scheduler plugin, which reads only the end of the
// file. Errors wrap ErrNotOnCluster, ErrClusterUnreachable,
// ErrTailNotSupported, ErrNoOutput, ErrUnknownCluster or store.ErrNotFound.
func (s *Scheduler) Tail(ctx context.Context, calcID uint64, lines int) (string, error) {
	calc, err := s.st.Calc(calcID)
	if err != nil {
		return "", fmt.Errorf("tail: %w", err)
	}
	if lines <= 0 {
		lines = DefaultTailLines
	}
	lines, size := plugins.TailCaps(lines, plugins.MaxTailBytes)
	preferError := tailPrefersError(calc)
	if retrievedOrLater(calc.State) {
		if res, ok := localTail(calc, preferError, lines, size); ok {
			return res.Text, nil
		}
		if calc.Progress.Cleaned {
			return "", fmt.Errorf("calc %d: %w (the results were delivered and the cluster folder removed)", calc.ID, ErrNoOutput)
		}
	}
	if calc.JobID == "" {
		return "", fmt.Errorf("calc %d is %s: %w", calc.ID, calc.State, ErrNotOnCluster)
	}
	c := s.byLabel[calc.Cluster]
	if c == nil {
		return "", fmt.Errorf("calc %d: %w: %q", calc.ID, ErrUnknownCluster, calc.Cluster)
	}
	t, ok := c.sched.(plugins.Tailer)
	if !ok {
		return "", fmt.Errorf("cluster %s: %w", c.label(), ErrTailNotSupported)
	}
	res, err := t.Tail(ctx, plugins.TailRequest{CalcID: calc.ID, JobID: calc.JobID, Folder: calc.Folder, JobName: jobName(calc.ID),
		MaxLines: lines, MaxBytes: size, PreferError: preferError})
	switch {
	case err == nil:
		return res.Text, nil
	case errors.Is(err, plugins.ErrNotSupported):
		return "", fmt.Errorf("cluster %s: %w", c.label(), ErrTailNotSupported)
	case plugins.KindOf(err) == plugins.KindNotFound:
		return "", fmt.Errorf("calc %d on %s: %w: %v", calc.ID, c.label(), ErrNoOutput, err)
	case plugins.IsTransient(err), plugins.KindOf(err) == plugins.KindAuth:
		c.health(err)
		return "", fmt.Errorf("calc %d on %s: %w: %v", calc.ID, c.label(), ErrClusterUnreachable, err)
	}
	return "", fmt.Errorf("tail of calc %d on %s: %w", calc.ID, c.label(), err)
}

// tailPrefersError: the job failed (or the calculation ended in error after
// it ran), so its error stream says why.
func tailPrefersError(calc store.Calculation) bool {
	if calc.State == store.StateError {
		return true
	}
	state, _, ended := calc.Outcome()
	return ended && state != store.StateSucceeded && state != store.StateCancelled
}

func retrievedOrLater(st store.State) bool {
	switch st {
	case store.StateRetrieved, store.StateDeliveryFailed, store.StateDelivered, store.StateNotified:
		return true
	}
	return false
}

// localTail reads the job's fetched output or error in calc.LocalDir: the
// files the built-in schedulers write (<job name>.out/.err, PBS's
// hpcbot-job.out/.err), the end of each only. ok is false when neither was
// fetched.
func localTail(calc store.Calculation, preferError bool, lines, size int) (plugins.TailResult, bool) {
	if calc.LocalDir == "" {
		return plugins.TailResult{}, false
	}
	for _, stem := range []string{jobName(calc.ID), "hpcbot-job"} {
		streams := []string{plugins.StreamOutput, plugins.StreamError}
		names := []string{stem + ".out", stem + ".err"}
		if preferError {
			streams[0], streams[1] = streams[1], streams[0]
			names[0], names[1] = names[1], names[0]
		}
		var found bool
		var empty plugins.TailResult
		for i, name := range names {
			data, whole, err := readEnd(filepath.Join(calc.LocalDir, name), int64(size)+4<<10)
			if err != nil {
				continue
			}
			text, cut := plugins.TailText(data, whole, lines, size)
			res := plugins.TailResult{Text: text, Stream: streams[i], Truncated: cut}
			if len(data) > 0 {
				return res, true
			}
			if !found {
				found, empty = true, res
			}
		}
		if found {
			return empty, true
		}
	}
	return plugins.TailResult{}, false
}

// readEnd reads at most the last n bytes of a regular file; whole says they
// are all of it. A link is not followed.
func readEnd(path string, n int64) (data []byte, whole bool, err error) {
	info, err := os.Lstat(path)
	if err != nil {
		return nil, false, err
	}
	if !info.Mode().IsRegular() {
		return nil, false, fmt.Errorf("%s: not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	whole = info.Size() <= n
	if !whole {
		if _, err := f.Seek(info.Size()-n, io.SeekStart); err != nil {
			return nil, false, err
		}
	}
	data, err = io.ReadAll(io.LimitReader(f, n))
	return data, whole, err
}
