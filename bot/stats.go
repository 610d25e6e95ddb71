package bot

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"strconv"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"hpcbot/store"
)

// statsRows caps the bars per section of the chart and the lines of the table.
const statsRows = 15

// bar is one bar of the chart: a short ASCII label and a value.
type bar struct {
	label string
	value int
}

// Chart geometry, in pixels.
const (
	chartWidth  = 720
	chartMargin = 12
	labelWidth  = 16 * 7 // basicfont.Face7x13 is 7 px wide: 16 characters
	rowHeight   = 22
	barHeight   = 14
	gapHeight   = 18 // between the two sections
)

var (
	colorBackground = color.RGBA{0xff, 0xff, 0xff, 0xff}
	colorText       = color.RGBA{0x20, 0x20, 0x20, 0xff}
	colorAxis       = color.RGBA{0xb0, 0xb0, 0xb0, 0xff}
	colorOrgBar     = color.RGBA{0x2e, 0x7d, 0x32, 0xff}
	colorUserBar    = color.RGBA{0x15, 0x65, 0xc0, 0xff}
)

// drawChart draws two horizontal bar charts, one above the other (per
// organization, then per user), as a PNG. Labels are drawn with basicfont,
// which has only ASCII glyphs: callers pass ASCII labels (ids) and put names
// in the text that goes with the picture.
func drawChart(orgs, users []bar) ([]byte, error) {
	rows := len(orgs) + len(users)
	height := 2*chartMargin + rows*rowHeight
	if len(orgs) > 0 && len(users) > 0 {
		height += gapHeight
	}
	if rows == 0 {
		height = 2*chartMargin + rowHeight
	}
	img := image.NewRGBA(image.Rect(0, 0, chartWidth, height))
	draw.Draw(img, img.Bounds(), image.NewUniform(colorBackground), image.Point{}, draw.Src)
	maxV := 1
	for _, b := range append(append([]bar{}, orgs...), users...) {
		maxV = max(maxV, b.value)
	}
	x0 := chartMargin + labelWidth + 6
	span := chartWidth - x0 - chartMargin - 7*7 // room for the number after the bar
	y := chartMargin
	section := func(bars []bar, c color.Color) {
		top := y
		for _, b := range bars {
			drawText(img, chartMargin, y+15, asciiLabel(b.label, 16), colorText)
			w := b.value * span / maxV
			if b.value > 0 && w < 2 {
				w = 2
			}
			draw.Draw(img, image.Rect(x0, y+(rowHeight-barHeight)/2, x0+w, y+(rowHeight+barHeight)/2), image.NewUniform(c), image.Point{}, draw.Src)
			drawText(img, x0+w+5, y+15, strconv.Itoa(b.value), colorText)
			y += rowHeight
		}
		if len(bars) > 0 {
			draw.Draw(img, image.Rect(x0-1, top, x0, y), image.NewUniform(colorAxis), image.Point{}, draw.Src)
		}
	}
	section(orgs, colorOrgBar)
	if len(orgs) > 0 && len(users) > 0 {
		y += gapHeight
	}
	section(users, colorUserBar)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encode chart: %w", err)
	}
	return buf.Bytes(), nil
}

func drawText(img draw.Image, x, y int, s string, c color.Color) {
	d := &font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

// asciiLabel keeps the printable ASCII of s (other characters become '?'),
// at most n characters.
func asciiLabel(s string, n int) string {
	var sb strings.Builder
	for _, r := range s {
		if sb.Len() >= n {
			break
		}
		if r >= 0x20 && r < 0x7f {
			sb.WriteRune(r)
		} else {
			sb.WriteByte('?')
		}
	}
	return sb.String()
}

// isASCII reports whether s is printable ASCII.
func isASCII(s string) bool {
	return s != "" && asciiLabel(s, len(s)) == s
}

// statsData builds the bars and the table of /stats from the usage over the
// window: organizations (by label, or O1, O2… when a label is not ASCII) and
// users (by #id), the most active first, those with no calculation left out.
func (b *Bot) statsData(lang string, users []store.UserUsage, orgs []store.OrgUsage) (orgBars, userBars []bar, table string) {
	var lines []string
	for i, o := range orgs {
		if o.Total == 0 || len(orgBars) == statsRows {
			continue
		}
		label := o.Org
		if !isASCII(label) || len(label) > 16 {
			label = fmt.Sprintf("O%d", i+1)
		}
		name := o.Name
		if name == "" {
			name = b.orgName(o.Org, lang)
		}
		orgBars = append(orgBars, bar{label, o.Total})
		if len(lines) == 0 {
			lines = append(lines, tr(lang, "stats.orgs", nil))
		}
		lines = append(lines, tr(lang, "stats.line", P{"label": label, "name": name, "count": o.Total}))
	}
	userHeader := false
	for _, u := range users {
		if u.Total == 0 || len(userBars) == statsRows {
			continue
		}
		label := "#" + strconv.FormatUint(u.User.ID, 10)
		userBars = append(userBars, bar{label, u.Total})
		if !userHeader {
			userHeader = true
			lines = append(lines, tr(lang, "stats.users", nil))
		}
		name := userName(u.User)
		if u.User.Org != "" {
			name += ", " + b.orgName(u.User.Org, lang)
		}
		lines = append(lines, tr(lang, "stats.line", P{"label": label, "name": name, "count": u.Total}))
	}
	return orgBars, userBars, strings.Join(lines, "\n")
}

// cmdStats: /stats: usage per organization and per user over the quota
// window, as a PNG bar chart sent as a photo, and a short table naming the bars.
func (b *Bot) cmdStats(r *request) error {
	users, orgs, err := b.st.Usage(b.now().Add(-b.window()))
	if err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	window := FormatWindow(r.lang, b.window())
	orgBars, userBars, table := b.statsData(r.lang, users, orgs)
	if len(userBars) == 0 {
		r.reply("stats.none", P{"window": window})
		return nil
	}
	pic, err := drawChart(orgBars, userBars)
	if err != nil {
		return err
	}
	r.post(Outgoing{Files: []OutFile{{Photo: true, Name: "stats.png", Data: pic}}, Caption: tr(r.lang, "stats.caption", P{"window": window})})
	r.send(table)
	return nil
}
