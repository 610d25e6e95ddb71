package bot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	tele "gopkg.in/telebot.v3"

	"hpcbot/plugins"
	"hpcbot/plugins/shellquote"
	"hpcbot/scheduler"
	"hpcbot/store"
)

// inputNameRx is the only input file name accepted: no path, no spaces, no
// quotes, an extension. A name may not start with a dot (hidden, or "..") nor
// with a dash (a program would read it as an option: see validInputName).
var inputNameRx = regexp.MustCompile(`^[A-Za-z0-9._-]+\.[A-Za-z0-9]+$`)

// maxInputName caps the file name's length.
const maxInputName = 128

// validInputName reports whether name may be used as an input file name.
// Names starting with "-" are refused although the runners also pass the input
// as "./NAME": a file "-mhttp.server" given to `python3 {}` would otherwise run
// `python3 -mhttp.server` (option injection through the file name).
func validInputName(name string) bool {
	return len(name) <= maxInputName && inputNameRx.MatchString(name) && name != "." && name != ".." &&
		!strings.HasPrefix(name, ".") && !strings.HasPrefix(name, "-")
}

// downloadTimeout bounds the download of one input file.
const downloadTimeout = 10 * time.Minute

// onDocument takes an input file: checks the sender, the name, the size, the
// submission rate, the runner (extension or caption) and the quota; then
// downloads it, creates the calculation (once per update) and wakes the
// scheduler. Each refusal says why and what to do.
func (b *Bot) onDocument(r *request) error {
	if !r.private() {
		return nil // files in groups are for people, not for the bot
	}
	if !b.needUser(r) {
		return nil
	}
	doc := r.msg.Document
	name := doc.FileName
	if !validInputName(name) {
		key := "doc.bad_name"
		if strings.HasPrefix(name, "-") {
			key = "doc.dash_name"
		}
		r.refused(key, P{"name": truncate(name, 80)}, docAttempt(name, r.msg.Caption))
		return nil
	}
	limit, public := b.maxInput()
	if doc.FileSize > limit {
		key := "doc.too_big"
		if public {
			key = "doc.too_big_public"
		}
		size, lim := FormatSizes(r.lang, doc.FileSize, limit)
		r.refused(key, P{"size": size, "limit": lim}, docAttempt(name, r.msg.Caption))
		return nil
	}
	// A calculation already created from this update (the handler runs again
	// after a crash): answer nothing new, only make sure it goes on.
	if c, ok := b.calcOfUpdate(r); ok {
		b.calcs.Wake(c.ID)
		b.accepted(r, c)
		return nil
	}
	caption := strings.TrimSpace(r.msg.Caption)
	route, err := b.calcs.Route(r.ctx, name, caption)
	var ref *plugins.Refusal
	if errors.As(err, &ref) {
		r.log.Info("file refused", "file", name, "code", ref.Code, "detail", ref.Detail)
		r.send(refusalText(r.lang, ref))
		r.logRefusal(docAttempt(name, caption), refusalText(b.lang, ref))
		return nil
	}
	if err != nil {
		r.log.Error("route", "file", name, "err", err)
		r.reply("doc.route_failed", nil)
		b.toLogChat(slog.LevelError, r.logKey("route"), "log.failure", P{"what": name, "error": b.redact(err.Error())})
		return nil
	}
	if ok, err := b.withinQuota(r); !ok {
		return err
	}
	if !b.rate.allow(r.user.ID, b.now()) {
		r.refused("doc.rate", P{"files": CountFiles(r.lang, b.rate.perMinute)}, docAttempt(name, caption))
		return nil
	}

	// Accept chooses the folder (the update id tells apart two files of one
	// name sent in the same second, and stays the same when the update is
	// handled again), has the file downloaded into it and creates the
	// calculation once per update.
	var dlErr error
	calc, err := b.calcs.Accept(r.ctx, scheduler.AcceptRequest{
		UserID: r.user.ID, TelegramID: r.from.ID, ChatID: r.chat.ID, MessageID: r.msg.ID, UpdateID: r.update,
		At: r.msg.Time(), FileName: name, Caption: caption, Route: route, Window: b.window(), Limit: limit,
		Write: func(dir, name string) error {
			dlErr = b.download(r.ctx, &doc.File, dir, name, limit)
			return dlErr
		},
	})
	switch {
	case dlErr != nil:
		r.log.Error("download input", "file", name, "err", dlErr)
		r.reply("doc.download_failed", nil)
		b.toLogChat(slog.LevelError, r.logKey("download"), "log.failure", P{"what": name, "error": b.redact(dlErr.Error())})
		return nil
	case errors.Is(err, store.ErrQuotaExceeded):
		if u, err := b.st.User(r.user.ID); err == nil {
			r.user = u // the limit changed while the file came in
		}
		b.refuseQuota(r)
		return nil
	case errors.Is(err, store.ErrBlocked):
		r.refused("auth.blocked", P{"admin": b.adminContact(r.lang)}, docAttempt(name, caption))
		return nil
	case err != nil:
		return fmt.Errorf("create calculation: %w", err)
	}
	r.log.Info("calculation created", "calc", calc.ID, "cluster", calc.Cluster, "program", calc.Program, "file", name)
	b.accepted(r, calc)
	return nil
}

// calcOfUpdate returns the calculation already created from this update, if
// any (store.CalcCreatedBy), when it is this user's.
func (b *Bot) calcOfUpdate(r *request) (store.Calculation, bool) {
	if r.update == 0 {
		return store.Calculation{}, false
	}
	c, err := b.st.CalcCreatedBy(r.update, "")
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			r.log.Warn("read calculations", "err", err)
		}
		return store.Calculation{}, false
	}
	return c, c.UserID == r.user.ID
}

