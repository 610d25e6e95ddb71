package bot

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"hpcbot/plugins"
	"hpcbot/scheduler"
	"hpcbot/store"
)

// Cluster operations for admins: /clusters shows each cluster's state, /drain
// closes one for maintenance (nothing new is submitted to it; its jobs are
// followed to the end) and /undrain opens it again.

// maxDrainReason bounds the reason an admin gives /drain (it is shown to users).
const maxDrainReason = 300

// cmdClusters shows each cluster's health: reachable or since when not, the
// last poll and how long it took, calculations by state, submissions and
// plugin restarts since the start, drained or not.
func (b *Bot) cmdClusters(r *request) error {
	infos := b.calcs.Clusters()
	health, err := b.calcs.Health()
	if err != nil {
		return fmt.Errorf("cluster health: %w", err)
	}
	byLabel := map[string]scheduler.ClusterHealth{}
	for _, h := range health {
		byLabel[h.Label] = h
	}
	lines := []string{tr(r.lang, "clusters.header", nil)}
	for _, ci := range infos {
		h := byLabel[ci.Label]
		state := tr(r.lang, "clusters.ok", nil)
		switch {
		case !ci.Usable:
			state = tr(r.lang, "clusters.refused", P{"reason": truncate(b.redact(ci.Reason), 300)})
		case !h.Reachable && !h.DownSince.IsZero():
			state = tr(r.lang, "clusters.down", P{"since": h.DownSince.Local().Format(timeLayout)})
		}
		lines = append(lines, "", tr(r.lang, "clusters.line", P{"label": ci.Label, "scheduler": ci.Scheduler, "state": HTML(state)}))
		if d := ci.Drain; d.Drained {
			lines = append(lines, tr(r.lang, "clusters.drained", P{"since": d.Since.Local().Format(timeLayout), "by": d.By}))
			if d.Reason != "" {
				lines = append(lines, tr(r.lang, "clusters.drained_reason", P{"reason": d.Reason}))
			}
		}
		if h.LastPoll.IsZero() {
			lines = append(lines, tr(r.lang, "clusters.no_poll", nil))
		} else {
			key := "clusters.poll"
			if h.LastPollError != "" {
				key = "clusters.poll_failed"
			}
			lines = append(lines, tr(r.lang, key, P{"at": h.LastPoll.Local().Format("15:04:05"),
				"took": pollTook(r.lang, h.LastPollDuration)}))
		}
		var counts []string
		for _, st := range store.States {
			if n := h.Calcs[st]; n > 0 {
				counts = append(counts, fmt.Sprintf("%s %d", stateName(r.lang, st), n))
			}
		}
		if len(counts) == 0 {
			lines = append(lines, tr(r.lang, "clusters.no_calcs", nil))
		} else {
			lines = append(lines, tr(r.lang, "clusters.calcs", P{"counts": strings.Join(counts, ", ")}))
		}
		lines = append(lines, tr(r.lang, "clusters.since_start", P{"submissions": h.Submissions, "restarts": h.PluginRestarts}))
		if h.TrafficKnown {
			lines = append(lines, tr(r.lang, "clusters.traffic", P{"hour": trafficText(r.lang, h.TrafficHour), "day": trafficText(r.lang, h.TrafficDay)}))
		}
	}
	r.send(strings.Join(lines, "\n"))
	return nil
}

// cmdDrain closes a cluster for maintenance: /drain LABEL [reason].
func (b *Bot) cmdDrain(r *request) error {
	label, reason, _ := strings.Cut(strings.TrimSpace(r.payload()), " ")
	reason = strings.Join(strings.Fields(reason), " ")
	if label == "" {
		r.reply("drain.usage", P{"labels": b.clusterLabels()})
		return nil
	}
	if rs := []rune(reason); len(rs) > maxDrainReason {
		reason = string(rs[:maxDrainReason]) + "…"
	}
	err := b.calcs.Drain(label, reason, r.who())
	if errors.Is(err, scheduler.ErrUnknownCluster) {
		r.reply("drain.unknown", P{"label": label, "labels": b.clusterLabels()})
		return nil
	}
	if err != nil {
		return fmt.Errorf("drain %s: %w", label, err)
	}
	r.reply("drain.done", P{"label": label})
	key := "log.drained"
	if reason == "" {
		key = "log.drained_no_reason"
	}
	b.toLogChat(slog.LevelWarn, r.logKey("drain"), key, P{"who": r.who(), "label": label, "reason": reason})
	return nil
}

// cmdUndrain opens a drained cluster again: /undrain LABEL.
func (b *Bot) cmdUndrain(r *request) error {
	label := strings.TrimSpace(r.payload())
	if label == "" || strings.ContainsAny(label, " \t\n") {
		r.reply("undrain.usage", P{"labels": b.clusterLabels()})
		return nil
	}
	d, err := b.calcs.DrainState(label)
	if errors.Is(err, scheduler.ErrUnknownCluster) {
		r.reply("drain.unknown", P{"label": label, "labels": b.clusterLabels()})
		return nil
	}
	if err != nil {
		return fmt.Errorf("undrain %s: %w", label, err)
	}
	if !d.Drained {
		r.reply("undrain.not_drained", P{"label": label})
		return nil
	}
	if err := b.calcs.Undrain(label); err != nil {
		return fmt.Errorf("undrain %s: %w", label, err)
	}
	r.reply("undrain.done", P{"label": label})
	b.toLogChat(slog.LevelWarn, r.logKey("undrain"), "log.undrained", P{"who": r.who(), "label": label})
	return nil
}

// SendErrors counts the Bot API sends that failed since the start (for the
// metrics endpoint); 0 before Run.
func (b *Bot) SendErrors() int64 {
	if s := b.sender.Load(); s != nil {
		return s.SendErrors()
	}
	return 0
}

// clusterLabels lists the configured clusters' labels: "hpc1, hpc2".
func (b *Bot) clusterLabels() string {
	var labels []string
	for _, ci := range b.calcs.Clusters() {
		labels = append(labels, ci.Label)
	}
	return strings.Join(labels, ", ")
}

// pollTook is a poll's duration: "0.4 s", "12.0 s", "3 min 07 s".
func pollTook(lang string, d time.Duration) string {
	if d >= time.Minute {
		return FormatDuration(lang, d)
	}
	if lang == "ru" {
		return strings.Replace(fmt.Sprintf("%.1f с", d.Seconds()), ".", ",", 1)
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

// trafficText is "2 handshakes, 14 commands, 0 refused logins".
func trafficText(lang string, t plugins.TransportStats) string {
	return strings.Join([]string{
		plural(lang, t.Handshakes, "handshake", "handshakes", "подключение", "подключения", "подключений"),
		plural(lang, t.Commands, "command", "commands", "команда", "команды", "команд"),
		plural(lang, t.AuthFailures, "refused login", "refused logins", "отказ во входе", "отказа во входе", "отказов во входе"),
	}, ", ")
}
