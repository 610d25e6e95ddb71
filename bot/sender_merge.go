// sender_merge.go: lines for the log chat that wait go out merged in one message.

package bot

import (
	"strings"
	"time"
)

// MergedLag is how long the oldest line of the last merged message (the log
// chat's) had waited when Telegram took it; 0 before the first.
func (s *Sender) MergedLag() time.Duration { return time.Duration(s.mergedLag.Load()) }

// mergedLineLen caps one line of a merged message, in characters: enough
// for the bot's longest notification line (a reason cut to 500 characters
// in its template), whose end says what to do ("/redeliver N").
const mergedLineLen = 1000

// absorb takes into j (due to be sent: the head of q) the mergeable texts
// waiting right behind it, and returns j's part with the merged text: one
// line per message, oldest first, each with its time, as many as fit in one
// message; the count of the others ends it. The texts left out are logged.
func (s *Sender) absorb(q *chatQueue, j *sendJob) sendPart {
	s.mu.Lock()
	n := 0
	for _, k := range q.jobs[min(1, len(q.jobs)):] {
		if !k.mergeable {
			break
		}
		n++
	}
	if n > 0 {
		j.absorbed = append(j.absorbed, q.jobs[1:1+n]...)
		q.jobs = append(q.jobs[:1], q.jobs[1+n:]...)
		s.queued -= n
	}
	s.mu.Unlock()
	p := j.parts[0]
	if len(j.absorbed) == 0 {
		return p
	}
	all := append([]*sendJob{j}, j.absorbed...)
	lines := make([]string, 0, len(all))
	used := 0
	left := 0
	for i, k := range all {
		line := mergedLine(k)
		// Room for this line and, when more follow, the count of the rest.
		room := maxTextLen - 100
		if i == len(all)-1 {
			room = maxTextLen
		}
		if left > 0 || used+tgLen(line)+1 > room {
			left++
			if !k.leftOut {
				k.leftOut = true
				s.log.Info("log chat line left out of a merged message (more waited than one message holds)",
					"chat", j.out.ChatID, "at", k.at, "text", k.line)
			}
			continue
		}
		lines = append(lines, line)
		used += tgLen(line) + 1
	}
	if left > 0 {
		lines = append(lines, tr(s.opts.Language, "log.merged_left_out", P{"lines": plural(s.opts.Language, int64(left), "more line", "more lines", "строка", "строки", "строк")}))
	}
	p.text = strings.Join(lines, "\n")
	p.opts.DisablePreview = true
	j.parts[0] = p
	return p
}

// mergedLine is one message as a line of a merged message: its time, then
// its text on one line, at most mergedLineLen characters.
func mergedLine(k *sendJob) string {
	text := k.line
	if k.out.Plain {
		text = Escape(text)
	}
	text = strings.ReplaceAll(strings.TrimSpace(text), "\n", " · ")
	if pieces := splitMessage(text, mergedLineLen, true); len(pieces) > 1 {
		text = pieces[0] + "…"
	}
	return "<code>" + k.at.Format("15:04:05") + "</code> " + text
}
