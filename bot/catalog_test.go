package bot

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"hpcbot/plugins"
)

// Every language has every key, with the same placeholders, and every text is
// valid Telegram HTML once its placeholders are filled.
func TestCatalogsComplete(t *testing.T) {
	en := catalogs["en"]
	if len(en) == 0 {
		t.Fatal("English catalog is empty")
	}
	for _, lang := range Languages {
		cat := catalogs[lang]
		for key, text := range en {
			other, ok := cat[key]
			if !ok {
				t.Errorf("%s: key %q missing", lang, key)
				continue
			}
			if strings.TrimSpace(other) == "" {
				t.Errorf("%s: key %q is empty", lang, key)
			}
			if a, b := placeholders(text), placeholders(other); !slices.Equal(a, b) {
				t.Errorf("%s: key %q has placeholders %v, English has %v", lang, key, b, a)
			}
			if strings.Count(text, "{}") != strings.Count(other, "{}") {
				t.Errorf("%s: key %q: the file-name marker {} differs from English", lang, key)
			}
		}
		for key := range cat {
			if _, ok := en[key]; !ok {
				t.Errorf("%s: key %q is not in the English catalog", lang, key)
			}
		}
	}
}

// The JSON files have no duplicate keys (encoding/json would silently keep the last).
func TestCatalogsNoDuplicateKeys(t *testing.T) {
	for _, lang := range Languages {
		data, err := os.ReadFile(filepath.Join("locales", lang+".json"))
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(strings.NewReader(string(data)))
		seen := map[string]bool{}
		if _, err := dec.Token(); err != nil {
			t.Fatal(err)
		}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				t.Fatal(err)
			}
			key := tok.(string)
			if seen[key] {
				t.Errorf("%s: key %q appears twice", lang, key)
			}
			seen[key] = true
			var v string
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("%s: %s: %v", lang, key, err)
			}
		}
	}
}

// tagRx matches an HTML tag.
var tagRx = regexp.MustCompile(`</?([a-z-]+)[^>]*>`)

// Every text renders to balanced HTML with only the tags Telegram knows, even
// when every parameter is hostile.
func TestCatalogHTML(t *testing.T) {
	allowed := map[string]bool{"b": true, "i": true, "u": true, "s": true, "code": true, "pre": true, "a": true}
	hostile := `<b>x</b> & "q" <script>`
	for _, lang := range Languages {
		for key, text := range catalogs[lang] {
			p := P{}
			for _, name := range placeholders(text) {
				p[name] = hostile
			}
			out := tr(lang, key, p)
			if strings.Contains(out, "<script>") || strings.Contains(out, "<b>x</b>") {
				t.Errorf("%s %s: parameter not escaped: %s", lang, key, out)
			}
			var open []string
			for _, m := range tagRx.FindAllStringSubmatch(out, -1) {
				name := m[1]
				if !allowed[name] {
					t.Errorf("%s %s: tag <%s> Telegram does not support", lang, key, name)
				}
				if strings.HasPrefix(m[0], "</") {
					if len(open) == 0 || open[len(open)-1] != name {
						t.Errorf("%s %s: unbalanced </%s>", lang, key, name)
						break
					}
					open = open[:len(open)-1]
				} else {
					open = append(open, name)
				}
			}
			if len(open) > 0 {
				t.Errorf("%s %s: unclosed %v", lang, key, open)
			}
		}
	}
}

func TestTr(t *testing.T) {
	got := tr("en", "doc.bad_name", P{"name": "a<b>.inp"})
	if !strings.Contains(got, "a&lt;b&gt;.inp") {
		t.Errorf("not escaped: %s", got)
	}
	if got := tr("ru", "no.such.key", nil); got != "no.such.key" {
		t.Errorf("missing key renders %q", got)
	}
	if got := tr("en", "jobs.line", P{"id": 7, "job": HTML("<i>x</i>")}); !strings.Contains(got, "<i>x</i>") || !strings.Contains(got, "#7") {
		t.Errorf("HTML or number parameter: %s", got)
	}
	if got := tr("en", "refuse.no_input", nil); !strings.Contains(got, "{}") {
		t.Errorf("the {} marker was taken for a placeholder: %s", got)
	}
}

