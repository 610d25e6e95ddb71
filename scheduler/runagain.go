package scheduler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"hpcbot/plugins/shellquote"
	"hpcbot/store"
)

// ErrInputGone: RunAgain of a calculation whose input is no longer kept
// (housekeeping removes a calculation's local folder, input included, once it
// ended longer than retention ago).
var ErrInputGone = errors.New("the calculation's input is no longer kept")

// ErrNotAllowed: RunAgain pressed by someone who is neither the calculation's
// owner nor an admin. The bot checks this before; the scheduler checks again,
// so that no caller can start work on another user's account by mistake.
var ErrNotAllowed = errors.New("only the calculation's owner or an admin may run it again")

// RunAgainRequest is a press of a calculation's Run again button.
type RunAgainRequest struct {
	CalcID uint64 // the calculation to run again
	By     int64  // the Telegram id of who pressed: recorded as who sent the input
	// Admin: By is an admin (bot.admins), who may run anyone's calculation
	// again; otherwise By must be a Telegram account of the owner.
	Admin bool
	// Press names the press: the same CalcID and Press give the same new
	// calculation, never two, so it must be what a repeat of one press
	// shares (a callback redelivered after a crash, a second tap on the same
	// button) and a deliberate new press does not. The callback query id
	// tells apart two taps, so it is not enough alone: the card's button can
	// carry a generation ("again:42:0", drawn anew as "again:42:1" once that
	// rerun exists). "" allows one rerun per calculation.
	Press string
	// Window is the quota window, as for Accept.
	Window time.Duration
}

// RunAgain makes a new calculation for the same user from a calculation's
// input file (copied from its local folder) and caption, routed anew exactly
// as a new file is: the first cluster whose runner takes them, a drained
// cluster's rules, a *plugins.Refusal when no runner does any more (the
// configuration changed). It goes through Accept: the quota (store.
// ErrQuotaExceeded) and the block flag (store.ErrBlocked) hold as for a new
// file (the owner's quota, whoever pressed). By must be one of the owner's
// Telegram accounts, or Admin set: else ErrNotAllowed.
//
// The same press (CalcID and Press) gives the same calculation, even when the
// first attempt crashed half way or the input has gone since. An unknown
// calculation gives store.ErrNotFound (wrapped); one whose input is no longer
// kept, ErrInputGone.
func (s *Scheduler) RunAgain(ctx context.Context, req RunAgainRequest) (store.Calculation, error) {
	old, err := s.st.Calc(req.CalcID)
	if err != nil {
		return store.Calculation{}, fmt.Errorf("run again: %w", err)
	}
	if !req.Admin {
		u, _, err := s.st.UserByTelegramID(req.By)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return store.Calculation{}, fmt.Errorf("run again calc %d: %w", old.ID, err)
		}
		if err != nil || u.ID != old.UserID {
			return store.Calculation{}, fmt.Errorf("run again calc %d pressed by %d: %w", old.ID, req.By, ErrNotAllowed)
		}
	}
	key := RunAgainKey(old.ID, req.Press)
	if c, err := s.st.CalcCreatedBy(0, key); err == nil {
		s.Wake(c.ID)
		return c, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return store.Calculation{}, fmt.Errorf("run again calc %d: %w", old.ID, err)
	}
	src := filepath.Join(old.LocalDir, old.InputName)
	fi, err := os.Lstat(src)
	if old.LocalDir == "" || errors.Is(err, fs.ErrNotExist) || (err == nil && !fi.Mode().IsRegular()) {
		return store.Calculation{}, fmt.Errorf("run again calc %d: %s: %w", old.ID, src, ErrInputGone)
	}
	if err != nil {
		return store.Calculation{}, fmt.Errorf("run again calc %d: %w", old.ID, err)
	}
	// Records from before captions were kept: the caption that gives the same
	// argv again, as failover does.
	caption := shellquote.Join(old.Argv)
	if old.Caption != nil {
		caption = *old.Caption
	}
	route, err := s.Route(ctx, old.InputName, caption)
	if err != nil {
		return store.Calculation{}, err // a *plugins.Refusal as is: the bot tells the user why
	}
	return s.Accept(ctx, AcceptRequest{
		// The owner's account, not the presser's: the new calculation's card
		// and messages go to the owner in the owner's language, also when an
		// admin pressed.
		UserID: old.UserID, TelegramID: old.TelegramID, ChatID: old.ChatID, MessageID: old.MessageID, Key: key,
		FileName: old.InputName, Caption: caption, Route: route, Window: req.Window, Limit: fi.Size(),
		Write: copyInput(src), RunAgainOf: old.ID,
	})
}

// RunAgainKey is the idempotency key of a press of calculation calcID's Run
// again: the calculation that press made is store.CalcCreatedBy(0, key).
func RunAgainKey(calcID uint64, press string) string {
	return fmt.Sprintf("again/%d/%s", calcID, press)
}

// copyInput is an AcceptRequest.Write that copies src through a temporary file.
func copyInput(src string) func(dir, name string) error {
	return func(dir, name string) error {
		in, err := os.Open(src)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%s: %w", src, ErrInputGone)
			}
			return err
		}
		defer in.Close()
		tmp, err := os.CreateTemp(dir, ".copy-*")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name()) // after the rename: a no-op
		_, err = io.Copy(tmp, in)
		if err == nil {
			err = tmp.Sync()
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		return os.Rename(tmp.Name(), filepath.Join(dir, name))
	}
}
