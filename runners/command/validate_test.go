package command

import (
	"strings"
	"testing"

	"hpcbot/plugins"
)

func TestValidateAccepts(t *testing.T) {
	for name, rules := range map[string][]plugins.RunnerRule{
		"original": original(),
		"empty":    nil,
		"paths and modes": {
			{Program: "/opt/orca/bin/orca_submit", Launch: "batch", AllowedArgs: []string{"{}"}},
			{Program: "./run.sh", Launch: "wrapper"},
			{Program: "g++", AllowedArgs: []string{".*"}, DefaultArgs: []string{"--version"}},
		},
		"case-different programs": {{Program: "Run"}, {Program: "run"}},
		"other runner's rule": {
			{Program: "x", Associations: []string{".inp"}},
			{Runner: "orca", Program: "not checked here; (", Associations: []string{".out"}},
		},
	} {
		if err := Validate("clusters[c].runners", rules); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestValidateRefuses(t *testing.T) {
	tests := []struct {
		name  string
		rules []plugins.RunnerRule
		keys  []string // every key the error must name, in order
	}{
		{"bad regexes", []plugins.RunnerRule{{Program: "p", AllowedArgs: []string{"{}", "(", `a)|(.*`, "", `(?=x)`}}},
			[]string{"[0].allowed_args[1]", "[0].allowed_args[2]", "[0].allowed_args[3]", "[0].allowed_args[4]"}},
		{"program", []plugins.RunnerRule{{Program: ""}, {Program: "orca_submit -p8"}, {Program: "a;b"}, {Program: "-x"},
			{Program: "%1"}, {Program: "a=b"}, {Program: "~/bin/x"}, {Program: "$(id)"}, {Program: "héllo"}},
			[]string{"[0].program", "[1].program", "[2].program", "[3].program", "[4].program", "[5].program", "[6].program", "[7].program", "[8].program"}},
		{"launch", []plugins.RunnerRule{{Program: "p", Launch: "Batch"}, {Program: "p", Launch: "sbatch"}},
			[]string{"[0].launch", "[1].launch"}},
		{"associations", []plugins.RunnerRule{
			{Program: "a", Associations: []string{"inp", ".inp", ".tar.gz", ".", ""}},
			{Program: "b", Associations: []string{".INP"}},
			{Runner: "other", Program: "c", Associations: []string{".inp"}},
		}, []string{"[0].associations[0]", "[0].associations[2]", "[0].associations[3]", "[0].associations[4]", "[1].associations[0]", "[2].associations[0]"}},
		{"default args", []plugins.RunnerRule{
			{Program: "a", AllowedArgs: []string{"{}", `-p\d{1,2}`}, DefaultArgs: []string{"{}", "-p100", "-p8"}},
			{Program: "b", AllowedArgs: []string{"-x"}, DefaultArgs: []string{"{}"}},
			{Program: "c", AllowedArgs: []string{"{}", "-x"}, DefaultArgs: []string{"-x"}},
			{Program: "d", AllowedArgs: []string{"("}, DefaultArgs: []string{"("}},
		}, []string{"[0].default_args[1]", "[1].default_args[0]", "[2].default_args", "[3].allowed_args[0]", "[3].default_args[0]"}},
		{"results", []plugins.RunnerRule{{Program: "a", Results: []string{".chk", "ok.txt", ".", "..", "a/b", ".a.b", "", "x y"}}},
			[]string{"[0].results[2]", "[0].results[3]", "[0].results[4]", "[0].results[5]", "[0].results[6]", "[0].results[7]"}},
	}
	for _, tt := range tests {
		err := Validate("clusters[lomonosov].runners", tt.rules)
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		lines := strings.Split(err.Error(), "\n")
		if len(lines) != len(tt.keys) {
			t.Errorf("%s: %d problems, want %d:\n%v", tt.name, len(lines), len(tt.keys), err)
			continue
		}
		for i, key := range tt.keys {
			if !strings.HasPrefix(lines[i], "clusters[lomonosov].runners"+key+": ") {
				t.Errorf("%s: problem %d is %q, want key %s", tt.name, i, lines[i], key)
			}
		}
	}
}

// TestValidateMessages checks that a message says what to do.
func TestValidateMessages(t *testing.T) {
	err := Validate("clusters[c].runners", []plugins.RunnerRule{
		{Program: "p", AllowedArgs: []string{"{}", "("}, DefaultArgs: []string{"-x"}, Associations: []string{"inp"}},
	})
	for _, want := range []string{"does not compile", "add a pattern", `like ".inp"`, `add "{}"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
}
