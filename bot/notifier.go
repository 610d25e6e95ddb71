package bot

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"hpcbot/plugins"
	"hpcbot/scheduler"
	"hpcbot/store"
)

var _ scheduler.Notifier = (*Bot)(nil)

// Outbox items the front end queues carry their text already rendered, in the
// recipient's language, in Params["text"] (Telegram HTML); Params["file_id"],
// when set, is a file Telegram holds, sent as a document with the text as its
// caption; Files are local files sent as documents after the text.
const (
	paramText   = "text"
	paramFileID = "file_id"
)

// maxTail caps the error output quoted in a message, in runes.
const maxTail = 1500

// Notify queues the message for the calculation's owner under n.Key (a key
// seen before is ignored, so a repeated call sends nothing twice) and a line
// for the log chat under n.Key+"/log", then wakes the sender. It does not wait
// for Telegram. An error means "not queued".
func (b *Bot) Notify(ctx context.Context, n scheduler.Notification) error {
	c := n.Calc
	lang := b.lang
	who := fmt.Sprintf("user %d", c.UserID)
	if acc, err := b.st.AccountByTelegramID(c.TelegramID); err == nil {
		if l := SupportedLanguage(acc.LanguageCode); l != "" {
			lang = l
		}
		who = acc.DisplayName
		if acc.Username != "" {
			who += " @" + acc.Username
		}
	}
	text := b.notificationText(lang, n)
	msg := store.OutMsg{ChatID: c.ChatID, Kind: "calc." + string(n.Event), Params: map[string]string{paramText: text}}
	if n.Event == scheduler.EventFinished {
		msg.Files = n.Files
	}
	if c.ChatID != 0 {
		if _, err := b.st.OutboxPut(n.Key, msg); err != nil {
			return fmt.Errorf("notify %s: %w", n.Key, err)
		}
	}
	level := slog.LevelInfo
	switch n.Event {
	case scheduler.EventError:
		level = slog.LevelError
	case scheduler.EventWaiting:
		level = slog.LevelWarn
	case scheduler.EventDeliveryFailed:
		level = slog.LevelWarn
		if n.Code == scheduler.CodeCloudRefused {
			level = slog.LevelError
		}
	}
	if chat := b.logChatID.Load(); chat != 0 && level >= b.logLevel {
		var line string
		if n.Event == scheduler.EventDeliveryFailed {
			key := "log.delivery_failed"
			if n.Code == scheduler.CodeCloudRefused {
				key = "log.delivery_held"
			}
			line = tr(b.lang, key, P{"id": c.ID, "who": who, "reason": truncate(n.Reason, 500)})
		} else if n.Code != "" && (n.Event == scheduler.EventError || n.Event == scheduler.EventWaiting || n.Reason != "") {
			line = tr(b.lang, "log.calc_error", P{"id": c.ID, "who": who, "code": n.Code, "reason": truncate(n.Reason, 500)})
		} else {
			line = tr(b.lang, "log.calc", P{"id": c.ID, "who": who, "event": HTML(b.notificationText(b.lang, n))})
		}
		if _, err := b.st.OutboxPut(n.Key+"/log", store.OutMsg{ChatID: chat, Kind: "log.calc", Params: map[string]string{paramText: b.redact(line)}}); err != nil {
			return fmt.Errorf("notify %s: log chat: %w", n.Key, err)
		}
	}
	b.wakeOut()
	return nil
}

