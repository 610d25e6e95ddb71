package bot

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	vgdraw "gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"hpcbot/store"
)

// /stats draws, for a period, the organizations and users by name with their
// calculations and core-hours: a PNG bar chart (gonum.org/v1/plot, whose
// Liberation fonts have Cyrillic) sent as a photo, and the same numbers as text.

// statsRows caps the bars per section of the chart and the lines of the text.
const statsRows = 12

// Chart geometry: a width that a phone shows whole, a row per name.
const (
	chartWidth   = 900 // pixels
	chartDPI     = 144
	chartRowPx   = 58
	chartFramePx = 170 // title, legend and axis of one section
)

// sans is Liberation Sans (plot's default is the serif) at size points.
func sans(size float64) font.Font {
	return font.From(font.Font{Typeface: "Liberation", Variant: "Sans"}, vg.Points(size))
}

var (
	colorCalcs = color.RGBA{0x15, 0x65, 0xc0, 0xff} // blue
	colorHours = color.RGBA{0xef, 0x6c, 0x00, 0xff} // orange
)

// statsPeriod is the period of /stats: [from, to) and how to name it.
type statsPeriod struct {
	from, to time.Time
	days     int // 0 for a calendar month
}

var monthArg = regexp.MustCompile(`^(\d{4})-(\d{2})$`)

// parseStatsPeriod reads /stats's argument: 7d, 30d, 90d (the days up to now),
// or YYYY-MM (a calendar month); empty is 30d.
func parseStatsPeriod(arg string, now time.Time) (statsPeriod, bool) {
	switch arg {
	case "", "30d":
		return statsPeriod{from: now.AddDate(0, 0, -30), to: now, days: 30}, true
	case "7d":
		return statsPeriod{from: now.AddDate(0, 0, -7), to: now, days: 7}, true
	case "90d":
		return statsPeriod{from: now.AddDate(0, 0, -90), to: now, days: 90}, true
	}
	m := monthArg.FindStringSubmatch(arg)
	if m == nil {
		return statsPeriod{}, false
	}
	y, _ := strconv.Atoi(m[1])
	mo, _ := strconv.Atoi(m[2])
	if mo < 1 || mo > 12 {
		return statsPeriod{}, false
	}
	from := time.Date(y, time.Month(mo), 1, 0, 0, 0, 0, now.Location())
	return statsPeriod{from: from, to: from.AddDate(0, 1, 0)}, true
}

var monthsRU = []string{"январь", "февраль", "март", "апрель", "май", "июнь", "июль", "август", "сентябрь", "октябрь", "ноябрь", "декабрь"}

// name is the period for people: "the last 7 days (26.11–03.12.2026)", "November 2026".
func (p statsPeriod) name(lang string) string {
	if p.days == 0 {
		month := p.from.Month().String()
		if lang == "ru" {
			month = monthsRU[p.from.Month()-1]
		}
		return tr(lang, "stats.period_month", P{"month": month, "year": p.from.Year()})
	}
	return tr(lang, "stats.period_days", P{"last": pluralLast(lang, int64(p.days), "day", "days", "день", "дня", "дней"), "from": p.from.Format("02.01"), "to": p.to.Format("02.01.2006")})
}

// statRow is one bar pair of the chart and one line of the text.
type statRow struct {
	name      string
	calcs     int
	coreHours float64
	estimated float64 // the part of coreHours estimated from run time × cores asked
}

// statsRowsOf turns report rows into chart rows: organizations at the top of
// the tree (their sub-organizations rolled up into them) or users, by name,
// the largest first, at most statsRows.
func (b *Bot) statsRowsOf(lang string, rows []store.ReportRow, orgs bool) []statRow {
	var out []statRow
	for _, r := range rows {
		if len(out) == statsRows {
			break
		}
		if orgs && r.Parent != "" {
			continue
		}
		name := r.Name
		switch {
		case orgs && r.Key == "-":
			name = tr(lang, "status.no_org", nil)
		case orgs && name == "":
			name = r.Key
		case !orgs:
			if name == "" {
				name = "#" + r.Key
			}
			if r.Org != "" {
				name += " (" + b.orgShort(r.Org) + ")"
			}
		}
		out = append(out, statRow{name: name, calcs: r.Calcs, coreHours: r.CoreHours(), estimated: r.CoreHoursEstimate})
	}
	return out
}

