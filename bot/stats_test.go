package bot

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseStatsPeriod(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	for arg, want := range map[string]statsPeriod{
		"":        {from: now.AddDate(0, 0, -30), to: now, days: 30},
		"7d":      {from: now.AddDate(0, 0, -7), to: now, days: 7},
		"90d":     {from: now.AddDate(0, 0, -90), to: now, days: 90},
		"2026-11": {from: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), to: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if got, ok := parseStatsPeriod(arg, now); !ok || got != want {
			t.Errorf("%q: %+v %v, want %+v", arg, got, ok, want)
		}
	}
	for _, bad := range []string{"8d", "2026-13", "2026-1", "november", "30"} {
		if _, ok := parseStatsPeriod(bad, now); ok {
			t.Errorf("%q accepted", bad)
		}
	}
	p, _ := parseStatsPeriod("2026-11", now)
	if p.name("en") != "November 2026" || p.name("ru") != "ноябрь 2026" {
		t.Errorf("month names %q %q", p.name("en"), p.name("ru"))
	}
	p, _ = parseStatsPeriod("7d", now)
	if got := tr("ru", "stats.title", P{"period": p.name("ru")}); got != "Расчёты и ядро-часы за последние 7 дней (26.11–03.12.2026)" {
		t.Errorf("Russian title %q", got)
	}
}

// plotTexts collects a section's title, its names on the Y axis and its legend.
func plotTexts(sec chartSection) []string {
	p := sec.plot
	out := []string{p.Title.Text}
	for _, tk := range p.Y.Tick.Marker.Ticks(p.Y.Min, p.Y.Max) {
		out = append(out, tk.Label)
	}
	return append(out, sec.legend...)
}

// The chart of /stats names the period in its title, organizations and users
// by name (Cyrillic too), and has a legend for calculations and core-hours; it
// is written to $HPCBOT_STATS_PNG (or a temporary file) to be looked at.
func TestStatsChart(t *testing.T) {
	b := &Bot{}
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	period, _ := parseStatsPeriod("2026-11", now)
	orgs := []statRow{{name: "Institute of Physical Chemistry", calcs: 42, coreHours: 1310.5},
		{name: "Московский государственный университет", calcs: 17, coreHours: 402}, {name: "(none)", calcs: 1, coreHours: 0.2}}
	users := []statRow{{name: "Анна Петрова (МГУ)", calcs: 17, coreHours: 402, estimated: 2},
		{name: "Ivan Sidorov (IPC RAS)", calcs: 30, coreHours: 1000}, {name: "Olga Smirnova (IPC RAS)", calcs: 12, coreHours: 310.5},
		{name: "#7", calcs: 1, coreHours: 0.2}}
	for _, lang := range []string{"en", "ru"} {
		pic, plots, err := b.statsChart(lang, period, orgs, users)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(pic))
		if err != nil {
			t.Fatal(err)
		}
		if img.Bounds().Dx() != chartWidth || img.Bounds().Dy() < 2*chartFramePx+7*chartRowPx {
			t.Errorf("size %v", img.Bounds())
		}
		out := os.Getenv("HPCBOT_STATS_PNG")
		if out == "" {
			out = filepath.Join(t.TempDir(), "stats.png")
		}
		out = strings.TrimSuffix(out, ".png") + "-" + lang + ".png"
		if err := os.WriteFile(out, pic, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("chart: %s", out)
		if len(plots) != 2 {
			t.Fatalf("%d sections", len(plots))
		}
		texts := append(plotTexts(plots[0]), plotTexts(plots[1])...)
		wantTitle := map[string]string{"en": "Calculations and core-hours in November 2026", "ru": "Расчёты и ядро-часы за ноябрь 2026"}[lang]
		if !strings.HasPrefix(plots[0].plot.Title.Text, wantTitle) {
			t.Errorf("title %q, want %q", plots[0].plot.Title.Text, wantTitle)
		}
		for _, name := range []string{"Institute of Physical Chemistry", "Московский государственный университет",
			"Анна Петрова (МГУ)", "Ivan Sidorov (IPC RAS)", "#7", tr(lang, "stats.legend_calcs", nil), tr(lang, "stats.legend_hours", nil)} {
			if !slices.Contains(texts, name) {
				t.Errorf("%s: %q not on the chart (%q)", lang, name, texts)
			}
		}
		text := statsText(lang, period, orgs, users)
		for _, want := range map[string][]string{
			"en": {"Calculations and core-hours in November 2026", "Anna", "Ivan Sidorov (IPC RAS): 30 calculations, 1000.0 core-hours", "#7: 1 calculation, 0.2 core-hours", "Of these, 2.0 core-hours are estimated"},
			"ru": {"Расчёты и ядро-часы за ноябрь 2026", "Анна Петрова (МГУ) — 17 расчётов, 402,0 ядро-часа", "#7 — 1 расчёт, 0,2 ядро-часа", "Из них 2,0 ядро-часа оценены"},
		}[lang] {
			if lang == "en" && want == "Anna" {
				want = "Анна Петрова (МГУ): 17 calculations, 402.0 core-hours"
			}
			if !strings.Contains(text, want) {
				t.Errorf("%s text lacks %q:\n%s", lang, want, text)
			}
		}
	}
}