// notificationText renders a notification for its owner.
func (b *Bot) notificationText(lang string, n scheduler.Notification) string {
	c := n.Calc
	base := P{"id": c.ID, "file": c.InputName, "cluster": c.Cluster, "job": c.JobID}
	switch n.Event {
	case scheduler.EventAccepted:
		return tr(lang, "calc.accepted", base)
	case scheduler.EventWaiting:
		if n.Code == scheduler.CodeClusterDrained {
			note := ""
			if n.Reason != "" {
				note = tr(lang, "calc.drained_note", P{"reason": n.Reason})
			}
			return joinLines(tr(lang, "calc.drained", base), note)
		}
		base["reason"] = reasonText(lang, n.Code)
		return tr(lang, "calc.waiting", base)
	case scheduler.EventResumed:
		return tr(lang, "calc.resumed", base)
	case scheduler.EventCancelled:
		return tr(lang, "calc.cancelled", base)
	case scheduler.EventDeliveryFailed:
		base["outcome"] = stateName(lang, n.Outcome)
		if n.Code == scheduler.CodeCloudRefused {
			return tr(lang, "calc.delivery_held", base)
		}
		base["reason"] = reasonText(lang, n.Code)
		return tr(lang, "calc.delivery_failed", base)
	case scheduler.EventError:
		base["reason"] = reasonText(lang, n.Code)
		if n.Refusal != nil {
			return tr(lang, "calc.refused", P{"id": c.ID, "file": c.InputName, "reason": HTML(refusalText(lang, n.Refusal))})
		}
		return joinLines(tr(lang, "calc.error", base), tailText(lang, n.Tail))
	case scheduler.EventFinished:
		outcome := n.Outcome
		if outcome == "" {
			outcome = c.State
		}
		exit := tr(lang, "calc.exit_unknown", nil)
		if c.ExitCode != nil {
			exit = strconv.Itoa(*c.ExitCode)
		}
		runtime := tr(lang, "calc.runtime_unknown", nil)
		if d, ok := runTime(c); ok {
			runtime = FormatDuration(lang, d)
		}
		base["outcome"], base["exit"], base["runtime"] = stateName(lang, outcome), exit, runtime
		lines := []string{tr(lang, "calc.finished", base)}
		lines = append(lines, digestLines(lang, c.Digest)...)
		if n.Code != "" {
			lines = append(lines, reasonText(lang, n.Code))
		}
		switch {
		case n.Link != "":
			lines = append(lines, tr(lang, "calc.link", P{"link": n.Link}))
		case len(n.Files) > 0:
			lines = append(lines, tr(lang, "calc.files", nil))
		case n.Where != "":
			lines = append(lines, tr(lang, "calc.where", P{"cluster": c.Cluster, "where": n.Where}))
		}
		if len(n.Skipped) > 0 {
			lines = append(lines, tr(lang, "calc.skipped", P{"skipped": skippedText(lang, n.Skipped)}))
		}
		if outcome != store.StateSucceeded {
			lines = append(lines, tailText(lang, n.Tail))
		}
		return joinLines(lines...)
	}
	return tr(lang, "calc.resumed", base)
}

// legacySkipReasons are the English reasons hpcbot recorded for skipped
// files ("big.chk: too large") before it recorded codes, with their codes:
// such a stored record is worded in the user's language all the same.
var legacySkipReasons = map[string]string{
	"too large (grew while being fetched)":      plugins.SkipGrew,
	"not a regular file (link or special file)": plugins.SkipSpecialFile,
	"not whitelisted":                           plugins.SkipNotWhitelisted,
	"temporary file":                            plugins.SkipTemporary,
	"total size cap":                            plugins.SkipLimitReached,
	"too large":                                 plugins.SkipTooLarge,
}

// skippedText lists the files not brought back, each with its reason in
// lang: "big.chk (over the size limit for one file); x.tmp (a temporary
// file)". An older record's reason that is not one of legacySkipReasons is
// shown as it was recorded. At most 500 characters.
func skippedText(lang string, files []store.SkippedFile) string {
	parts := make([]string, 0, len(files))
	for _, f := range files {
		path, code := f.Path, f.Code
		if code == "" && f.Text != "" {
			for reason, c := range legacySkipReasons {
				if p, ok := strings.CutSuffix(f.Text, ": "+reason); ok {
					path, code = p, c
					break
				}
			}
			if code == "" {
				parts = append(parts, f.Text)
				continue
			}
		}
		if !slices.Contains(plugins.SkipCodes, code) {
			code = plugins.SkipOther
		}
		parts = append(parts, path+" ("+tr(lang, "skip."+code, nil)+")")
	}
	return truncate(strings.Join(parts, "; "), 500)
}

// programNames are the programs' names as their authors write them.
var programNames = map[string]string{"orca": "ORCA", "gaussian": "Gaussian", "xtb": "xtb"}

// digestLines render a runner's summary of the results: how the program
// ended, its final energy as printed, the optimization, the frequencies, the
// wall time it reports and the final geometry file. Nil: nothing.
func digestLines(lang string, d *store.Digest) []string {
	if d == nil {
		return nil
	}
	prog := programNames[d.Program]
	if prog == "" {
		prog = d.Program
	}
	var lines []string
	switch d.Termination {
	case store.DigestNormal:
		lines = append(lines, tr(lang, "calc.digest_normal", P{"program": prog}))
	case store.DigestFailed:
		lines = append(lines, tr(lang, "calc.digest_failed", P{"program": prog, "line": truncate(d.TerminationLine, 300)}))
	case store.DigestUnfinished:
		lines = append(lines, tr(lang, "calc.digest_unfinished", P{"program": prog}))
	case store.DigestNone:
		return []string{tr(lang, "calc.digest_none", P{"program": prog})}
	default:
		return nil
	}
	switch {
	case d.Energy != "" && d.EnergyMethod != "":
		lines = append(lines, tr(lang, "calc.digest_energy_method", P{"energy": d.Energy, "method": d.EnergyMethod}))
	case d.Energy != "":
		lines = append(lines, tr(lang, "calc.digest_energy", P{"energy": d.Energy}))
	}
	if d.Optimization {
		cycles := plural(lang, int64(d.OptCycles), "cycle", "cycles", "цикл", "цикла", "циклов")
		key := "calc.digest_opt_not_converged"
		if d.OptConverged {
			key = "calc.digest_opt_converged"
		}
		lines = append(lines, tr(lang, key, P{"cycles": cycles}))
	}
	if d.Frequencies > 0 && d.LowestFrequency != "" {
		if d.Imaginary == 0 {
			lines = append(lines, tr(lang, "calc.digest_no_imaginary", P{"lowest": d.LowestFrequency}))
		} else {
			count := plural(lang, int64(d.Imaginary), "imaginary frequency", "imaginary frequencies", "мнимая частота", "мнимые частоты", "мнимых частот")
			lines = append(lines, tr(lang, "calc.digest_imaginary", P{"count": count, "lowest": d.LowestFrequency}))
		}
	}
	if d.WallSeconds > 0 {
		lines = append(lines, tr(lang, "calc.digest_walltime", P{"time": FormatDuration(lang, time.Duration(d.WallSeconds)*time.Second)}))
	}
	if d.GeometryFile != "" {
		lines = append(lines, tr(lang, "calc.digest_geometry", P{"file": d.GeometryFile}))
	}
	return lines
}