// orgShort is an organization's short name: its alias, else its name, else its label.
func (b *Bot) orgShort(label string) string {
	o, err := b.st.Organization(label)
	switch {
	case err != nil:
		return label
	case o.Alias != "":
		return o.Alias
	case o.Name != "":
		return o.Name
	}
	return label
}

// chartSection is one section of the chart and the texts of its legend
// (plot.Legend does not tell them).
type chartSection struct {
	plot   *plot.Plot
	legend []string
}

// statsPlot is one section of the chart: a title, two bars per name
// (calculations and core-hours) with their values, and a legend.
func statsPlot(lang, title string, rows []statRow) (chartSection, error) {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = sans(15)
	p.Title.Padding = vg.Points(6)
	n := len(rows)
	calcs, hours := make(plotter.Values, n), make(plotter.Values, n)
	names := make([]string, n)
	maxV := 1.0
	for i, r := range rows {
		j := n - 1 - i // the largest on top
		calcs[j], hours[j], names[j] = float64(r.calcs), r.coreHours, r.name
		maxV = math.Max(maxV, math.Max(calcs[j], hours[j]))
	}
	w := vg.Points(13)
	bc, err := plotter.NewBarChart(calcs, w)
	if err != nil {
		return chartSection{}, err
	}
	bh, err := plotter.NewBarChart(hours, w)
	if err != nil {
		return chartSection{}, err
	}
	for _, x := range []struct {
		bar *plotter.BarChart
		c   color.Color
		off vg.Length
	}{{bc, colorCalcs, w / 2}, {bh, colorHours, -w / 2}} {
		x.bar.Horizontal, x.bar.Color, x.bar.Offset = true, x.c, x.off
		x.bar.LineStyle.Width = 0
	}
	p.Add(bc, bh)
	// The values at the end of the bars.
	for _, x := range []struct {
		vals plotter.Values
		off  vg.Length
		text func(float64) string
	}{
		{calcs, w / 2, func(v float64) string { return strconv.Itoa(int(v)) }},
		{hours, -w / 2, func(v float64) string { return formatHours(lang, v) }},
	} {
		xy := make(plotter.XYs, n)
		labels := make([]string, n)
		for i, v := range x.vals {
			xy[i] = plotter.XY{X: v, Y: float64(i)}
			labels[i] = x.text(v)
		}
		l, err := plotter.NewLabels(plotter.XYLabels{XYs: xy, Labels: labels})
		if err != nil {
			return chartSection{}, err
		}
		l.Offset = vg.Point{X: vg.Points(4), Y: x.off - vg.Points(4)}
		for i := range l.TextStyle {
			l.TextStyle[i].Font = sans(9)
		}
		p.Add(l)
	}
	p.NominalY(names...)
	p.Y.Tick.Label.Font = sans(11)
	p.Y.Min, p.Y.Max = -0.6, float64(n)-0.4+0.5 // room for the legend above the top row
	p.X.Min, p.X.Max = 0, maxV*1.18             // room for the values
	p.X.Tick.Label.Font = sans(8)
	legend := []string{tr(lang, "stats.legend_calcs", nil), tr(lang, "stats.legend_hours", nil)}
	p.Legend.Add(legend[0], bc)
	p.Legend.Add(legend[1], bh)
	p.Legend.Top = true
	p.Legend.TextStyle.Font = sans(10)
	p.Add(plotter.NewGrid())
	return chartSection{p, legend}, nil
}

