package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"hpcbot/plugins"
	"hpcbot/scheduler"
)

// The Prometheus endpoint (metrics_listen, off by default) serves on /metrics
// the figures /clusters shows, per cluster, besides the Go runtime's and the
// process's own (https://prometheus.io/docs/instrumenting/writing_exporters/).
// Figures are read when scraped, so a scrape costs one read of the store's
// active calculations and nothing on the clusters.

// healthSource is what the collector reads: the scheduler.
type healthSource interface {
	Health() ([]scheduler.ClusterHealth, error)
}

var (
	descUp = prometheus.NewDesc("hpcbot_cluster_up",
		"1 when the cluster's last call answered, 0 while it is unreachable or refuses the bot's login.", []string{"cluster"}, nil)
	descDownSince = prometheus.NewDesc("hpcbot_cluster_down_since_timestamp_seconds",
		"When the cluster's current outage began (absent while it answers).", []string{"cluster"}, nil)
	descDrained = prometheus.NewDesc("hpcbot_cluster_drained",
		"1 while the cluster is drained for maintenance (/drain).", []string{"cluster"}, nil)
	descLastPoll = prometheus.NewDesc("hpcbot_cluster_last_poll_timestamp_seconds",
		"When the cluster's last poll ended.", []string{"cluster"}, nil)
	descPollDuration = prometheus.NewDesc("hpcbot_cluster_last_poll_duration_seconds",
		"How long the cluster's last poll took.", []string{"cluster"}, nil)
	descPollOK = prometheus.NewDesc("hpcbot_cluster_last_poll_success",
		"1 when the cluster's last poll answered.", []string{"cluster"}, nil)
	descSubmissions = prometheus.NewDesc("hpcbot_cluster_submissions_total",
		"Jobs submitted to the cluster since hpcbot started.", []string{"cluster"}, nil)
	descRestarts = prometheus.NewDesc("hpcbot_cluster_plugin_restarts_total",
		"Restarts of the cluster's plugin processes since hpcbot started.", []string{"cluster"}, nil)
	descHandshakes = prometheus.NewDesc("hpcbot_cluster_ssh_handshakes",
		"SSH handshakes with the cluster in the window (1h, 24h; shorter since the start).", []string{"cluster", "window"}, nil)
	descCommands = prometheus.NewDesc("hpcbot_cluster_remote_commands",
		"Remote commands run on the cluster in the window.", []string{"cluster", "window"}, nil)
	descFailedLogins = prometheus.NewDesc("hpcbot_cluster_failed_logins",
		"Logins the cluster refused in the window.", []string{"cluster", "window"}, nil)
	descDeliveries = prometheus.NewDesc("hpcbot_cluster_deliveries_total",
		"Results of the cluster's calculations delivered since hpcbot started.", []string{"cluster"}, nil)
	descSendErrors = prometheus.NewDesc("hpcbot_telegram_send_errors_total",
		"Bot API sends that failed since hpcbot started (each retry counts).", nil, nil)
	descCalcs = prometheus.NewDesc("hpcbot_calculations",
		"Calculations of the cluster in each state that is not final.", []string{"cluster", "state"}, nil)
)

// healthCollector turns scheduler.Health and the bot's send errors into
// metrics at each scrape.
type healthCollector struct {
	src        healthSource
	sendErrors func() int64
}

func (c healthCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descDownSince, descDrained, descLastPoll, descPollDuration,
		descPollOK, descSubmissions, descRestarts, descHandshakes, descCommands, descFailedLogins, descDeliveries, descSendErrors, descCalcs} {
		ch <- d
	}
}

func (c healthCollector) Collect(ch chan<- prometheus.Metric) {
	hs, err := c.src.Health()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descCalcs, err)
		return
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	ts := func(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
	ch <- prometheus.MustNewConstMetric(descSendErrors, prometheus.CounterValue, float64(c.sendErrors()))
	for _, h := range hs {
		l := h.Label
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, b(h.Reachable), l)
		if !h.DownSince.IsZero() {
			ch <- prometheus.MustNewConstMetric(descDownSince, prometheus.GaugeValue, ts(h.DownSince), l)
		}
		ch <- prometheus.MustNewConstMetric(descDrained, prometheus.GaugeValue, b(h.Drain.Drained), l)
		if !h.LastPoll.IsZero() {
			ch <- prometheus.MustNewConstMetric(descLastPoll, prometheus.GaugeValue, ts(h.LastPoll), l)
			ch <- prometheus.MustNewConstMetric(descPollDuration, prometheus.GaugeValue, h.LastPollDuration.Seconds(), l)
			ch <- prometheus.MustNewConstMetric(descPollOK, prometheus.GaugeValue, b(h.LastPollError == ""), l)
		}
		ch <- prometheus.MustNewConstMetric(descSubmissions, prometheus.CounterValue, float64(h.Submissions), l)
		ch <- prometheus.MustNewConstMetric(descDeliveries, prometheus.CounterValue, float64(h.Deliveries), l)
		ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(h.PluginRestarts), l)
		if h.TrafficKnown {
			for w, v := range map[string]plugins.TransportStats{"1h": h.TrafficHour, "24h": h.TrafficDay} {
				ch <- prometheus.MustNewConstMetric(descHandshakes, prometheus.GaugeValue, float64(v.Handshakes), l, w)
				ch <- prometheus.MustNewConstMetric(descCommands, prometheus.GaugeValue, float64(v.Commands), l, w)
				ch <- prometheus.MustNewConstMetric(descFailedLogins, prometheus.GaugeValue, float64(v.AuthFailures), l, w)
			}
		}
		for st, n := range h.Calcs {
			ch <- prometheus.MustNewConstMetric(descCalcs, prometheus.GaugeValue, float64(n), l, string(st))
		}
	}
}

// metricsHandler is the /metrics handler: hpcbot's figures, the Go runtime's
// and the process's.
func metricsHandler(src healthSource, sendErrors func() int64) (http.Handler, error) {
	reg := prometheus.NewRegistry()
	if err := errors.Join(
		reg.Register(collectors.NewGoCollector()),
		reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})),
		reg.Register(healthCollector{src, sendErrors}),
	); err != nil {
		return nil, err
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}), nil
}

// serveMetrics serves /metrics on addr until the returned stop is called.
func serveMetrics(addr string, src healthSource, sendErrors func() int64, log *slog.Logger) (func(), error) {
	h, err := metricsHandler(src, sendErrors)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics_listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	log.Info("metrics endpoint listening", "addr", ln.Addr().String())
	return func() { srv.Close() }, nil
}