// reasonText is the user's explanation of a scheduler code.
func reasonText(lang, code string) string {
	key := "reason." + code
	if _, ok := catalogs[Languages[0]][key]; !ok || code == "" {
		key = "reason.unknown"
	}
	return tr(lang, key, nil)
}

// tailText quotes the end of the error output, or nothing.
func tailText(lang, tail string) string {
	tail = strings.TrimSpace(tail)
	if tail == "" {
		return ""
	}
	if rs := []rune(tail); len(rs) > maxTail {
		tail = "…" + string(rs[len(rs)-maxTail:])
	}
	return tr(lang, "calc.tail", P{"tail": tail})
}

func joinLines(lines ...string) string {
	var keep []string
	for _, l := range lines {
		if l != "" {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// runTime is how long the job ran: from entering running (or submitted, when
// the poll never saw it running) to the state it ended in.
func runTime(c store.Calculation) (time.Duration, bool) {
	var start, submitted, end time.Time
	for _, h := range c.History {
		switch {
		case h.State == store.StateSubmitted: // a new round starts the count again
			submitted, start = h.At, time.Time{}
		case h.State == store.StateRunning && start.IsZero():
			start = h.At
		case h.State.Ended():
			end = h.At
		}
	}
	if start.IsZero() {
		start = submitted
	}
	if start.IsZero() || end.IsZero() || end.Before(start) {
		return 0, false
	}
	return end.Sub(start), true
}

// queue puts a message in the outbox (once per key) and wakes the sender.
func (b *Bot) queue(key string, msg store.OutMsg) error {
	if _, err := b.st.OutboxPut(key, msg); err != nil {
		return err
	}
	b.wakeOut()
	return nil
}

// tellDropped is the poller's OnDropped: a registered user whose updates in
// their private chat came faster than they were handled, and were dropped, is
// told so (at most once per unregisteredLogEvery), so that a lost file is sent
// again rather than waited for. Strangers and groups are not told.
func (b *Bot) tellDropped(chat, sender int64, n int) {
	if chat != sender || chat <= 0 {
		return
	}
	acc, err := b.st.AccountByTelegramID(sender)
	if err != nil || !b.dropNote.allow(sender, b.now()) {
		return
	}
	lang := b.lang
	if l := SupportedLanguage(acc.LanguageCode); l != "" {
		lang = l
	}
	key := fmt.Sprintf("dropped/%d/%d", chat, b.now().UnixNano())
	text := tr(lang, "poll.dropped", P{"messages": CountMessages(lang, n)})
	if err := b.queue(key, store.OutMsg{ChatID: chat, Kind: "poll.dropped", Params: map[string]string{paramText: text}}); err != nil {
		b.log.Error("queue the dropped-updates notice", "chat", chat, "err", err)
	}
}

// toLogChat queues catalog message key for the log chat, in the bot's
// language, when level passes log_chat_level. dedup is the outbox key (so that
// handling an update again does not repeat the line); "" makes a fresh one.
// Every secret is removed from the line (redact), whatever its parameters hold.
func (b *Bot) toLogChat(level slog.Level, dedup, key string, p P) {
	chat := b.logChatID.Load()
	if chat == 0 || level < b.logLevel {
		return
	}
	if dedup == "" {
		dedup = fmt.Sprintf("log/%d/%s", b.now().UnixNano(), key)
	}
	text := b.redact(tr(b.lang, key, p))
	if err := b.queue(dedup, store.OutMsg{ChatID: chat, Kind: key, Params: map[string]string{paramText: text}}); err != nil {
		b.log.Error("queue log chat message", "key", key, "err", err)
	}
}
