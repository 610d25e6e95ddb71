package scheduler

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
	"time"

	"hpcbot/store"
)

// AcceptRequest is an input file handed to the scheduler: who sends it, where
// the answers go, the route the bot chose for it, and how to write the file.
// Accept owns the rest: the folder, the input's place in it and the record.
type AcceptRequest struct {
	UserID     uint64 // the user it runs for (their quota, their results)
	TelegramID int64  // who sent the file (or pressed Run again)
	ChatID     int64  // where to answer
	MessageID  int    // the message with the input; 0: none
	// UpdateID is the Telegram update that brought the file: the same update
	// accepted again (the handler runs again after a crash) gives the same
	// calculation, in the same folder. 0: none.
	UpdateID int64
	// Key is the idempotency key of a request no update brought (RunAgain): the
	// same key gives the same calculation. "": none. A request with neither
	// UpdateID nor Key makes a new calculation each time.
	Key string
	// At is when the file was sent (the message's date): it names the folder, so
	// with UpdateID it must be the same each time the update is handled.
	// Zero: now.
	At       time.Time
	FileName string // the input's name, a plain file name (the bot checked it)
	Caption  string // as the user typed it (trimmed), what Route was given
	Route    Route  // from Route
	// Window is the quota window: the user's calculations created in the last
	// Window that count for the quota must be fewer than their limit.
	Window time.Duration
	// Limit is the largest input accepted, in bytes; 0: no limit.
	Limit int64
	// Write writes the input into dir/name, at most Limit bytes, so that the
	// file is either complete or absent (through a temporary file and a rename).
	// dir exists (mode 0700); it is a private folder of this call under
	// download_path's IncomingDir, not the calculation's, so that whatever a
	// write killed halfway leaves behind never lands in the calculation (and
	// on the cluster). Accept checks the file, makes it 0600 and moves it into
	// the calculation's folder.
	Write func(dir, name string) error
	// RunAgainOf is the calculation this one runs again; 0: a new input.
	RunAgainOf uint64
}

// Accept turns an input file into a calculation: it chooses the calculation's
// folder under download_path (FolderName), has the input written into it
// (req.Write), creates the record (store.CreateCalculation: the quota is checked
// and the calculation created in one transaction) and wakes the cluster's
// worker. The input is written before the record exists, so a received
// calculation always has its input.
//
// The same update (or key) accepted twice, concurrently or after a crash at any
// point, gives the same calculation, never two: one already created is returned
// (and woken) without writing anything; otherwise the input is written again
// into the same folder.
//
// When no calculation comes of it (Write fails, the written file is above
// Limit, the quota is used up: store.ErrQuotaExceeded, the user is blocked:
// store.ErrBlocked, both wrapped) the input and its folder are removed. The
// route's cluster must be configured (ErrUnknownCluster); a drained one takes
// the calculation all the same, which waits until it is undrained.
func (s *Scheduler) Accept(ctx context.Context, req AcceptRequest) (store.Calculation, error) {
	if err := s.checkAccept(req); err != nil {
		return store.Calculation{}, err
	}
	if req.UpdateID != 0 || req.Key != "" {
		c, err := s.st.CalcCreatedBy(req.UpdateID, req.Key)
		if err == nil {
			s.Wake(c.ID)
			return c, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return store.Calculation{}, fmt.Errorf("accept %s: %w", req.FileName, err)
		}
	}
	folder, err := s.acceptFolder(req)
	if err != nil {
		return store.Calculation{}, fmt.Errorf("accept %s: %w", req.FileName, err)
	}
	dir := s.LocalDir(folder)
	c, err := s.acceptIn(ctx, req, folder, dir)
	if req.Key != "" {
		// The reservation has served: the record (or nothing) is there now.
		if derr := s.st.SetValue(acceptKey(req.Key), ""); derr != nil {
			s.log.Warn("accept: forget the folder reservation", "key", req.Key, "err", derr)
		}
	}
	if err != nil {
		return store.Calculation{}, err
	}
	s.Wake(c.ID)
	return c, nil
}

// IncomingDir is the folder under download_path where Accept has inputs
// written before it moves them into their calculation's folder: a write
// interrupted by a crash leaves its debris there, never in a calculation.
// It is not a calculation folder (FolderName never starts with a dot).
const IncomingDir = ".incoming"

// incomingMaxAge: debris in IncomingDir older than this is removed at the next
// Accept; no write takes that long.
const incomingMaxAge = 24 * time.Hour

// writeIncoming has req.Write write the input into a private folder under
// IncomingDir, checks that it is a regular file within the limit, makes it
// 0600 and moves it to path (in the same file system). On error nothing is
// left at path.
func (s *Scheduler) writeIncoming(req AcceptRequest, path string) error {
	inc := filepath.Join(s.downloadPath, IncomingDir)
	if err := os.MkdirAll(inc, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", inc, err)
	}
	s.sweepIncoming(inc)
	tmp, err := os.MkdirTemp(inc, "accept-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := req.Write(tmp, req.FileName); err != nil {
		return fmt.Errorf("write the input: %w", err)
	}
	src := filepath.Join(tmp, req.FileName)
	fi, err := os.Lstat(src)
	switch {
	case err != nil:
		err = fmt.Errorf("the input was not written: %w", err)
	case !fi.Mode().IsRegular():
		err = fmt.Errorf("the input is not a regular file (%s)", fi.Mode().Type())
	case req.Limit > 0 && fi.Size() > req.Limit:
		err = fmt.Errorf("the input has %d bytes, above the limit %d", fi.Size(), req.Limit)
	default:
		err = os.Chmod(src, 0o600)
	}
	if err != nil {
		return err
	}
	return os.Rename(src, path)
}

