package command

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"hpcbot/plugins"
)

// original is the runner part of the original bot's config_full_example.json,
// both clusters' rules in one set (their associations do not collide).
func original() []plugins.RunnerRule {
	return []plugins.RunnerRule{
		{
			Program:      "orca_submit",
			Launch:       plugins.LaunchWrapper,
			AllowedArgs:  []string{"{}", `-p\d{1,2}`},
			DefaultArgs:  []string{"{}"},
			Associations: []string{".inp"},
			Description:  "ORCA 5.0.4",
			Results:      []string{".gbw", "orca.property.txt"},
		},
		{
			Program:      "g16_submit",
			Launch:       plugins.LaunchWrapper,
			AllowedArgs:  []string{"{}"},
			Associations: []string{".gjf", ".com"},
			Description:  "Gaussian 16",
		},
		{
			Program:      "xtb_submit",
			AllowedArgs:  []string{"{}", "--opt", "--gfn[012]"},
			DefaultArgs:  []string{"{}", "--opt"},
			Associations: []string{".xyz"},
		},
	}
}

func configured(t testing.TB, rules []plugins.RunnerRule) *Runner {
	t.Helper()
	r := New()
	if err := r.Configure(context.Background(), "lomonosov", rules); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return r
}

func TestPlanOriginalConfig(t *testing.T) {
	r := configured(t, original())
	tests := []struct {
		file, caption string
		want          []string // argv, or nil when refused
		code, detail  string   // the refusal
	}{
		// no caption: by extension, default_args
		{"mol.inp", "", []string{"orca_submit", "./mol.inp"}, "", ""},
		{"MOL.INP", "", []string{"orca_submit", "./MOL.INP"}, "", ""},
		{"h2o.gjf", "", []string{"g16_submit", "./h2o.gjf"}, "", ""}, // default_args defaulted to ["{}"]
		{"h2o.com", "", []string{"g16_submit", "./h2o.com"}, "", ""},
		{"h2o.xyz", "", []string{"xtb_submit", "./h2o.xyz", "--opt"}, "", ""},
		{"h2o.log", "", nil, plugins.RefuseNoProgram, ".log"},
		{"h2o.xyz", "  \n ", []string{"xtb_submit", "./h2o.xyz", "--opt"}, "", ""},

		// a full caption
		{"mol.inp", "orca_submit {} -p8", []string{"orca_submit", "./mol.inp", "-p8"}, "", ""},
		{"mol.inp", "orca_submit -p16 {}", []string{"orca_submit", "-p16", "./mol.inp"}, "", ""},
		{"mol.inp", "orca_submit mol.inp -p8", []string{"orca_submit", "./mol.inp", "-p8"}, "", ""},
		{"mol.inp", `orca_submit '{}' "-p8"`, []string{"orca_submit", "./mol.inp", "-p8"}, "", ""},
		{"mol.inp", "orca_submit {} -p100", nil, plugins.RefuseArgNotAllowed, "-p100"},
		{"mol.inp", "orca_submit {} -p", nil, plugins.RefuseArgNotAllowed, "-p"},
		{"mol.inp", "orca_submit {} x-p8", nil, plugins.RefuseArgNotAllowed, "x-p8"},
		{"mol.inp", "orca_submit {} -p8x", nil, plugins.RefuseArgNotAllowed, "-p8x"},
		{"mol.inp", "orca_submit -p8", nil, plugins.RefuseNoInput, "orca_submit"},
		{"mol.inp", "orca_submit {}.out", nil, plugins.RefuseArgNotAllowed, "{}.out"},
		{"mol.inp", "orca_submit other.inp", nil, plugins.RefuseArgNotAllowed, "other.inp"},
		{"mol.inp", "orca_submit", []string{"orca_submit", "./mol.inp"}, "", ""},
		{"mol.inp", "orca_submit {} {}", []string{"orca_submit", "./mol.inp", "./mol.inp"}, "", ""},
		{"h2o.gjf", "g16_submit {}", []string{"g16_submit", "./h2o.gjf"}, "", ""},
		{"h2o.gjf", "g16_submit {} -p8", nil, plugins.RefuseArgNotAllowed, "-p8"},
		{"h2o.xyz", "xtb_submit {} --gfn2", []string{"xtb_submit", "./h2o.xyz", "--gfn2"}, "", ""},
		{"h2o.xyz", "xtb_submit {} --gfn3", nil, plugins.RefuseArgNotAllowed, "--gfn3"},
		{"h2o.xyz", "xtb_submit {} --opt --gfn0", []string{"xtb_submit", "./h2o.xyz", "--opt", "--gfn0"}, "", ""},
		// a program by caption for a file of another extension (as in the original)
		{"h2o.txt", "xtb_submit {}", []string{"xtb_submit", "./h2o.txt"}, "", ""},
		{"mol.inp", "gaussian {}", nil, plugins.RefuseUnknownProgram, "gaussian"},
		{"mol.inp", "ORCA_SUBMIT {}", nil, plugins.RefuseUnknownProgram, "ORCA_SUBMIT"},
		{"mol.inp", "{} -p8", nil, plugins.RefuseUnknownProgram, "{}"},

		// options only: the extension's program, input first
		{"mol.inp", "-p8", []string{"orca_submit", "./mol.inp", "-p8"}, "", ""},
		{"mol.inp", "-p8 {}", []string{"orca_submit", "-p8", "./mol.inp"}, "", ""},
		{"h2o.xyz", "--gfn1 --opt", []string{"xtb_submit", "./h2o.xyz", "--gfn1", "--opt"}, "", ""},
		{"mol.inp", "-p8 -p999", nil, plugins.RefuseArgNotAllowed, "-p999"},
		{"h2o.log", "-p8", nil, plugins.RefuseNoProgram, ".log"},

		// hostile captions
		{"mol.inp", "orca_submit {} -p8; reboot", nil, plugins.RefuseArgNotAllowed, "-p8;"},
		{"mol.inp", "-p8; reboot", nil, plugins.RefuseArgNotAllowed, "-p8;"},
		{"mol.inp", "orca_submit {}; rm -rf ~", nil, plugins.RefuseArgNotAllowed, "{};"},
		{"mol.inp", "orca_submit $(id)", nil, plugins.RefuseArgNotAllowed, "$(id)"},
		{"mol.inp", "orca_submit `id`", nil, plugins.RefuseArgNotAllowed, "`id`"},
		{"mol.inp", "orca_submit {} | sh", nil, plugins.RefuseArgNotAllowed, "|"},
		{"mol.inp", "orca_submit {}\nreboot", nil, plugins.RefuseArgNotAllowed, "reboot"},
		{"mol.inp", "orca_submit '{} -p8", nil, plugins.RefuseBadCaption, ""},
		{"mol.inp", "orca_submit {}\x00", nil, plugins.RefuseBadCaption, ""},
		{"mol.inp", "orca_submit '{}\n-p8'", nil, plugins.RefuseBadCaption, ""},
		{"mol.inp", "$(reboot)", nil, plugins.RefuseUnknownProgram, "$(reboot)"},
	}
	for _, tt := range tests {
		plan, err := r.Plan(context.Background(), plugins.PlanRequest{FileName: tt.file, Caption: tt.caption})
		if tt.want != nil {
			if err != nil {
				t.Errorf("Plan(%q, %q): %v", tt.file, tt.caption, err)
				continue
			}
			if !slices.Equal(plan.Argv, tt.want) || plan.Program != tt.want[0] {
				t.Errorf("Plan(%q, %q) = %q (program %q), want %q", tt.file, tt.caption, plan.Argv, plan.Program, tt.want)
			}
			continue
		}
		var refusal *plugins.Refusal
		if !errors.As(err, &refusal) {
			t.Errorf("Plan(%q, %q) = %q, %v; want refusal %s", tt.file, tt.caption, plan.Argv, err, tt.code)
			continue
		}
		if refusal.Code != tt.code || (tt.detail != "" && refusal.Detail != tt.detail) {
			t.Errorf("Plan(%q, %q) refused %s %q, want %s %q", tt.file, tt.caption, refusal.Code, refusal.Detail, tt.code, tt.detail)
		}
		if tt.code == plugins.RefuseBadCaption && refusal.Detail == "" {
			t.Errorf("Plan(%q, %q): a bad caption refusal without the reason", tt.file, tt.caption)
		}
	}
}