func TestSupportedLanguage(t *testing.T) {
	for in, want := range map[string]string{"en": "en", "ru": "ru", "en-US": "en", "RU": "ru", "de": "", "": "", "uk": ""} {
		if got := SupportedLanguage(in); got != want {
			t.Errorf("SupportedLanguage(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFormats(t *testing.T) {
	tests := []struct{ got, want string }{
		{FormatWindow("en", 720*time.Hour), "30 days"},
		{FormatWindow("en", 24*time.Hour), "1 day"},
		{FormatWindow("ru", 720*time.Hour), "30 дней"},
		{FormatWindow("ru", 21*24*time.Hour), "21 день"},
		{FormatWindow("ru", 2*24*time.Hour), "2 дня"},
		{FormatWindow("ru", 12*24*time.Hour), "12 дней"},
		{FormatWindow("ru", 5*time.Hour), "5 часов"},
		{FormatWindow("en", 90*time.Minute), "90 minutes"},
		{FormatDuration("en", 2*time.Hour+5*time.Minute+3*time.Second), "2 h 05 min"},
		{FormatDuration("ru", 3*time.Minute+7*time.Second), "3 мин 07 с"},
		{FormatDuration("en", 12*time.Second), "12 s"},
		{CountCalcs("en", 1), "1 calculation"},
		{CountCalcs("en", 25), "25 calculations"},
		{CountCalcs("ru", 1), "1 расчёт"},
		{CountCalcs("ru", 3), "3 расчёта"},
		{CountCalcs("ru", 25), "25 расчётов"},
		{CountCalcs("ru", 111), "111 расчётов"},
		{FormatSize("en", 700), "700 B"},
		{FormatSize("en", 1536), "1.5 kB"},
		{FormatSize("en", 20<<20), "20 MB"},
		{FormatSize("en", 20_000_000), "19.1 MB"},
		{FormatSize("ru", 1536), "1,5 КБ"},
		{FormatSize("ru", 20<<20), "20 МБ"},
		{FormatSize("ru", 3<<30), "3 ГБ"},
		{FormatSize("ru", 1023), "1023 Б"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// TestFormatSizesNeverLookWithinTheLimit: a file over the limit is never shown
// as the same size as the limit (or smaller).
func TestFormatSizesNeverLookWithinTheLimit(t *testing.T) {
	for _, tt := range []struct {
		lang        string
		size, limit int64
		s, l        string
	}{
		{"en", 1<<20 + 10<<10, 1 << 20, "1.01 MB", "1 MB"},
		{"en", 1<<20 + 100<<10, 1 << 20, "1.1 MB", "1 MB"},
		{"ru", 1<<20 + 10<<10, 1 << 20, "1,01 МБ", "1 МБ"},
		{"en", 1<<20 + 1, 1 << 20, "1048577 B", "1048576 B"},
		{"en", 5000, 4000, "4.9 kB", "3.9 kB"},
		{"en", 2 << 30, 20 << 20, "2 GB", "20 MB"},
	} {
		s, l := FormatSizes(tt.lang, tt.size, tt.limit)
		if s != tt.s || l != tt.l {
			t.Errorf("FormatSizes(%s, %d, %d) = %q, %q; want %q, %q", tt.lang, tt.size, tt.limit, s, l, tt.s, tt.l)
		}
	}
	// Any size over any limit reads differently from it.
	for limit := int64(1000); limit < 1<<31; limit = limit*7 + 13 {
		for _, extra := range []int64{1, 7, 100, 1023, 1 << 14} {
			s, l := FormatSizes("en", limit+extra, limit)
			if s == l {
				t.Fatalf("FormatSizes(%d, %d) = %q twice", limit+extra, limit, s)
			}
		}
	}
}

// TestCommandMenuInCatalogs: every command of the menu has its description in
// every language's catalog (the parity test then keeps them together), within
// Telegram's 3–256 characters for a command's description.
func TestCommandMenuInCatalogs(t *testing.T) {
	for _, lang := range Languages {
		for _, admin := range []bool{false, true} {
			cmds := commandList(lang, admin)
			want := len(userMenu)
			if admin {
				want += len(adminMenu)
			}
			if len(cmds) != want {
				t.Errorf("%s menu (admin %v) has %d commands, want %d", lang, admin, len(cmds), want)
			}
			for _, c := range cmds {
				d := c.Description
				if _, ok := catalogs[lang]["menu."+c.Text]; !ok {
					t.Errorf("%s: no menu.%s in the catalog", lang, c.Text)
				}
				if n := len([]rune(d)); n < 3 || n > 256 {
					t.Errorf("%s /%s: description of %d characters: %q", lang, c.Text, n, d)
				}
			}
		}
	}
}

// TestSkipCodesInCatalogs: every reason a scheduler plugin may give for a
// result file it did not fetch, and "other", is worded in every language.
func TestSkipCodesInCatalogs(t *testing.T) {
	for _, lang := range Languages {
		for _, code := range append(slices.Clone(plugins.SkipCodes), plugins.SkipOther) {
			if _, ok := catalogs[lang]["skip."+code]; !ok {
				t.Errorf("%s: no skip.%s in the catalog", lang, code)
			}
		}
	}
}

// TestWindowPhrasesAgree renders every Russian message that names the quota
// window (or /stats' days) for windows whose number takes each Russian form:
// the adjective "последний/последние" and the noun agree with the number
// ("за последний 21 день", never "за последние 21 день"), and a plain "за
// {window}" reads right for every form. Months use the same helper, as a
// window in months would.
func TestWindowPhrasesAgree(t *testing.T) {
	day := 24 * time.Hour
	month := func(n int64) string {
		return pluralLast("ru", n, "month", "months", "месяц", "месяца", "месяцев")
	}
	for _, tc := range []struct {
		last, window string // FormatLastWindow's and FormatWindow's text
		wantLast     string // the phrase after "за"
		wantWindow   string
	}{
		{FormatLastWindow("ru", 1*day), FormatWindow("ru", 1*day), "последний день", "1 день"},
		{FormatLastWindow("ru", 2*day), FormatWindow("ru", 2*day), "последние 2 дня", "2 дня"},
		{FormatLastWindow("ru", 5*day), FormatWindow("ru", 5*day), "последние 5 дней", "5 дней"},
		{FormatLastWindow("ru", 11*day), FormatWindow("ru", 11*day), "последние 11 дней", "11 дней"},
		{FormatLastWindow("ru", 21*day), FormatWindow("ru", 21*day), "последний 21 день", "21 день"},
		{FormatLastWindow("ru", 22*day), FormatWindow("ru", 22*day), "последние 22 дня", "22 дня"},
		{FormatLastWindow("ru", 25*day), FormatWindow("ru", 25*day), "последние 25 дней", "25 дней"},
		{month(1), plural("ru", 1, "", "", "месяц", "месяца", "месяцев"), "последний месяц", "1 месяц"},
		{month(2), plural("ru", 2, "", "", "месяц", "месяца", "месяцев"), "последние 2 месяца", "2 месяца"},
		{month(5), plural("ru", 5, "", "", "месяц", "месяца", "месяцев"), "последние 5 месяцев", "5 месяцев"},
	} {
		if tc.last != tc.wantLast || tc.window != tc.wantWindow {
			t.Errorf("window phrases %q, %q; want %q, %q", tc.last, tc.window, tc.wantLast, tc.wantWindow)
		}
		p := P{"last": tc.last, "window": tc.window, "calcs": CountCalcs("ru", 5), "used": 5, "limit": 5,
			"id": 1, "name": "Мария", "org": "ИПХФ", "status": "активна", "telegram": "@masha"}
		for key, want := range map[string]string{
			"doc.quota":      "Лимит исчерпан: за " + tc.wantLast + " вы уже запустили 5 расчётов",
			"status.user":    "Расчёты: 5 из 5 за " + tc.wantLast + "\n",
			"list.header":    "(расчёты за " + tc.wantLast + " / лимит)",
			"access.granted": "Вам доступно 5 расчётов за " + tc.wantWindow + ".",
			"approve.done":   "5 расчётов за " + tc.wantWindow + ".",
			"approve.notify": "5 расчётов за " + tc.wantWindow + ".",
			"limit.done":     "5 расчётов за " + tc.wantWindow + ".",
			"limit.notify":   "5 расчётов за " + tc.wantWindow + ".",
		} {
			if got := tr("ru", key, p); !strings.Contains(got, want) {
				t.Errorf("%s for %q: %q lacks %q", key, tc.wantWindow, got, want)
			}
		}
	}
	for _, tc := range []struct {
		days int
		want string
	}{{1, "за последний день ("}, {7, "за последние 7 дней ("}, {21, "за последний 21 день ("}, {30, "за последние 30 дней ("}} {
		p := statsPeriod{from: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), to: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), days: tc.days}
		if got := tr("ru", "stats.title", P{"period": p.name("ru")}); !strings.Contains(got, tc.want) {
			t.Errorf("stats title for %d days: %q lacks %q", tc.days, got, tc.want)
		}
	}
	if got := FormatLastWindow("en", day); got != "the last day" {
		t.Errorf("English, one day: %q", got)
	}
	if got := FormatLastWindow("en", 21*day); got != "the last 21 days" {
		t.Errorf("English, 21 days: %q", got)
	}
	// No Russian text puts a fixed "последние/последний" before a number it
	// cannot agree with.
	for key, text := range catalogs["ru"] {
		if regexp.MustCompile(`последн(ие|ий|юю|ей) \{`).MatchString(text) || strings.Contains(text, "} дней") {
			t.Errorf("ru %s: a fixed word form before a number: %q", key, text)
		}
	}
}