// sweepIncoming removes what crashed writes left in IncomingDir long ago.
func (s *Scheduler) sweepIncoming(inc string) {
	ents, err := os.ReadDir(inc)
	if err != nil {
		return
	}
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > incomingMaxAge { // file times are wall-clock times
			if err := os.RemoveAll(filepath.Join(inc, e.Name())); err != nil {
				s.log.Warn("accept: remove an old incoming folder", "path", filepath.Join(inc, e.Name()), "err", err)
			}
		}
	}
}

// acceptIn writes the input into dir and creates the record; when that gives
// no calculation it removes what it wrote.
func (s *Scheduler) acceptIn(ctx context.Context, req AcceptRequest, folder, dir string) (store.Calculation, error) {
	path := filepath.Join(dir, req.FileName)
	discard := func() {
		// Another Accept of the same update may have created the calculation
		// in this very folder meanwhile: then the input is its.
		if c, err := s.st.CalcCreatedBy(req.UpdateID, req.Key); err == nil && c.LocalDir == dir {
			return
		}
		os.Remove(path)
		os.Remove(dir) // only when nothing else is in it
	}
	if err := ctx.Err(); err != nil {
		return store.Calculation{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return store.Calculation{}, fmt.Errorf("accept %s: create %s: %w", req.FileName, dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		discard()
		return store.Calculation{}, fmt.Errorf("accept %s: %w", req.FileName, err)
	}
	if err := s.writeIncoming(req, path); err != nil {
		discard()
		return store.Calculation{}, fmt.Errorf("accept %s: %w", req.FileName, err)
	}
	caption := req.Caption
	rt := req.Route
	c, err := s.st.CreateCalculation(store.Calculation{
		UserID: req.UserID, TelegramID: req.TelegramID, ChatID: req.ChatID, MessageID: req.MessageID,
		UpdateID: req.UpdateID, Key: req.Key, RunAgainOf: req.RunAgainOf,
		InputName: req.FileName, Caption: &caption, Folder: folder, LocalDir: dir,
		Runner: rt.Runner, Program: rt.Plan.Program, Argv: rt.Plan.Argv, Launch: rt.Plan.Launch,
		Resources: rt.Plan.Resources, ResultExtensions: rt.Plan.Extensions, ResultFiles: rt.Plan.Files,
		Cluster: rt.Cluster,
	}, req.Window, s.now())
	if errors.Is(err, store.ErrDuplicateUpdate) {
		// Created meanwhile by another Accept of the same update or key: the
		// same folder when it came from the same update, and then the file was
		// just written again in place.
		if c.LocalDir != dir {
			discard()
		}
		return c, nil
	}
	if err != nil {
		discard()
		return store.Calculation{}, fmt.Errorf("accept %s: %w", req.FileName, err)
	}
	return c, nil
}

// checkAccept refuses a request Accept cannot carry out.
func (s *Scheduler) checkAccept(req AcceptRequest) error {
	name := req.FileName
	switch {
	case name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, "."):
		return fmt.Errorf("accept: %q is not a plain file name", name)
	case req.Write == nil:
		return errors.New("accept: no way to write the input")
	case req.UserID == 0:
		return errors.New("accept: no user")
	case s.byLabel[req.Route.Cluster] == nil:
		return fmt.Errorf("accept %s: cluster %q: %w", name, req.Route.Cluster, ErrUnknownCluster)
	}
	return nil
}

// acceptFolder is the calculation's folder name. From an update it is
// FolderName of the update and the message's date: the same each time the
// update is handled. From a key it is chosen once and reserved in the store
// until the calculation exists, so that a crash between writing the input and
// creating the record leaves no second folder behind when the same key comes
// again.
func (s *Scheduler) acceptFolder(req AcceptRequest) (string, error) {
	at := req.At
	if at.IsZero() {
		at = s.now()
	}
	if req.UpdateID != 0 || req.Key == "" {
		return FolderName(req.UserID, req.UpdateID, req.FileName, at), nil
	}
	k := acceptKey(req.Key)
	if folder, ok, err := s.st.Value(k); err != nil || ok {
		return folder, err
	}
	folder := FolderName(req.UserID, keyNumber(req.Key), req.FileName, at)
	return folder, s.st.SetValue(k, folder)
}

// acceptKey is the store's kv key of the folder reserved for an Accept by key.
func acceptKey(key string) string { return "accept/" + key }

// keyNumber stands for an idempotency key in a folder name where an update id
// would be: two keys of one user and file name in the same second get two
// folders.
func keyNumber(key string) int64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	return int64(h.Sum64() >> 24) // 40 bits: short, and apart for any keys met in one second
}