func TestPlanFields(t *testing.T) {
	rules := original()
	no := false
	rules[2].Failover = &no
	rules[2].Resources = map[string]string{"time": "1:00:00", "ntasks": "4"}
	r := configured(t, rules)

	orca, err := r.Plan(context.Background(), plugins.PlanRequest{FileName: "mol.inp"})
	if err != nil {
		t.Fatal(err)
	}
	if orca.Launch != plugins.LaunchWrapper || !orca.Failover {
		t.Errorf("orca plan launch %q failover %v, want wrapper, true", orca.Launch, orca.Failover)
	}
	if !slices.Equal(orca.Extensions, []string{".gbw"}) || !slices.Equal(orca.Files, []string{"orca.property.txt"}) {
		t.Errorf("orca results: extensions %q files %q", orca.Extensions, orca.Files)
	}

	xtb, err := r.Plan(context.Background(), plugins.PlanRequest{FileName: "a.xyz"})
	if err != nil {
		t.Fatal(err)
	}
	if xtb.Launch != plugins.LaunchBatch || xtb.Failover {
		t.Errorf("xtb plan launch %q failover %v, want batch (the default), false", xtb.Launch, xtb.Failover)
	}
	if xtb.Resources["ntasks"] != "4" || len(xtb.Resources) != 2 {
		t.Errorf("xtb resources %v", xtb.Resources)
	}
	// the plan's map and slices are the caller's: changing them changes nothing here
	xtb.Resources["ntasks"] = "400"
	xtb.Argv[1] = "changed"
	again, _ := r.Plan(context.Background(), plugins.PlanRequest{FileName: "a.xyz"})
	if again.Resources["ntasks"] != "4" || again.Argv[1] != "./a.xyz" {
		t.Errorf("a plan shares state with the runner: %v %q", again.Resources, again.Argv)
	}
}

