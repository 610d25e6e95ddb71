package qcrun

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"hpcbot/plugins"
)

func configured(t *testing.T, name string, rules ...plugins.RunnerRule) *Runner {
	t.Helper()
	r := New(name)
	if err := r.Configure(context.Background(), "c1", rules); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return r
}

func orcaRule() plugins.RunnerRule {
	return plugins.RunnerRule{Runner: ORCA, Program: "/opt/orca/orca_submit", Associations: []string{".inp"},
		AllowedArgs: []string{"{}"}, MaxCores: 16, MaxMemory: "32GB"}
}

func gaussianRule() plugins.RunnerRule {
	return plugins.RunnerRule{Runner: Gaussian, Program: "g16", Associations: []string{".gjf", ".com"},
		AllowedArgs: []string{"{}"}, MaxCores: 8, MaxMemory: "16GB"}
}

func xtbRule() plugins.RunnerRule {
	return plugins.RunnerRule{Runner: XTB, Program: "xtb", Associations: []string{".xyz"},
		AllowedArgs: []string{"{}", "--opt", "--hess", "-P", `\d+`}, MaxCores: 4}
}

// A caption names the program by the runner's name, the program's base name
// or the program value; the command runner's rules still apply.
func TestCaptionNamesTheProgram(t *testing.T) {
	r := configured(t, ORCA, orcaRule())
	for _, caption := range []string{"orca {}", "orca_submit {}", "/opt/orca/orca_submit {}", ""} {
		p, err := r.Plan(context.Background(), plugins.PlanRequest{FileName: "h2o.inp", Caption: caption})
		if err != nil {
			t.Errorf("caption %q: %v", caption, err)
			continue
		}
		if p.Argv[0] != "/opt/orca/orca_submit" || p.Argv[1] != "./h2o.inp" {
			t.Errorf("caption %q: argv %q", caption, p.Argv)
		}
	}
	for caption, code := range map[string]string{
		"orca {} ; rm -rf ~": plugins.RefuseArgNotAllowed,
		"gaussian {}":        plugins.RefuseUnknownProgram,
		"orca":               "", // default_args
	} {
		_, err := r.Plan(context.Background(), plugins.PlanRequest{FileName: "h2o.inp", Caption: caption})
		var ref *plugins.Refusal
		if code == "" {
			if err != nil {
				t.Errorf("caption %q: %v", caption, err)
			}
			continue
		}
		if !errors.As(err, &ref) || ref.Code != code {
			t.Errorf("caption %q: %v, want refusal %s", caption, err, code)
		}
	}
	p, err := r.Plan(context.Background(), plugins.PlanRequest{FileName: "h2o.inp", Caption: "orca {}"})
	if err != nil || !slices.Equal(p.Files, []string{"h2o.out", "h2o.log", "h2o.xyz"}) {
		t.Errorf("ORCA's result files: %q, %v", p.Files, err)
	}
	x := configured(t, XTB, xtbRule())
	p, err = x.Plan(context.Background(), plugins.PlanRequest{FileName: "w.xyz", Caption: "xtb {} --opt"})
	if err != nil || !slices.Contains(p.Files, "xtbopt.xyz") {
		t.Errorf("xtb's result files: %q, %v", p.Files, err)
	}
	info, err := r.Info(context.Background())
	if err != nil || info.Name != ORCA || len(info.Programs) != 1 {
		t.Errorf("Info: %+v, %v", info, err)
	}
}

// The command runner does not take its name or a base name as an alias.
func TestCommandRunnerTakesNoAlias(t *testing.T) {
	r := configured(t, ORCA, orcaRule())
	_ = r
	c := New(XTB)
	if err := c.Configure(context.Background(), "c1", []plugins.RunnerRule{{Runner: XTB, Program: "/usr/bin/xtb", AllowedArgs: []string{"{}"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Plan(context.Background(), plugins.PlanRequest{FileName: "w.xyz", Caption: "orca {}"}); err == nil {
		t.Error("the xtb runner took the name orca")
	}
}

func TestValidate(t *testing.T) {
	rules := []plugins.RunnerRule{
		{Program: "cat", MaxCores: 4},                                    // command: cannot enforce
		{Runner: ORCA, Program: "orca", MaxCores: -1, MaxMemory: "lots"}, // bad values
		{Runner: Gaussian, Program: "g16", AllowedArgs: []string{"("}},   // the command runner's checks
		{Runner: XTB, Program: "xtb", MaxMemory: "4GB", MaxCores: 2},     // fine
	}
	err := Validate("clusters[0].runners", rules)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"clusters[0].runners[0].max_cores: the command runner does not read inputs",
		"clusters[0].runners[1].max_cores: -1 is negative",
		`clusters[0].runners[1].max_memory: "lots" is not a size`,
		"clusters[0].runners[2].allowed_args[0]",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "runners[3]") {
		t.Errorf("a valid rule was reported:\n%v", err)
	}
	if err := New(ORCA).Configure(context.Background(), "c1", rules[1:2]); plugins.KindOf(err) != plugins.KindPermanent {
		t.Errorf("Configure with a bad max_memory: %v", err)
	}
}

func TestParseMemory(t *testing.T) {
	for in, want := range map[string]int64{"64GB": 65536, "64G": 65536, "8000MB": 8000, "8000 mb": 8000, "1TB": 1 << 20} {
		if got, err := ParseMemory(in); err != nil || got != want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "64", "GB", "-1GB", "1.5GB", "64XB", "99999999999999999999GB"} {
		if _, err := ParseMemory(in); err == nil {
			t.Errorf("ParseMemory(%q) accepted", in)
		}
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
