package pbs

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current output")

func TestGoldenBatchScripts(t *testing.T) {
	for _, tc := range []struct {
		file, flavor, dir string
		req               plugins.SubmitRequest
	}{
		{"pro-batch.sh", "pro", "/scratch/alice/hpcbot/1732640000_42_h2o", plugins.SubmitRequest{
			CalcID: 42, JobName: "hpcbot-42", Comment: "hpcbot user=7 org=ipc", Launch: plugins.LaunchBatch,
			Argv:      []string{"g16", "h2o.gjf"},
			Resources: map[string]string{"select": "1:ncpus=4:mem=8gb", "walltime": "01:00:00", "queue": "workq", "project": "chem"},
		}},
		{"torque-batch.sh", "torque", "/home/bob/hpcbot/1732640000_43_benzene", plugins.SubmitRequest{
			CalcID: 43, JobName: "hpcbot-43", Comment: "hpcbot user=8 org=ipc", Launch: plugins.LaunchBatch,
			Argv:      []string{"orca", "benzene.inp"},
			Resources: map[string]string{"nodes": "1:ppn=4", "walltime": "02:00:00", "mem": "4gb", "account": "chem01"},
		}},
		{"pro-relative-dir.sh", "pro", "hpcbot/1732640000_44_it's", plugins.SubmitRequest{
			CalcID: 1234567890, JobName: "hpcbot-1234567890", Launch: plugins.LaunchBatch,
			Argv: []string{"/opt/bin/run me", "it's.inp", "$(id)", "a\nb"},
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, err := mustNew(t, tc.flavor).BatchScript(tc.req, tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "golden", tc.file)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("script differs from %s (run with -update after checking):\n%s", path, got)
			}
		})
	}
}

// directives returns the #PBS lines qsub reads: those before the first line that
// is neither blank nor a comment (qsub stops scanning there, in both flavors).
func directives(script string) []string {
	var out []string
	for i, line := range strings.Split(script, "\n") {
		trim := strings.TrimSpace(line)
		if i == 0 && strings.HasPrefix(trim, "#!") {
			continue
		}
		if trim == "" {
			continue
		}
		if !strings.HasPrefix(trim, "#") {
			break
		}
		if strings.HasPrefix(trim, "#PBS") {
			out = append(out, trim)
		}
	}
	return out
}

func TestBatchScriptErrors(t *testing.T) {
	d := mustNew(t, "pro")
	for _, tc := range []struct {
		name string
		req  plugins.SubmitRequest
		want string
	}{
		{"empty argv", plugins.SubmitRequest{}, "empty argv"},
		{"nul", plugins.SubmitRequest{Argv: []string{"x", "a\x00b"}}, "NUL"},
		{"bad resource", plugins.SubmitRequest{Argv: []string{"x"}, Resources: map[string]string{"walltime": "1 hour"}}, "walltime"},
	} {
		_, err := d.BatchScript(tc.req, "/d")
		if err == nil || !strings.Contains(err.Error(), tc.want) || plugins.KindOf(err) != plugins.KindPermanent {
			t.Errorf("%s: %v, want permanent error with %q", tc.name, err, tc.want)
		}
	}
}

