package bot

import (
	"embed"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The message catalogs: one JSON file per language in locales/, key → text in
// Telegram's HTML parse mode with {name} placeholders (a bare "{}" is text: the
// runners' file-name marker). Every language has every key with the same
// placeholders (catalog_test.go).

//go:embed locales/*.json
var localeFS embed.FS

// Languages are the languages the bot speaks; the first is the fallback.
var Languages = []string{"en", "ru"}

var catalogs = mustLoadCatalogs()

func mustLoadCatalogs() map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, lang := range Languages {
		data, err := localeFS.ReadFile(path.Join("locales", lang+".json"))
		if err != nil {
			panic(fmt.Sprintf("bot: catalog %s: %v", lang, err))
		}
		m := map[string]string{}
		if err := json.Unmarshal(data, &m); err != nil {
			panic(fmt.Sprintf("bot: catalog %s: %v", lang, err))
		}
		out[lang] = m
	}
	return out
}

// placeholderRx matches a {name} placeholder.
var placeholderRx = regexp.MustCompile(`\{([a-z_]+)\}`)

// placeholders lists the placeholder names of a catalog text, sorted, once each.
func placeholders(s string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range placeholderRx.FindAllStringSubmatch(s, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			out = append(out, m[1])
		}
	}
	sort.Strings(out)
	return out
}

// HTML is text already in Telegram's HTML parse mode; a parameter of this type
// is inserted as it is. Every other parameter is escaped.
type HTML string

// P holds the parameters of a message.
type P map[string]any

// SupportedLanguage returns lang when the bot speaks it (en-US counts as en),
// else "".
func SupportedLanguage(lang string) string {
	lang = strings.ToLower(strings.TrimSpace(lang))
	if i := strings.IndexAny(lang, "-_"); i > 0 {
		lang = lang[:i]
	}
	if _, ok := catalogs[lang]; ok {
		return lang
	}
	return ""
}

// tr renders message key in lang with params. String parameters are escaped for
// the HTML parse mode; HTML parameters are inserted as they are; numbers are
// formatted with fmt. A key missing in lang falls back to English, and a
// missing key renders as the key itself (the catalog test keeps both from
// happening).
func tr(lang, key string, params P) string {
	text, ok := catalogs[lang][key]
	if !ok {
		if text, ok = catalogs[Languages[0]][key]; !ok {
			return Escape(key)
		}
	}
	return placeholderRx.ReplaceAllStringFunc(text, func(m string) string {
		v, ok := params[m[1:len(m)-1]]
		if !ok {
			return m
		}
		switch v := v.(type) {
		case HTML:
			return string(v)
		case string:
			return Escape(v)
		case fmt.Stringer:
			return Escape(v.String())
		default:
			return Escape(fmt.Sprint(v))
		}
	})
}

// FormatWindow says how long a quota window is, in lang: "30 days", "30 дней".
func FormatWindow(lang string, d time.Duration) string {
	n, forms := windowUnit(d)
	return plural(lang, n, forms[0], forms[1], forms[2], forms[3], forms[4])
}

// FormatLastWindow names the quota window counted back from now, in lang,
// with the adjective agreeing with the number as Russian needs: "the last 30
// days", "the last day"; "последние 30 дней", "последний 21 день",
// "последние 22 дня", "последний день".
func FormatLastWindow(lang string, d time.Duration) string {
	n, forms := windowUnit(d)
	return pluralLast(lang, n, forms[0], forms[1], forms[2], forms[3], forms[4])
}

// windowUnit is d as a whole number of days, else hours, else minutes
// (rounded up), with the unit's forms for plural.
func windowUnit(d time.Duration) (int64, [5]string) {
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		return int64(d / (24 * time.Hour)), [5]string{"day", "days", "день", "дня", "дней"}
	case d >= time.Hour && d%time.Hour == 0:
		return int64(d / time.Hour), [5]string{"hour", "hours", "час", "часа", "часов"}
	default:
		return int64((d + time.Minute - 1) / time.Minute), [5]string{"minute", "minutes", "минута", "минуты", "минут"}
	}
}

// CountCalcs says how many calculations, in lang: "1 calculation", "3 расчёта".
func CountCalcs(lang string, n int) string {
	return plural(lang, int64(n), "calculation", "calculations", "расчёт", "расчёта", "расчётов")
}