func TestPlanSameProgramTwice(t *testing.T) {
	r := configured(t, []plugins.RunnerRule{
		{Program: "run", AllowedArgs: []string{"{}", "--fast"}, Associations: []string{".a"}},
		{Program: "run", AllowedArgs: []string{"{}", "--slow"}, DefaultArgs: []string{"--slow", "{}"}, Associations: []string{".b"}},
	})
	tests := []struct {
		file, caption string
		want          []string
		code          string
	}{
		{"x.a", "run {} --fast", []string{"run", "./x.a", "--fast"}, ""},
		{"x.a", "run {} --slow", []string{"run", "./x.a", "--slow"}, ""}, // the second entry accepts it
		{"x.b", "run", []string{"run", "--slow", "./x.b"}, ""},           // the .b entry comes first
		{"x.a", "run", []string{"run", "./x.a"}, ""},
		{"x.c", "run {} --both", nil, plugins.RefuseArgNotAllowed},
	}
	for _, tt := range tests {
		plan, err := r.Plan(context.Background(), plugins.PlanRequest{FileName: tt.file, Caption: tt.caption})
		var refusal *plugins.Refusal
		switch {
		case tt.want != nil && (err != nil || !slices.Equal(plan.Argv, tt.want)):
			t.Errorf("Plan(%q, %q) = %q, %v; want %q", tt.file, tt.caption, plan.Argv, err, tt.want)
		case tt.want == nil && (!errors.As(err, &refusal) || refusal.Code != tt.code):
			t.Errorf("Plan(%q, %q) = %q, %v; want refusal %s", tt.file, tt.caption, plan.Argv, err, tt.code)
		}
	}
}

// TestPlanWithoutInput covers a program that does not take the input file
// ("{}" not in allowed_args): it runs without it, as the original did.
func TestPlanWithoutInput(t *testing.T) {
	r := configured(t, []plugins.RunnerRule{
		{Program: "run_all", AllowedArgs: []string{"--fast", ".*"}, Associations: []string{".job"}},
	})
	tests := []struct {
		caption string
		want    []string
		code    string
	}{
		{"", []string{"run_all"}, ""},
		{"run_all --fast", []string{"run_all", "--fast"}, ""},
		{"-x", []string{"run_all", "-x"}, ""},                          // no input put first: the program does not take it
		{"run_all x.job", []string{"run_all", "x.job"}, ""},            // just a word that .* accepts
		{"run_all {}", nil, plugins.RefuseArgNotAllowed},               // the placeholder needs "{}" in allowed_args
		{"run_all '$(id)'", []string{"run_all", "$(id)"}, ""},          // allowed, and quoted when run
		{"run_all ''", []string{"run_all", ""}, ""},                    // .* accepts the empty word
		{"run_all a\\ b 'c d'", []string{"run_all", "a b", "c d"}, ""}, // words, not strings
	}
	for _, tt := range tests {
		plan, err := r.Plan(context.Background(), plugins.PlanRequest{FileName: "x.job", Caption: tt.caption})
		var refusal *plugins.Refusal
		switch {
		case tt.want != nil && (err != nil || !slices.Equal(plan.Argv, tt.want)):
			t.Errorf("Plan(%q) = %q, %v; want %q", tt.caption, plan.Argv, err, tt.want)
		case tt.want == nil && (!errors.As(err, &refusal) || refusal.Code != tt.code):
			t.Errorf("Plan(%q) = %q, %v; want refusal %s", tt.caption, plan.Argv, err, tt.code)
		}
	}
}

func TestPlanErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := New().Plan(ctx, plugins.PlanRequest{FileName: "mol.inp"}); err == nil || errors.As(err, new(*plugins.Refusal)) {
		t.Errorf("Plan before Configure = %v, want an error that is not a refusal", err)
	}
	r := configured(t, original())
	for _, name := range []string{"", "../mol.inp", "a b.inp", "mol", "mol.inp;id", "$(id).inp", "mol.in p"} {
		_, err := r.Plan(ctx, plugins.PlanRequest{FileName: name})
		if err == nil || errors.As(err, new(*plugins.Refusal)) || plugins.KindOf(err) != plugins.KindPermanent {
			t.Errorf("Plan(file %q) = %v, want a permanent error", name, err)
		}
	}
}

func TestInfo(t *testing.T) {
	r := configured(t, original())
	info, err := r.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "command" || info.Version == "" || len(info.Programs) != 3 {
		t.Fatalf("Info = %+v", info)
	}
	g16 := info.Programs[1]
	if g16.Program != "g16_submit" || g16.Description != "Gaussian 16" || !slices.Equal(g16.DefaultArgs, []string{"{}"}) ||
		!slices.Equal(g16.AllowedArgs, []string{"{}"}) || !slices.Equal(g16.Associations, []string{".gjf", ".com"}) ||
		g16.Launch != plugins.LaunchWrapper {
		t.Errorf("g16 info = %+v", g16)
	}
	if xtb := info.Programs[2]; xtb.Launch != plugins.LaunchBatch || !slices.Equal(xtb.DefaultArgs, []string{"{}", "--opt"}) {
		t.Errorf("xtb info = %+v", xtb)
	}
}

func TestConfigureSkipsOtherRunners(t *testing.T) {
	rules := append(original(), plugins.RunnerRule{Runner: "orca", Program: "", Associations: []string{".out"}})
	r := configured(t, rules)
	info, _ := r.Info(context.Background())
	if len(info.Programs) != 3 {
		t.Errorf("Info lists %d programs, want the 3 command ones", len(info.Programs))
	}
	if _, err := r.Plan(context.Background(), plugins.PlanRequest{FileName: "a.out"}); !errors.As(err, new(*plugins.Refusal)) {
		t.Errorf("a file for another runner: %v, want a refusal", err)
	}
}

func TestConfigureKeepsOldRulesOnError(t *testing.T) {
	r := configured(t, original())
	err := r.Configure(context.Background(), "lomonosov", []plugins.RunnerRule{{Program: "x", AllowedArgs: []string{"("}}})
	if err == nil || plugins.KindOf(err) != plugins.KindPermanent {
		t.Fatalf("Configure with a bad regex = %v, want a permanent error", err)
	}
	if !strings.Contains(err.Error(), "clusters[lomonosov].runners[0].allowed_args[0]") {
		t.Errorf("error %q does not name the key", err)
	}
	if _, err := r.Plan(context.Background(), plugins.PlanRequest{FileName: "mol.inp"}); err != nil {
		t.Errorf("the earlier rules were dropped: %v", err)
	}
}

// TestPlanOptionLikeNames: a file name is never read as an option by the
// program. With `python3 {}` a file "-mhttp.server" would run
// `python3 -mhttp.server` (a web server serving the cluster account's files):
// such a name is refused, and every input reaches the program as "./NAME".
func TestPlanOptionLikeNames(t *testing.T) {
	r := configured(t, []plugins.RunnerRule{{Program: "python3", AllowedArgs: []string{"{}", "-u"}, Associations: []string{".py"}}})
	for _, name := range []string{"-mhttp.server", "-c.py", "--help.py", "-.py", ".hidden.py"} {
		for _, caption := range []string{"", "python3 {}", "-u"} {
			plan, err := r.Plan(context.Background(), plugins.PlanRequest{FileName: name, Caption: caption})
			if err == nil {
				t.Errorf("Plan(%q, %q) = %q, want an error", name, caption, plan.Argv)
			}
		}
	}
	for _, tt := range []struct {
		file, caption string
		want          []string
	}{
		{"x.server", "python3 {}", []string{"python3", "./x.server"}},
		{"job.py", "", []string{"python3", "./job.py"}},
		{"job.py", "-u", []string{"python3", "./job.py", "-u"}},
		{"job.py", "python3 -u ./job.py", []string{"python3", "-u", "./job.py"}},
		{"_x-1.py", "python3 _x-1.py", []string{"python3", "./_x-1.py"}},
	} {
		plan, err := r.Plan(context.Background(), plugins.PlanRequest{FileName: tt.file, Caption: tt.caption})
		if err != nil || !slices.Equal(plan.Argv, tt.want) {
			t.Errorf("Plan(%q, %q) = %q, %v; want %q", tt.file, tt.caption, plan.Argv, err, tt.want)
		}
	}
}
