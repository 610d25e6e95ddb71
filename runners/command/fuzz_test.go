package command

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"hpcbot/plugins"
	"hpcbot/plugins/shellquote"
)

// fuzzRules are the original rules plus permissive ones: even ".*" must not
// let a caption inject anything.
func fuzzRules() []plugins.RunnerRule {
	return append(original(),
		plugins.RunnerRule{Program: "anything", AllowedArgs: []string{"{}", ".*"}, Associations: []string{".txt"}},
		plugins.RunnerRule{Program: "free_run", AllowedArgs: []string{`.*`}, Associations: []string{".job"}},
		plugins.RunnerRule{Program: "if", AllowedArgs: []string{"{}", `[^;]*`}, Associations: []string{".if"}},
	)
}

var fuzzFiles = []string{"mol.inp", "h2o.xyz", "notes.txt", "a.job", "x.if", "We-ird_.Name.LOG", "h2o.gjf"}

// argvHelpers makes a folder with one executable per program of rules that
// prints its arguments NUL-terminated after a marker word, so that running
// `sh -c Join(argv)` there shows exactly what the program received.
func argvHelpers(t testing.TB, rules []plugins.RunnerRule) string {
	t.Helper()
	dir := t.TempDir()
	for _, r := range rules {
		script := "#!/bin/sh\nprintf '%s\\0' ARGV \"$@\"\n"
		if err := os.WriteFile(filepath.Join(dir, r.Program), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func availableShells() []string {
	var found []string
	for _, sh := range []string{"/bin/sh", "/bin/bash", "/bin/dash"} {
		if _, err := os.Stat(sh); err == nil {
			found = append(found, sh)
		}
	}
	return found
}

// checkPlan asserts the fuzz properties of one Plan answer.
func checkPlan(t *testing.T, rules []plugins.RunnerRule, helpers, sandbox string, req plugins.PlanRequest, plan plugins.Plan, err error) {
	t.Helper()
	if err != nil {
		var refusal *plugins.Refusal
		if !errors.As(err, &refusal) {
			t.Fatalf("Plan(%q, %q): %v, want a plan or a refusal", req.FileName, req.Caption, err)
		}
		switch refusal.Code {
		case plugins.RefuseNoProgram, plugins.RefuseUnknownProgram, plugins.RefuseArgNotAllowed,
			plugins.RefuseNoInput, plugins.RefuseBadCaption:
		default:
			t.Fatalf("Plan(%q, %q): unknown refusal code %q", req.FileName, req.Caption, refusal.Code)
		}
		return
	}
	if len(plan.Argv) == 0 || plan.Argv[0] != plan.Program {
		t.Fatalf("Plan(%q, %q): argv %q does not start with the program %q", req.FileName, req.Caption, plan.Argv, plan.Program)
	}
	i := slices.IndexFunc(rules, func(r plugins.RunnerRule) bool { return r.Program == plan.Program })
	if i < 0 {
		t.Fatalf("Plan(%q, %q): program %q is not configured", req.FileName, req.Caption, plan.Program)
	}
	rule := rules[i]
	takesInput := slices.Contains(rule.AllowedArgs, "{}")
	for _, w := range plan.Argv[1:] {
		if w == "./"+req.FileName && takesInput {
			continue
		}
		ok := false
		for _, p := range rule.AllowedArgs {
			if p != "{}" && regexp.MustCompile(`^(?:`+p+`)$`).MatchString(w) {
				ok = true
				break
			}
		}
		if !ok {
			t.Fatalf("Plan(%q, %q): argv word %q matches none of %q", req.FileName, req.Caption, w, rule.AllowedArgs)
		}
	}
	if takesInput && !slices.Contains(plan.Argv[1:], "./"+req.FileName) {
		t.Fatalf("Plan(%q, %q): argv %q never mentions the input", req.FileName, req.Caption, plan.Argv)
	}
	line := shellquote.Join(plan.Argv)
	for _, sh := range availableShells() {
		cmd := exec.Command(sh, "-c", line)
		cmd.Dir = sandbox
		cmd.Env = []string{"PATH=" + helpers + ":/usr/bin:/bin", "HOME=" + sandbox, "LC_ALL=C"}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s -c %q: %v (stderr %q)", sh, line, err, stderr.String())
		}
		want := "ARGV\x00" + strings.Join(plan.Argv[1:], "\x00")
		if len(plan.Argv) > 1 {
			want += "\x00"
		}
		if stdout.String() != want || stderr.Len() != 0 {
			t.Fatalf("%s -c %q: the program got %q (stderr %q), want %q", sh, line, stdout.String(), stderr.String(), want)
		}
	}
	if entries, err := os.ReadDir(sandbox); err != nil || len(entries) != 0 {
		t.Fatalf("running %q changed the sandbox: %v %v", line, entries, err)
	}
}

func FuzzPlan(f *testing.F) {
	for _, c := range []string{
		"", "orca_submit {} -p8", "; rm -rf ~", "orca_submit {}; rm -rf ~", "anything '; rm -rf ~'", "$(id)",
		"anything $(id)", "anything `id`", "anything a|b", "anything && reboot", "anything '&&' reboot",
		"orca_submit {}\nreboot", "anything 'a\nb'", `anything "it's" 'say "hi"'`, "anything héllo 日本語",
		"'{}'", "anything '{}'", "-p8; reboot", "-p8", "--gfn2", "xtb_submit {} --gfn1", "free_run ''",
		"free_run {}", "free_run x.job '$HOME' '*'", "if {} then", "anything \\$(id) \"\\`id\\`\"",
		"anything ~ ~root * ? [a]", "anything -- -n -e", "anything %1 a=b", "anything mol.inp notes.txt",
	} {
		for i := range fuzzFiles {
			f.Add(uint8(i), c)
		}
	}
	rules := fuzzRules()
	r := configured(f, rules)
	helpers := argvHelpers(f, rules)
	sandbox := f.TempDir()
	f.Fuzz(func(t *testing.T, file uint8, caption string) {
		req := plugins.PlanRequest{FileName: fuzzFiles[int(file)%len(fuzzFiles)], Caption: caption}
		plan, err := r.Plan(context.Background(), req)
		checkPlan(t, rules, helpers, sandbox, req, plan, err)
		// Plan is pure: the same request gets the same answer
		plan2, err2 := r.Plan(context.Background(), req)
		if !slices.Equal(plan.Argv, plan2.Argv) || (err == nil) != (err2 == nil) {
			t.Fatalf("Plan(%q, %q) answered %q, %v then %q, %v", req.FileName, req.Caption, plan.Argv, err, plan2.Argv, err2)
		}
	})
}

// FuzzPlanPermissive puts the fuzzed text after a program that accepts any
// word (allowed_args ".*"), so that most inputs are planned and run by the
// shells: whatever the words, the program gets exactly them.
func FuzzPlanPermissive(f *testing.F) {
	for _, s := range []string{
		"; rm -rf ~", "'; rm -rf ~'", "$(id)", "`id`", "| sh", "&& reboot", "a\nb", `"it's" 'say "hi"'`,
		"héllo 日本語", "'{}'", "-p8; reboot", `\$(id) "\$HOME"`, "~ * ? [a] {a,b}", "> x < y", "'' \"\"", "#c !!",
	} {
		f.Add(s)
	}
	rules := fuzzRules()
	r := configured(f, rules)
	helpers := argvHelpers(f, rules)
	sandbox := f.TempDir()
	f.Fuzz(func(t *testing.T, s string) {
		req := plugins.PlanRequest{FileName: "notes.txt", Caption: "anything {} " + s}
		plan, err := r.Plan(context.Background(), req)
		checkPlan(t, rules, helpers, sandbox, req, plan, err)
	})
}

// TestPlanRunsExactly runs the table of hostile captions through real shells
// on every go test, not only when fuzzing.
func TestPlanRunsExactly(t *testing.T) {
	rules := fuzzRules()
	r := configured(t, rules)
	helpers := argvHelpers(t, rules)
	sandbox := t.TempDir()
	for _, c := range []string{
		"anything {} '; rm -rf ~'", "anything {} '$(touch pwned)' '`touch pwned`' '|' '&&' ';' '>x'",
		"anything {} \"\\$(touch pwned)\" a\\;touch\\ pwned", "if {} then fi", "free_run", "-p8", "",
		"anything {} \"it's\" '' ' ' héllo",
	} {
		req := plugins.PlanRequest{FileName: "notes.txt", Caption: c}
		plan, err := r.Plan(context.Background(), req)
		if err != nil {
			t.Errorf("Plan(%q): %v", c, err)
			continue
		}
		checkPlan(t, rules, helpers, sandbox, req, plan, err)
	}
}