// withinQuota reports whether r's user may start another calculation now;
// when not, it tells them and the log chat (refuseQuota). A document asks it
// first; the store checks again when it creates the calculation (the card's
// Run again relies on that check alone: see runAgain).
func (b *Bot) withinQuota(r *request) (bool, error) {
	used, err := b.st.CountCalcsSince(r.user.ID, b.now().Add(-b.window()))
	if err != nil {
		return false, fmt.Errorf("count calculations: %w", err)
	}
	if used >= r.user.Limit {
		b.refuseQuota(r)
		return false, nil
	}
	return true, nil
}

// refuseQuota tells the user their quota is used up, and the log chat.
func (b *Bot) refuseQuota(r *request) {
	r.reply("doc.quota", P{"calcs": CountCalcs(r.lang, r.user.Limit), "last": FormatLastWindow(r.lang, b.window())})
	what := ""
	if r.msg != nil && r.msg.Document != nil {
		what = docAttempt(r.msg.Document.FileName, r.msg.Caption)
	}
	r.logRefusal(what, tr(b.lang, "doc.quota", P{"calcs": CountCalcs(b.lang, r.user.Limit), "last": FormatLastWindow(b.lang, b.window())}))
}

// docAttempt describes a file sent for the log chat: its name and caption.
func docAttempt(name, caption string) string {
	caption = strings.TrimSpace(caption)
	if caption == "" {
		return truncate(name, 100)
	}
	return truncate(name, 100) + " | " + truncate(caption, 200)
}

// accepted queues the reply, the calculation's card, and the log chat's copy
// of the input, each once per calculation.
func (b *Bot) accepted(r *request, c store.Calculation) {
	if err := b.newCard(c, c.ChatID, fmt.Sprintf("calc/%d/received", c.ID)); err != nil {
		r.log.Error("queue reply", "calc", c.ID, "err", err)
		r.send(tr(r.lang, "doc.accepted", P{"id": c.ID, "program": c.Program, "cluster": c.Cluster})) // better twice than never
	}
	if chat := b.logChatID.Load(); chat != 0 && slog.LevelInfo >= b.logLevel {
		line := tr(b.lang, "log.submitted", P{"id": c.ID, "who": r.who(), "file": c.InputName, "cluster": c.Cluster,
			"command": shellquote.Join(c.Argv)})
		params := map[string]string{"text": line}
		if r.msg != nil && r.msg.Document != nil {
			params["file_id"] = r.msg.Document.FileID
		}
		if err := b.queue(fmt.Sprintf("calc/%d/received/log", c.ID), store.OutMsg{ChatID: chat, Kind: "log.submitted", Params: params}); err != nil {
			r.log.Error("queue log chat copy", "calc", c.ID, "err", err)
		}
	}
}

// download fetches a Telegram file into dir/name, at most limit bytes, through
// a temporary file, so that dir/name is either complete or absent. A local Bot
// API server (--local) answers getFile with an absolute path on this host:
// that file is copied.
func (b *Bot) download(ctx context.Context, f *tele.File, dir, name string, limit int64) error {
	ctx, cancel := context.WithTimeout(ctx, downloadTimeout)
	defer cancel()
	info, err := b.api.GetFile(ctx, f.FileID)
	if err != nil {
		return err
	}
	if info.FileSize > limit {
		return fmt.Errorf("file is %d bytes, above the limit %d", info.FileSize, limit)
	}
	var src io.ReadCloser
	if filepath.IsAbs(info.FilePath) {
		src, err = os.Open(info.FilePath)
		if err != nil {
			return fmt.Errorf("open local Bot API file: %w", err)
		}
	} else {
		src, err = b.api.DownloadFile(ctx, info.FilePath)
		if err != nil {
			return err
		}
	}
	defer src.Close()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".download-*")
	if err != nil {
		return fmt.Errorf("create temporary file: %w", err)
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, io.LimitReader(src, limit+1))
	if err == nil && n > limit {
		err = fmt.Errorf("file is larger than the limit %d", limit)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("download: %s", b.redact(err.Error()))
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("download: %w", err)
	}
	return nil
}

// throttle lets one event per key through every so often, and counts the
// ones it held back since the last it let through.
type throttle struct {
	every   time.Duration
	mu      sync.Mutex
	last    map[int64]time.Time
	skipped map[int64]int
}

func (th *throttle) allow(key int64, now time.Time) bool {
	ok, _ := th.take(key, now)
	return ok
}

// take is allow that also says how many events of key were held back since
// the last one let through.
func (th *throttle) take(key int64, now time.Time) (ok bool, skipped int) {
	th.mu.Lock()
	defer th.mu.Unlock()
	if th.last == nil {
		th.last, th.skipped = map[int64]time.Time{}, map[int64]int{}
	}
	if t, ok := th.last[key]; ok && now.Sub(t) < th.every {
		th.skipped[key]++
		return false, 0
	}
	if len(th.last) > 10000 { // forget the oldest era rather than grow without bound
		clear(th.last)
		clear(th.skipped)
	}
	th.last[key] = now
	skipped = th.skipped[key]
	delete(th.skipped, key)
	return true, skipped
}

// rateLimiter allows each user at most perMinute submissions in any minute.
type rateLimiter struct {
	perMinute int
	mu        sync.Mutex
	recent    map[uint64][]time.Time
}

func (l *rateLimiter) allow(user uint64, now time.Time) bool {
	if l.perMinute <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.recent == nil {
		l.recent = map[uint64][]time.Time{}
	}
	keep := l.recent[user][:0]
	for _, t := range l.recent[user] {
		if now.Sub(t) < time.Minute {
			keep = append(keep, t)
		}
	}
	if len(keep) >= l.perMinute {
		l.recent[user] = keep
		return false
	}
	l.recent[user] = append(keep, now)
	return true
}