func TestResourceDirectives(t *testing.T) {
	pro, torque := mustNew(t, "pro"), mustNew(t, "torque")
	for _, tc := range []struct {
		name    string
		d       *Dialect
		in      map[string]string
		want    []string
		wantErr string
	}{
		{"none", pro, nil, nil, ""},
		{"pro order", pro, map[string]string{"walltime": "1:00:00", "select": "2:ncpus=8:mpiprocs=8+1:ncpus=1", "queue": "q1", "account": "a.b-c", "project": "p_1", "place": "scatter:excl", "ngpus": "1", "jobfs": "100GB"},
			[]string{"#PBS -A a.b-c", "#PBS -P p_1", "#PBS -q q1", "#PBS -l jobfs=100GB", "#PBS -l ngpus=1", "#PBS -l place=scatter:excl", "#PBS -l select=2:ncpus=8:mpiprocs=8+1:ncpus=1", "#PBS -l walltime=1:00:00"}, ""},
		{"torque nodes", torque, map[string]string{"nodes": "node01:ppn=4+node02:ppn=4", "walltime": "3600", "pmem": "2gb"},
			[]string{"#PBS -l nodes=node01:ppn=4+node02:ppn=4", "#PBS -l pmem=2gb", "#PBS -l walltime=3600"}, ""},
		{"storage with slash", pro, map[string]string{"storage": "gdata/wz54+scratch/wz54"}, []string{"#PBS -l storage=gdata/wz54+scratch/wz54"}, ""},
		{"torque select", torque, map[string]string{"select": "1:ncpus=4"}, nil, "nodes"},
		{"torque place", torque, map[string]string{"place": "excl"}, nil, "Torque"},
		{"torque project", torque, map[string]string{"project": "x"}, nil, "Torque has no projects"},
		{"comma", pro, map[string]string{"select": "1:ncpus=4,walltime=99:00:00"}, nil, "comma"},
		{"blank", pro, map[string]string{"mem": "4 gb"}, nil, "no blanks"},
		{"newline", pro, map[string]string{"mem": "4gb\n#PBS -W x"}, nil, "no blanks"},
		{"dollar", pro, map[string]string{"mem": "$(id)"}, nil, "no blanks"},
		{"empty value", pro, map[string]string{"mem": ""}, nil, "no blanks"},
		{"bad key", pro, map[string]string{"-W depend": "x"}, nil, "resource key"},
		{"key with equals", pro, map[string]string{"a=b": "x"}, nil, "resource key"},
		{"bad walltime", pro, map[string]string{"walltime": "1h"}, nil, "walltime"},
		{"bad queue", pro, map[string]string{"queue": "q1 -W x"}, nil, "queue"},
		{"queue with colon", pro, map[string]string{"queue": "q:1"}, nil, "queue"},
	} {
		got, err := tc.d.ResourceDirectives(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || plugins.KindOf(err) != plugins.KindPermanent {
				t.Errorf("%s: %v, %v; want permanent error with %q", tc.name, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %q, %v\nwant %q", tc.name, got, err, tc.want)
		}
	}
}

func TestJobName(t *testing.T) {
	for _, tc := range []struct {
		in   string
		calc uint64
		want string
	}{
		{"hpcbot-42", 42, "hpcbot-42"},
		{"hpcbot-12345678", 12345678, "hpcbot-12345678"},
		{"hpcbot-123456789", 123456789, "hcbot-123456789"},
		{"hpcbot-18446744073709551615", 1, "h44073709551615"},
		{"", 7, "hpcbot-7"},
		{"42", 42, "j42"},
		{"h2o opt; rm", 3, "h2ooptrm"},
		{"$(x)", 5, "x"},
		{"$(1)", 5, "j1"},
		{"ключ", 9, "hpcbot-9"},
		{"_x", 1, "j_x"},
	} {
		got := JobName(tc.in, tc.calc)
		if got != tc.want || len(got) > MaxJobNameLen || !isLetter(got[0]) {
			t.Errorf("JobName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCommentValue(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"hpcbot user=7 org=ipc", "hpcbot_user_7_org_ipc"},
		{"", ""},
		{"   ", ""},
		{"005", "hpcbot_005"},
		{"a,b=c\n#PBS", "a_b_c__PBS"},
		{"user@org/x+y:z.-", "user@org/x+y:z.-"},
		{strings.Repeat("x", 300), strings.Repeat("x", 200)},
		{"1" + strings.Repeat("x", 300), ("hpcbot_1" + strings.Repeat("x", 300))[:200]},
	} {
		if got := CommentValue(tc.in); got != tc.want {
			t.Errorf("CommentValue(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// hostileArgs are words a runner with allowed_args ".*" would let through.
var hostileArgs = []string{
	"; touch pwned", "$(touch pwned)", "`touch pwned`", "a\nb", "line1\n#PBS -l walltime=999:00:00",
	"'", `"`, `\`, "it's", "*", "~", "$HOME", "a b", "", "--", "-x", "|| touch pwned", "&& touch pwned",
	"> pwned", "\ttab", "ünï", "${IFS}", "!", "#", "%1", "a=b",
}

// TestBatchScriptRunsArgvExactly runs the generated script with sh: the program
// receives exactly the argv words, nothing else runs, the exit status is
// recorded in the exit-code file and returned.
func TestBatchScriptRunsArgvExactly(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh on this host")
	}
	for _, flavor := range []string{"pro", "torque"} {
		for _, relative := range []bool{false, true} {
			dir := t.TempDir()
			runScript(t, sh, mustNew(t, flavor), dir, relative, hostileArgs, 7)
		}
	}
}

func runScript(t *testing.T, sh string, d *Dialect, dir string, relative bool, args []string, rc int) {
	t.Helper()
	prog := filepath.Join(dir, "printargs")
	body := "#!/bin/sh\nfor a do printf '%s\\0' \"$a\"; done > args.out\nexit " + itoaSmall(rc) + "\n"
	if err := os.WriteFile(prog, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	remote := dir
	if relative {
		remote = "relative/folder"
	}
	req := plugins.SubmitRequest{CalcID: 1, JobName: "hpcbot-1", Comment: "c", Argv: append([]string{prog}, args...),
		Resources: map[string]string{"walltime": "00:10:00"}}
	script, err := d.BatchScript(req, remote)
	if err != nil {
		t.Fatal(err)
	}
	wantDirectives := 7
	if got := directives(string(script)); len(got) != wantDirectives {
		t.Fatalf("directives changed by the arguments: %q", got)
	}
	path := filepath.Join(dir, cluster.BatchScriptName)
	if err := os.WriteFile(path, script, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sh, path)
	cmd.Dir = t.TempDir() // not the folder: the script must cd itself
	cmd.Env = append(os.Environ(), "PBS_O_WORKDIR="+dir)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code != rc {
		t.Fatalf("script exited %d, want %d; output %q", code, rc, out)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "args.out"))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(string(raw), "\x00")
	got = got[:len(got)-1]
	if !reflect.DeepEqual(got, args) {
		t.Fatalf("program got %q\nwant %q", got, args)
	}
	ec, err := os.ReadFile(filepath.Join(dir, cluster.ExitCodeFile))
	if err != nil {
		t.Fatal(err)
	}
	if code, ended, ok := cluster.ParseExitCodeLine(strings.TrimSpace(string(ec))); !ok || code != rc || ended.IsZero() {
		t.Fatalf("exit-code file = %q: %d %v %v", ec, code, ended, ok)
	}
	for _, f := range []string{"pwned", cluster.ExitCodeFile + ".tmp"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Fatalf("%s exists", f)
		}
		if _, err := os.Stat(filepath.Join(cmd.Dir, f)); err == nil {
			t.Fatalf("%s exists in the working directory", f)
		}
	}
}

func itoaSmall(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return string(rune('0'+i/10)) + string(rune('0'+i%10))
}

// TestSubmitCommandWithFakeQsub runs SubmitCommand with sh and a stand-in qsub
// that prints the recorded Torque answer, plus a warning on stderr, and reads
// the id back with ParseSubmit even though the cluster's regex is a wrapper's.
func TestSubmitCommandWithFakeQsub(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh on this host")
	}
	bin, dir := t.TempDir(), filepath.Join(t.TempDir(), "calc folder")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	answer := readTestdata(t, "torque/qsub-uic.stdout")
	fake := "#!/bin/sh\n[ -f \"$1\" ] || { echo \"qsub: script file $1 not found\" >&2; exit 1; }\n" +
		"echo 'qsub: warning: a site message' >&2\nprintf '%s' '" + string(answer) + "'\n"
	if err := os.WriteFile(filepath.Join(bin, "qsub"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, cluster.BatchScriptName), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := mustNew(t, "torque")
	cmd := exec.Command(sh, "-c", d.SubmitCommand(plugins.SubmitRequest{Launch: plugins.LaunchBatch}, dir, cluster.BatchScriptName)+" 2>&1")
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	id, err := d.ParseSubmit(out, `Submitted job (\d+)`)
	if err != nil || id != "1037417.admin.extreme.acer.uic.edu" {
		t.Fatalf("ParseSubmit(%q) = %q, %v", out, id, err)
	}
}
