package bot

import (
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// logLagWindow is how long BenchmarkLogChatLag emits events; logLagGrace how
// long it then waits for the last ones.
const (
	logLagWindow = 60 * time.Second
	logLagGrace  = 30 * time.Second
)

var (
	benchEventRx   = regexp.MustCompile(`evt(\d+)x`)
	benchLeftOutRx = regexp.MustCompile(`…and (\d+) more lines? in the process log`)
)

// BenchmarkLogChatLag measures how far the log chat falls behind the events
// it reports, with Telegram's real pacing (20 messages a minute to a group):
// 10, 100 and 1,000 events a minute (log chat lines queued as the bot's
// handlers queue them, toLogChat), each rate against its own bot and fake Bot
// API, all three at once. Events are emitted evenly for logLagWindow; the lag
// of an event is from its emission to the fake's record of the first message
// that carries it. Events a merged message counts as left out (they are in
// the process log) are left-out; an event neither carried nor counted after
// logLagGrace more counts with the time it had waited then (a lower bound)
// and in missing.
// -benchtime=1x: one op is the whole run.
func BenchmarkLogChatLag(b *testing.B) {
	rates := []int{10, 100, 1000}
	type result struct {
		p50, max               time.Duration
		missing, leftOut, msgs int
		events                 int
	}
	results := make([]result, len(rates))
	envs := make([]*floodEnv, len(rates))
	for i := range rates {
		envs[i] = startFloodBot(b, nil)
	}
	b.ResetTimer()
	for range b.N {
		var wg sync.WaitGroup
		for i, rate := range rates {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e := envs[i]
				before := len(e.srv.Sent(logChat))
				n := int(logLagWindow.Minutes() * float64(rate))
				emitted := make([]time.Time, n)
				start := time.Now()
				for k := range n {
					at := start.Add(time.Duration(k) * time.Minute / time.Duration(rate))
					time.Sleep(time.Until(at))
					emitted[k] = time.Now()
					e.bot.toLogChat(slog.LevelInfo, "", "log.approve", P{"admin": "Ada Admin (@ada_admin, 1001)",
						"id": k + 1, "name": fmt.Sprintf("Ivan Petrov evt%dx", k)})
				}
				end := time.Now().Add(logLagGrace)
				time.Sleep(time.Until(end))
				seen := make([]time.Time, n)
				leftOut := 0
				calls := e.srv.Sent(logChat)[before:]
				for _, c := range calls {
					if !c.OK() {
						continue
					}
					for _, m := range benchLeftOutRx.FindAllStringSubmatch(c.Text(), -1) {
						k, _ := strconv.Atoi(m[1])
						leftOut += k
					}
					for _, m := range benchEventRx.FindAllStringSubmatch(c.Text(), -1) {
						k, _ := strconv.Atoi(m[1])
						if k < n && seen[k].IsZero() {
							seen[k] = c.Time
						}
					}
				}
				var lags []time.Duration
				r := result{events: n, msgs: len(calls), leftOut: leftOut}
				unseen := 0
				for k := range n {
					if seen[k].IsZero() {
						unseen++
						if unseen > leftOut {
							lags = append(lags, end.Sub(emitted[k]))
						}
						continue
					}
					lags = append(lags, seen[k].Sub(emitted[k]))
				}
				r.missing = max(0, unseen-leftOut)
				slices.Sort(lags)
				r.p50, r.max = lags[len(lags)/2], lags[len(lags)-1]
				results[i] = r
			}()
		}
		wg.Wait()
	}
	b.StopTimer()
	for i, rate := range rates {
		r := results[i]
		b.Logf("%4d events/min: %d events, %d messages, lag p50 %v max %v, %d left out (counted), %d neither shown nor counted after %v",
			rate, r.events, r.msgs, r.p50.Round(100*time.Millisecond), r.max.Round(100*time.Millisecond), r.leftOut, r.missing, logLagGrace)
		b.ReportMetric(r.p50.Seconds(), fmt.Sprintf("p50-s@%d/min", rate))
		b.ReportMetric(r.max.Seconds(), fmt.Sprintf("max-s@%d/min", rate))
		b.ReportMetric(float64(r.missing), fmt.Sprintf("missing@%d/min", rate))
		b.ReportMetric(float64(r.leftOut), fmt.Sprintf("left-out@%d/min", rate))
	}
}
