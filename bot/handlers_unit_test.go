package bot

import (
	"bytes"
	"image/png"
	"strconv"
	"strings"
	"testing"
	"time"

	tele "gopkg.in/telebot.v3"

	"hpcbot/plugins"
	"hpcbot/plugins/shellquote"
	"hpcbot/store"
)

func TestParseUpd(t *testing.T) {
	s := func(v string) *string { return &v }
	tests := []struct {
		in               string
		first, last, org *string
		bad              string
	}{
		{in: "имя: Иван, фамилия: Петров, организация: МГУ", first: s("Иван"), last: s("Петров"), org: s("МГУ")},
		{in: "first name: Ada,last name:  Lovelace ,organization: IPC RAS", first: s("Ada"), last: s("Lovelace"), org: s("IPC RAS")},
		{in: "Имя: Иван\nФамилия: Петров", first: s("Иван"), last: s("Петров")},
		{in: "First  Name : Ada", first: s("Ada")},
		{in: "organization: ipc", org: s("ipc")},
		{in: "org: a; name: b", first: s("b"), org: s("a")},
		{in: "имя Иван", bad: "имя Иван"},
		{in: "nickname: x", bad: "nickname: x"},
		{in: "имя: ", bad: "имя:"},
		{in: "имя: " + strings.Repeat("я", maxUpdValue+1), bad: "имя: " + strings.Repeat("я", maxUpdValue+1)},
		{in: "имя: a\x01b", bad: "имя: a\x01b"},
		// Invisible format characters (Unicode Cf) would show in /list and the
		// log chat as something other than what they are: refused as in captions.
		{in: "фамилия: \u202eвортеП", bad: "фамилия: \u202eвортеП"},
		{in: "имя: Ада, org: IPC\u200b", bad: "org: IPC\u200b"},
		{in: "имя: Ива\u200dн", bad: "имя: Ива\u200dн"},
		{in: "organization: \ufeffМГУ", bad: "organization: \ufeffМГУ"},
		{in: "имя: a\u2066b\u2069", bad: "имя: a\u2066b\u2069"},
		{in: " , ,", bad: ", ,"},
	}
	for _, tt := range tests {
		f, bad, ok := parseUpd(tt.in)
		if bad != tt.bad || ok != (tt.bad == "") {
			t.Errorf("parseUpd(%q) = %q %v, want %q", tt.in, bad, ok, tt.bad)
			continue
		}
		if !ok {
			continue
		}
		eq := func(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
		if !eq(f.First, tt.first) || !eq(f.Last, tt.last) || !eq(f.Org, tt.org) {
			t.Errorf("parseUpd(%q) = %v %v %v", tt.in, deref(f.First), deref(f.Last), deref(f.Org))
		}
	}
}

func TestParseUpdEmpty(t *testing.T) {
	if _, _, ok := parseUpd(""); ok {
		t.Error("empty /upd accepted")
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func FuzzParseUpd(f *testing.F) {
	f.Add("имя: Иван, фамилия: Петров, организация: МГУ")
	f.Add("first name: a\nlast name: b")
	f.Add("::,,\n")
	f.Fuzz(func(t *testing.T, in string) {
		fields, _, ok := parseUpd(in)
		if ok && fields.First == nil && fields.Last == nil && fields.Org == nil {
			t.Fatalf("parseUpd(%q): ok with nothing set", in)
		}
		for _, v := range []*string{fields.First, fields.Last, fields.Org} {
			if v == nil {
				continue
			}
			if *v == "" || strings.ContainsFunc(*v, shellquote.Forbidden) || len([]rune(*v)) > maxUpdValue {
				t.Fatalf("parseUpd(%q) accepted %q", in, *v)
			}
		}
	})
}

func TestValidInputName(t *testing.T) {
	good := []string{"h2o.inp", "A-b_c.1.xyz", "x.sh", "benzene_opt.gjf"}
	bad := []string{"", "../x.inp", "a/b.inp", "a b.inp", "a'b.inp", `a"b.inp`, "noext", "x.", ".inp", "..",
		"$(rm).inp", "a;b.inp", "a`b`.inp", "a\nb.inp", "файл.inp", "a.in p", strings.Repeat("a", 200) + ".inp", ".hidden.inp",
		"-mhttp.server", "-x.inp", "--help.inp", "-.inp"}
	for _, n := range good {
		if !validInputName(n) {
			t.Errorf("%q refused", n)
		}
	}
	for _, n := range bad {
		if validInputName(n) {
			t.Errorf("%q accepted", n)
		}
	}
}

func FuzzValidInputName(f *testing.F) {
	f.Add("h2o.inp")
	f.Add("../etc/passwd.x")
	f.Fuzz(func(t *testing.T, name string) {
		if !validInputName(name) {
			return
		}
		if strings.ContainsAny(name, "/\\ '\"`$;&|<>()\n\t\x00*?") || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "-") {
			t.Fatalf("accepted %q", name)
		}
	})
}

func TestRateLimiter(t *testing.T) {
	l := rateLimiter{perMinute: 2}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		user uint64
		at   time.Duration
		want bool
	}{
		{1, 0, true}, {1, time.Second, true}, {1, 2 * time.Second, false}, {2, 2 * time.Second, true},
		{1, 59 * time.Second, false}, {1, 60 * time.Second, true}, {1, 61 * time.Second, true}, {1, 62 * time.Second, false},
	}
	for i, s := range steps {
		if got := l.allow(s.user, t0.Add(s.at)); got != s.want {
			t.Errorf("step %d: allow(%d, +%v) = %v", i, s.user, s.at, got)
		}
	}
	off := rateLimiter{}
	for range 100 {
		if !off.allow(1, t0) {
			t.Fatal("a limit of 0 must not limit")
		}
	}
}

func TestRefusalText(t *testing.T) {
	for _, code := range []string{plugins.RefuseNoProgram, plugins.RefuseUnknownProgram, plugins.RefuseArgNotAllowed,
		plugins.RefuseNoInput, plugins.RefuseBadCaption, "something_new"} {
		for _, lang := range Languages {
			got := refusalText(lang, &plugins.Refusal{Code: code, Detail: "$(rm -rf ~)<b>"})
			if strings.Contains(got, "<b>") {
				t.Errorf("%s %s: detail not escaped: %s", lang, code, got)
			}
			if code != plugins.RefuseNoInput && !strings.Contains(got, "$(rm -rf ~)&lt;b&gt;") {
				t.Errorf("%s %s: detail missing: %s", lang, code, got)
			}
		}
	}
}

// A Check refusal quotes the line and the limit; every one of its codes has
// its own message (not the catch-all) in each language.
func TestCheckRefusalText(t *testing.T) {
	for _, ref := range []plugins.Refusal{
		{Code: plugins.RefuseTooManyCores, Line: 3, Detail: "64", Limit: "16"},
		{Code: plugins.RefuseTooMuchMemory, Line: 2, Detail: "64000", Limit: "32768"},
		{Code: plugins.RefuseXYZCount, Line: 1, Detail: "5", Limit: "3"},
		{Code: plugins.RefuseXYZAtom, Line: 4},
		{Code: plugins.RefuseInputBinary, Line: 7},
		{Code: plugins.RefuseCaptionCores, Detail: "8", Limit: "4"},
		{Code: plugins.RefuseInputEncoding, Detail: "UTF-16", Line: 1},
		{Code: plugins.RefuseInputEmpty},
		{Code: plugins.RefuseXYZHeader, Line: 1},
	} {
		for _, lang := range Languages {
			got := refusalText(lang, &ref)
			if got == refusalText(lang, &plugins.Refusal{Code: "something_new", Detail: ref.Detail}) {
				t.Errorf("%s %s: the catch-all message: %s", lang, ref.Code, got)
			}
			for _, want := range []string{ref.Detail, ref.Limit} {
				if !strings.Contains(got, want) {
					t.Errorf("%s %s: %q missing: %s", lang, ref.Code, want, got)
				}
			}
			if ref.Line > 1 && !strings.Contains(got, strconv.Itoa(ref.Line)) {
				t.Errorf("%s %s: line %d missing: %s", lang, ref.Code, ref.Line, got)
			}
		}
	}
}

func TestRunTime(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	h := func(s store.State, m int) store.Transition {
		return store.Transition{State: s, At: t0.Add(time.Duration(m) * time.Minute)}
	}
	c := store.Calculation{History: []store.Transition{h(store.StateReceived, 0), h(store.StateSubmitted, 1), h(store.StatePending, 2),
		h(store.StateRunning, 5), h(store.StateSucceeded, 65), h(store.StateRetrieved, 66)}}
	if d, ok := runTime(c); !ok || d != time.Hour {
		t.Errorf("runTime = %v %v, want 1h", d, ok)
	}
	c.History = []store.Transition{h(store.StateSubmitted, 1), h(store.StateFailed, 3)}
	if d, ok := runTime(c); !ok || d != 2*time.Minute {
		t.Errorf("without running: %v %v", d, ok)
	}
	c.History = []store.Transition{h(store.StateReceived, 0), h(store.StateError, 1)}
	if _, ok := runTime(c); ok {
		t.Error("never submitted has no run time")
	}
}

func TestRedactor(t *testing.T) {
	sc := newScrubber("123:ABC", []string{"p&ss<word>", "p&ss"})
	in := "Post http://x/bot123:ABC/getMe: refused; login p&ss<word> and p&amp;ss&lt;word&gt;; p&ss"
	got := sc.Replace(in)
	for _, secret := range []string{"123:ABC", "p&ss", "p&amp;ss", "word"} {
		if strings.Contains(got, secret) {
			t.Errorf("%q left in %q", secret, got)
		}
	}
	if newScrubber("", nil).Replace(in) != in {
		t.Error("no secrets changed the text")
	}
}

func pngDecode(data []byte) (any, error) { return png.Decode(bytes.NewReader(data)) }

func teleUser(id int64, username string) *tele.User { return &tele.User{ID: id, Username: username} }

func TestThrottle(t *testing.T) {
	th := throttle{every: 10 * time.Minute}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		key  int64
		at   time.Duration
		want bool
	}{{1, 0, true}, {1, time.Minute, false}, {2, time.Minute, true}, {1, 10 * time.Minute, true}, {1, 11 * time.Minute, false}}
	for i, s := range steps {
		if got := th.allow(s.key, t0.Add(s.at)); got != s.want {
			t.Errorf("step %d: %v", i, got)
		}
	}
}

// TestDisplayNameDropsInvisibleCharacters: a name with a bidi override or a
// zero-width space reads in the log chat as what it is.
func TestDisplayNameDropsInvisibleCharacters(t *testing.T) {
	u := &tele.User{ID: 5, FirstName: "Eve\u202e", LastName: "\u200bAdmin\u2066 \n"}
	if got := describeUser(u); got != "Eve Admin (5)" {
		t.Errorf("describeUser = %q", got)
	}
	if got := accountOf(u).DisplayName; got != "Eve Admin" {
		t.Errorf("DisplayName = %q", got)
	}
}