// renderPlots draws the plots one above the other, each as tall as its rows
// need, into one PNG.
func renderPlots(sections []chartSection, rows []int) ([]byte, error) {
	var imgs []image.Image
	height := 0
	for i, sec := range sections {
		p := sec.plot
		h := chartFramePx + rows[i]*chartRowPx
		c := vgimg.NewWith(vgimg.UseWH(vg.Length(chartWidth)*vg.Inch/chartDPI, vg.Length(h)*vg.Inch/chartDPI), vgimg.UseDPI(chartDPI))
		p.Draw(vgdraw.Crop(vgdraw.New(c), vg.Points(6), -vg.Points(6), vg.Points(4), -vg.Points(4)))
		imgs = append(imgs, c.Image())
		height += c.Image().Bounds().Dy()
	}
	out := image.NewRGBA(image.Rect(0, 0, chartWidth, height))
	draw.Draw(out, out.Bounds(), image.White, image.Point{}, draw.Src)
	y := 0
	for _, im := range imgs {
		draw.Draw(out, image.Rect(0, y, chartWidth, y+im.Bounds().Dy()), im, im.Bounds().Min, draw.Over)
		y += im.Bounds().Dy()
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, out); err != nil {
		return nil, fmt.Errorf("encode chart: %w", err)
	}
	return buf.Bytes(), nil
}

// formatHours is a number of core-hours: "12.5" ("12,5" in Russian).
func formatHours(lang string, h float64) string {
	s := strconv.FormatFloat(h, 'f', 1, 64)
	if lang == "ru" {
		s = strings.Replace(s, ".", ",", 1)
	}
	return s
}

// statsChart builds the chart of /stats: organizations, then users.
func (b *Bot) statsChart(lang string, period statsPeriod, orgs, users []statRow) ([]byte, []chartSection, error) {
	title := tr(lang, "stats.title", P{"period": period.name(lang)})
	var sections []chartSection
	var rows []int
	if len(orgs) > 0 {
		sec, err := statsPlot(lang, title+"\n"+tr(lang, "stats.orgs_title", nil), orgs)
		if err != nil {
			return nil, nil, err
		}
		sections, rows = append(sections, sec), append(rows, len(orgs))
	}
	sec, err := statsPlot(lang, tr(lang, "stats.users_title", nil), users)
	if err != nil {
		return nil, nil, err
	}
	sections, rows = append(sections, sec), append(rows, len(users))
	pic, err := renderPlots(sections, rows)
	return pic, sections, err
}

// statsText is the same numbers as text.
func statsText(lang string, period statsPeriod, orgs, users []statRow) string {
	lines := []string{tr(lang, "stats.title", P{"period": period.name(lang)})}
	var estimated float64
	section := func(header string, rows []statRow) {
		if len(rows) == 0 {
			return
		}
		lines = append(lines, "", tr(lang, header, nil))
		for _, r := range rows {
			lines = append(lines, tr(lang, "stats.line", P{"name": r.name,
				"calcs": plural(lang, int64(r.calcs), "calculation", "calculations", "расчёт", "расчёта", "расчётов"),
				"hours": formatHours(lang, r.coreHours)}))
		}
	}
	section("stats.orgs", orgs)
	section("stats.users", users)
	for _, r := range users {
		estimated += r.estimated
	}
	if estimated > 0 {
		lines = append(lines, "", tr(lang, "stats.estimated", P{"hours": formatHours(lang, estimated)}))
	}
	return strings.Join(lines, "\n")
}

// cmdStats: /stats [7d|30d|90d|YYYY-MM]: calculations and core-hours per
// organization and per user, as a chart and as text.
func (b *Bot) cmdStats(r *request) error {
	period, ok := parseStatsPeriod(strings.TrimSpace(r.payload()), b.now())
	if !ok {
		r.reply("stats.usage", nil)
		return nil
	}
	byOrg, err := b.st.Report(period.from, period.to, "org")
	if err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	byUser, err := b.st.Report(period.from, period.to, "user")
	if err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	orgs, users := b.statsRowsOf(r.lang, byOrg, true), b.statsRowsOf(r.lang, byUser, false)
	if len(users) == 0 {
		r.reply("stats.none", P{"period": period.name(r.lang)})
		return nil
	}
	pic, _, err := b.statsChart(r.lang, period, orgs, users)
	if err != nil {
		return err
	}
	r.post(Outgoing{Files: []OutFile{{Photo: true, Name: "stats.png", Data: pic}},
		Caption: tr(r.lang, "stats.title", P{"period": period.name(r.lang)})})
	r.send(statsText(r.lang, period, orgs, users))
	return nil
}