// CountFiles says how many files, in lang: "1 file", "5 файлов".
func CountFiles(lang string, n int) string {
	return plural(lang, int64(n), "file", "files", "файл", "файла", "файлов")
}

// CountMessages says how many messages, in lang: "1 message", "12 сообщений".
func CountMessages(lang string, n int) string {
	return plural(lang, int64(n), "message", "messages", "сообщение", "сообщения", "сообщений")
}

// FormatDuration is a run time: "2 h 05 min", "3 min 07 s", "12 s".
func FormatDuration(lang string, d time.Duration) string {
	d = d.Round(time.Second)
	h, m, s := int64(d/time.Hour), int64(d%time.Hour/time.Minute), int64(d%time.Minute/time.Second)
	hu, mu, su := "h", "min", "s"
	if lang == "ru" {
		hu, mu, su = "ч", "мин", "с"
	}
	switch {
	case h > 0:
		return fmt.Sprintf("%d %s %02d %s", h, hu, m, mu)
	case m > 0:
		return fmt.Sprintf("%d %s %02d %s", m, mu, s, su)
	default:
		return fmt.Sprintf("%d %s", s, su)
	}
}

// FormatSize is a file size for people in lang, in the binary units that
// operating systems and Telegram's own "20 MB" use (1 kB = 1024 B):
// "20 MB", "1.5 kB", "700 B"; in Russian "20 МБ", "1,5 КБ", "700 Б".
func FormatSize(lang string, n int64) string { return formatSize(lang, n, 1) }

// FormatSizes formats a size beside the limit it exceeds, with as many
// decimals as it takes (both at the same precision) for the size to read
// larger than the limit: never "1 MB, more than the limit of 1 MB", but
// "1.01 MB" and "1 MB"; in bytes when three decimals do not tell them apart.
func FormatSizes(lang string, size, limit int64) (string, string) {
	for dec := 1; dec <= 3; dec++ {
		s, l := formatSize(lang, size, dec), formatSize(lang, limit, dec)
		if s != l || size <= limit {
			return s, l
		}
	}
	b := " B"
	if lang == "ru" {
		b = " Б"
	}
	return strconv.FormatInt(size, 10) + b, strconv.FormatInt(limit, 10) + b
}

// formatSize is FormatSize with at most dec decimals (trailing zeros dropped).
func formatSize(lang string, n int64, dec int) string {
	units := []string{"B", "kB", "MB", "GB", "TB"}
	if lang == "ru" {
		units = []string{"Б", "КБ", "МБ", "ГБ", "ТБ"}
	}
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d %s", n, units[0])
	}
	div, exp := int64(unit), 1
	for m := n / unit; m >= unit && exp < len(units)-1; m /= unit {
		div *= unit
		exp++
	}
	v := strconv.FormatFloat(float64(n)/float64(div), 'f', dec, 64)
	if strings.Contains(v, ".") {
		v = strings.TrimRight(strings.TrimRight(v, "0"), ".")
	}
	if lang == "ru" {
		v = strings.Replace(v, ".", ",", 1)
	}
	return v + " " + units[exp]
}

// plural picks the English or Russian form for n.
// pluralLast is "the last n units" in lang: "the last day", "the last 7
// days"; in Russian the adjective agrees with the number too: "последний
// день", "последний 21 день", "последние 22 дня", "последние 25 дней" (and
// "последние 11 дней": 11 to 14 take the plural).
func pluralLast(lang string, n int64, one, many, ru1, ru2, ru5 string) string {
	if lang != "ru" {
		if n == 1 {
			return "the last " + one
		}
		return "the last " + plural(lang, n, one, many, ru1, ru2, ru5)
	}
	if n == 1 {
		return "последний " + ru1
	}
	if n%10 == 1 && n%100 != 11 {
		return "последний " + plural(lang, n, one, many, ru1, ru2, ru5)
	}
	return "последние " + plural(lang, n, one, many, ru1, ru2, ru5)
}

func plural(lang string, n int64, one, many, ru1, ru2, ru5 string) string {
	if lang != "ru" {
		if n == 1 {
			return fmt.Sprintf("%d %s", n, one)
		}
		return fmt.Sprintf("%d %s", n, many)
	}
	form := ru5
	switch n10, n100 := n%10, n%100; {
	case n10 == 1 && n100 != 11:
		form = ru1
	case n10 >= 2 && n10 <= 4 && (n100 < 12 || n100 > 14):
		form = ru2
	}
	return fmt.Sprintf("%d %s", n, form)
}
