package slurm

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func refs(ids ...string) []plugins.JobRef {
	var r []plugins.JobRef
	for _, id := range ids {
		r = append(r, plugins.JobRef{JobID: id, Folder: "f" + id})
	}
	return r
}

func ip(i int) *int { return &i }

// want is the part of a JobStatus a table checks.
type want struct {
	state plugins.State
	raw   string
	exit  *int
}

func checkStatuses(t *testing.T, got map[string]plugins.JobStatus, wants map[string]want) {
	t.Helper()
	if len(got) != len(wants) {
		t.Errorf("got %d statuses %v, want %d", len(got), got, len(wants))
	}
	for id, w := range wants {
		st, ok := got[id]
		if !ok {
			t.Errorf("job %s missing", id)
			continue
		}
		if st.JobID != id || st.State != w.state || st.Raw != w.raw || !sameExit(st.ExitCode, w.exit) {
			t.Errorf("job %s: %+v (exit %v), want %+v (exit %v)", id, st, deref(st.ExitCode), w, deref(w.exit))
		}
	}
}

func sameExit(a, b *int) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestParseVersion(t *testing.T) {
	c := readCapture(t, "version")
	if c.Cmd != NewDialect().VersionCommand() {
		t.Errorf("capture ran %q, the dialect builds %q", c.Cmd, NewDialect().VersionCommand())
	}
	v, err := NewDialect().ParseVersion(c.R)
	if err != nil || v != "slurm 22.05.8" {
		t.Errorf("ParseVersion = %q, %v", v, err)
	}
	for _, bad := range []cluster.RunResult{
		{Stdout: []byte("slurm 23.02.1\n"), ExitCode: 1},
		{Stderr: []byte("sh: sinfo: not found"), ExitCode: 127},
		{Stdout: []byte("torque 6\n")},
	} {
		if v, err := NewDialect().ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q) = %q, want an error", bad.Stdout, v)
		}
	}
	if v, _ := NewDialect().ParseVersion(cluster.RunResult{Stdout: []byte("slurm 24.05.0-0rc1\n")}); v != "slurm 24.05.0-0rc1" {
		t.Errorf("upstream format: %q", v)
	}
}

func TestParsePoll(t *testing.T) {
	d := NewDialect()
	tests := []struct {
		file    string
		jobs    []plugins.JobRef
		want    map[string]want
		wantErr bool
	}{
		{file: "squeue_mixed", jobs: refs("1413", "1414", "1409", "1410", "1411", "999999"), want: map[string]want{
			"1410": {plugins.StateCancelled, "CANCELLED", nil},
			"1413": {plugins.StateSucceeded, "COMPLETED", ip(0)},
			"1414": {plugins.StateFailed, "FAILED", nil}, // the exit code comes from sacct/scontrol/file
			"1411": {plugins.StatePending, "PENDING", nil},
			"1409": {plugins.StateRunning, "RUNNING", nil},
		}},
		{file: "squeue_timeout", jobs: refs("1412"), want: map[string]want{"1412": {plugins.StateTimedOut, "TIMEOUT", nil}}},
		{file: "squeue_single_unknown", jobs: refs("999999"), want: map[string]want{}},
		{file: "squeue_single_unknown_once", jobs: refs("999999"), want: map[string]want{}},
		{file: "squeue_forgotten", jobs: refs("1413", "1414", "1410"), want: map[string]want{}},
		{file: "squeue_no_controller", jobs: refs("57"), wantErr: true},
		{file: "odd_squeue", jobs: refs("54", "57", "58", "55", "53", "60", "61", "62"), want: map[string]want{
			"54": {plugins.StateCancelled, "CANCELLED", nil},
			"57": {plugins.StateSucceeded, "COMPLETED", ip(0)},
			"55": {plugins.StatePending, "PENDING", nil},
			"53": {plugins.StateRunning, "COMPLETING", nil},
			"60": {plugins.StateRunning, "SUSPENDED", nil},
			"61": {plugins.StateRunning, "FROBNICATED", nil}, // unknown: keep polling
			"62": {plugins.StateRunning, "RUNNING", nil},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			c := readCapture(t, tc.file)
			got, err := d.ParsePoll(c.R, tc.jobs)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("no error; got %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkStatuses(t, got, tc.want)
		})
	}
	// Times and reasons of the real capture.
	got, _ := d.ParsePoll(readCapture(t, "squeue_mixed").R, refs("1414", "1411"))
	if got["1414"].Reason != "NonZeroExitCode" || got["1411"].Reason != "BeginTime" {
		t.Errorf("reasons: %q %q", got["1414"].Reason, got["1411"].Reason)
	}
	wantStart := time.Date(2026, 12, 3, 7, 58, 59, 0, time.Local)
	if !got["1414"].Started.Equal(wantStart) || got["1414"].Ended.IsZero() || !got["1411"].Ended.IsZero() {
		t.Errorf("times: %+v %+v", got["1414"], got["1411"])
	}
	// The node list: where the job ran; nothing while it is pending.
	got, _ = d.ParsePoll(readCapture(t, "squeue_mixed").R, refs("1409", "1411", "1413"))
	if got["1409"].Node != "vm" || got["1413"].Node != "vm" || got["1411"].Node != "" {
		t.Errorf("nodes: running %q, completed %q, pending %q; want vm, vm, none", got["1409"].Node, got["1413"].Node, got["1411"].Node)
	}
	// A line without the node list (squeueFormat before it had one) still parses.
	old := cluster.RunResult{Stdout: []byte("75^^^RUNNING^^^None^^^2026-11-26T18:11:28^^^NONE\n")}
	if got, _ := d.ParsePoll(old, refs("75")); got["75"].State != plugins.StateRunning || got["75"].Node != "" {
		t.Errorf("five-field line: %+v", got["75"])
	}
}

func TestParseFinished(t *testing.T) {
	d := NewDialect()
	tests := []struct {
		file    string
		jobs    []plugins.JobRef
		want    map[string]want
		wantErr bool
	}{
		{file: "finished_sacct", jobs: refs("1413", "1414", "1409", "1410", "1411", "999999"), want: map[string]want{
			"1409": {plugins.StateRunning, "RUNNING", nil},
			"1410": {plugins.StateCancelled, "CANCELLED by 1001", ip(0)},
			"1411": {plugins.StatePending, "PENDING", nil},
			"1413": {plugins.StateSucceeded, "COMPLETED", ip(0)},
			"1414": {plugins.StateFailed, "FAILED", ip(3)},
		}},
		{file: "finished_sacct_timeout", jobs: refs("1412"), want: map[string]want{"1412": {plugins.StateTimedOut, "TIMEOUT", ip(0)}}},
		// No slurmdbd: scontrol answers while Slurm remembers the jobs...
		{file: "finished_noacct", jobs: refs("1413", "1414", "1409", "1410", "1411", "999999"), want: map[string]want{
			"1409": {plugins.StateRunning, "RUNNING", nil},
			"1410": {plugins.StateCancelled, "CANCELLED", ip(128 + 15)},
			"1411": {plugins.StatePending, "PENDING", nil},
			"1413": {plugins.StateSucceeded, "COMPLETED", ip(0)},
			"1414": {plugins.StateFailed, "FAILED", ip(3)},
		}},
		// More than scontrolEach jobs: one scontrol for all jobs, filtered.
		{file: "finished_noacct_many", jobs: append(refs("1413", "1414", "1409", "1410", "1411", "999999"), refs("900000", "900001")...), want: map[string]want{
			"1409": {plugins.StateRunning, "RUNNING", nil},
			"1410": {plugins.StateCancelled, "CANCELLED", ip(128 + 15)},
			"1411": {plugins.StatePending, "PENDING", nil},
			"1413": {plugins.StateSucceeded, "COMPLETED", ip(0)},
			"1414": {plugins.StateFailed, "FAILED", ip(3)},
		}},
		// ...and nobody does after MinJobAge: absent, never "succeeded".
		{file: "finished_noacct_forgotten", jobs: refs("1413", "1414", "1410"), want: map[string]want{}},
		{file: "odd_sacct", jobs: refs("70", "71", "72", "73", "74_3", "75", "76", "77", "78", "79"), want: map[string]want{
			"70":   {plugins.StateFailed, "OUT_OF_MEMORY", ip(128 + 125)},
			"71":   {plugins.StateFailed, "NODE_FAIL", ip(1)},
			"72":   {plugins.StateTimedOut, "TIMEOUT", ip(128 + 15)},
			"73":   {plugins.StateCancelled, "CANCELLED by 0", ip(128 + 9)},
			"74_3": {plugins.StateSucceeded, "COMPLETED", ip(0)},
			"75":   {plugins.StateTimedOut, "DEADLINE", ip(0)},
			"76":   {plugins.StateFailed, "BOOT_FAIL", ip(0)},
			"77":   {plugins.StateFailed, "PREEMPTED", ip(0)},
			"79":   {plugins.StateFailed, "FAILED", ip(7)},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			c := readCapture(t, tc.file)
			got, err := d.ParseFinished(c.R, tc.jobs)
			if tc.wantErr != (err != nil) {
				t.Fatalf("err = %v", err)
			}
			checkStatuses(t, got, tc.want)
		})
	}
	// sacct's accounting of ended jobs: ElapsedRaw and AllocCPUS, read once they end.
	acct, err := d.ParseFinished(readCapture(t, "finished_sacct").R, refs("1413", "1414", "1409"))
	if err != nil {
		t.Fatal(err)
	}
	if j := acct["1413"]; j.Elapsed != 8*time.Second || j.AllocCPUs != 1 {
		t.Errorf("accounting of 1413: %v × %d, want 8s × 1", j.Elapsed, j.AllocCPUs)
	}
	if acct["1413"].Node != "vm" || acct["1409"].Node != "vm" {
		t.Errorf("sacct NodeList: %q %q, want vm", acct["1413"].Node, acct["1409"].Node)
	}
	if pending, _ := d.ParseFinished(readCapture(t, "finished_sacct").R, refs("1411")); pending["1411"].Node != "" {
		t.Errorf("a pending job's node list (\"None assigned\"): %q, want none", pending["1411"].Node)
	}
	if noacct, _ := d.ParseFinished(readCapture(t, "finished_noacct").R, refs("1413", "1411")); noacct["1413"].Node != "vm" || noacct["1411"].Node != "" {
		t.Errorf("scontrol NodeList: %q, pending %q; want vm and none", noacct["1413"].Node, noacct["1411"].Node)
	}
	if j := acct["1409"]; j.Elapsed != 0 || j.AllocCPUs != 0 {
		t.Errorf("a running job has no accounting yet: %v × %d", j.Elapsed, j.AllocCPUs)
	}
	if got, _ := d.ParseFinished(readCapture(t, "finished_sacct_timeout").R, refs("1412")); got["1412"].Elapsed != 61*time.Second {
		t.Errorf("accounting of the timed-out job: %+v", got["1412"])
	}
	// Output cut before the end marker (the connection dropped) is an error, not "no jobs".
	c := readCapture(t, "finished_sacct")
	c.R.Stdout = c.R.Stdout[:strings.Index(string(c.R.Stdout), markScontrol)]
	if _, err := d.ParseFinished(c.R, refs("57")); err == nil {
		t.Error("truncated output accepted")
	}
}

func TestParseSubmit(t *testing.T) {
	d := NewDialect()
	merged := func(name string) []byte {
		c := readCapture(t, name)
		return append(append([]byte{}, c.R.Stdout...), c.R.Stderr...)
	}
	tests := []struct {
		name  string
		out   []byte
		regex string
		id    string
	}{
		{"batch", merged("sbatch_batch"), "", "1409"},
		{"wrapper", merged("sbatch_wrapper"), "", "1415"},
		{"wrapper custom regex", merged("sbatch_wrapper"), `(?m)job (\d+)$`, "1415"},
		{"warnings and cluster", merged("odd_sbatch"), "", "4711"},
		{"rejected", merged("sbatch_rejected"), "", ""},
		{"no controller", merged("sbatch_no_controller"), "", ""},
		{"regex without group", merged("sbatch_wrapper"), `job \d+`, ""},
		{"bad regex", merged("sbatch_wrapper"), `(`, ""},
		{"regex matching a non-id", []byte("Submitted batch job x1"), `job (\S+)`, ""},
		{"marker with cluster", []byte("hpcbot-slurm-job: 12;x y\n"), "", "12"},
		{"marker with junk", []byte("hpcbot-slurm-job: 12 x\n"), "", ""},
		{"marker with garbage id", []byte("hpcbot-slurm-job: abc\n"), "", ""},
	}
	for _, tc := range tests {
		id, err := d.ParseSubmit(tc.out, tc.regex)
		if tc.id == "" {
			if err == nil {
				t.Errorf("%s: got %q, want an error", tc.name, id)
			}
			continue
		}
		if err != nil || id != tc.id {
			t.Errorf("%s: %q, %v; want %q", tc.name, id, err, tc.id)
		}
	}
}

func TestNothingSubmitted(t *testing.T) {
	d := NewDialect()
	for _, tc := range []struct {
		file string
		want bool
	}{{"sbatch_no_controller", true}, {"sbatch_rejected", false}, {"sbatch_batch", false}} {
		c := readCapture(t, tc.file)
		out := append(append([]byte{}, c.R.Stdout...), c.R.Stderr...)
		if got := d.NothingSubmitted(out, c.R.ExitCode); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.file, got, tc.want)
		}
	}
}

func TestCancelDone(t *testing.T) {
	d := NewDialect()
	for _, f := range []string{"scancel_running", "scancel_finished", "scancel_unknown"} {
		if !d.CancelDone(readCapture(t, f).R) {
			t.Errorf("%s: not done", f)
		}
	}
	for _, r := range []cluster.RunResult{
		{ExitCode: 1, Stderr: []byte("scancel: error: Kill job error on job id 5: Invalid job id specified")},
		{ExitCode: 1, Stderr: []byte("scancel: error: Kill job error on job id 5: Job/step already completing or completed")},
	} {
		if !d.CancelDone(r) {
			t.Errorf("%q: not done", r.Stderr)
		}
	}
	if d.CancelDone(cluster.RunResult{ExitCode: 1, Stderr: []byte("scancel: error: Unable to contact slurm controller (connect failure)")}) {
		t.Error("an unreachable controller counts as cancelled")
	}
	if cmd := d.CancelCommand(plugins.JobRef{JobID: "1; rm -rf ~"}, ""); strings.Contains(cmd, "scancel") {
		t.Errorf("cancel of a bad id runs %q", cmd)
	}
}

func TestParseFind(t *testing.T) {
	ids, err := NewDialect().ParseFind(readCapture(t, "find_batch").R)
	if err != nil || len(ids) != 1 || ids[0] != "1409" {
		t.Errorf("ParseFind = %v, %v; want [1409] (184 ran in another folder)", ids, err)
	}
	ids, err = NewDialect().ParseFind(cluster.RunResult{Stdout: []byte("@@hpcbot-dir /a\n12^^^/a\n9|/a/\n12|/a\n3|/b\n")})
	if err != nil || strings.Join(ids, ",") != "9,12" {
		t.Errorf("ParseFind = %v, %v; want [9 12]", ids, err)
	}
	if _, err := NewDialect().ParseFind(cluster.RunResult{Stdout: []byte("12^^^/a\n")}); err == nil {
		t.Error("no folder line accepted")
	}
	if cmd := NewDialect().FindCommand(plugins.SubmitRequest{Launch: plugins.LaunchWrapper}, "/x"); cmd != "" {
		t.Errorf("wrapper launch: %q, want no lookup", cmd)
	}
}

func TestCommandsMatchCaptures(t *testing.T) {
	// The captures were made with these very commands; a change to a builder must
	// come with new captures (go test -run TestCapture -args -capture).
	d := NewDialect()
	c := readCapture(t, "squeue_single_unknown")
	if want := d.PollCommand(refs("999999"), nil); c.Cmd != want {
		t.Errorf("poll command changed:\n%s\ncaptured:\n%s", want, c.Cmd)
	}
	c = readCapture(t, "finished_sacct_timeout")
	if want := d.FinishedCommand(refs("1412")); c.Cmd != want {
		t.Errorf("finished command changed:\n%s\ncaptured:\n%s", want, c.Cmd)
	}
}

func TestPollCommand(t *testing.T) {
	d := NewDialect()
	for _, tc := range []struct {
		ids  []string
		want string
	}{
		{[]string{"5"}, "--jobs=5,5 "},
		{[]string{"5", "6_2", "7"}, "--jobs=5,6_2,7 "},
		{[]string{"5", "x;rm", "7"}, "--jobs=5,7 "},
	} {
		cmd := d.PollCommand(refs(tc.ids...), nil)
		if !strings.Contains(cmd, tc.want) || !strings.HasPrefix(cmd, "SLURM_TIME_FORMAT=standard squeue ") {
			t.Errorf("%v: %q, want %q", tc.ids, cmd, tc.want)
		}
	}
	if cmd := d.PollCommand(refs("bad id"), nil); cmd != "" {
		t.Errorf("no valid id: %q, want no command", cmd)
	}
	if cmd := d.FinishedCommand(refs("a b")); cmd != "" {
		t.Errorf("no valid id: %q, want no command", cmd)
	}
}

func TestMapStateEveryCode(t *testing.T) {
	for _, s := range states {
		for _, code := range []string{s.long, s.short} {
			if code == "" {
				continue
			}
			got, ok := MapState(code)
			if !ok || got != s.to {
				t.Errorf("%s: %v %v, want %v", code, got, ok, s.to)
			}
		}
	}
	// squeue(1)'s list, each code once, and what it must become.
	table := map[string]plugins.State{
		"BF": plugins.StateFailed, "CA": plugins.StateCancelled, "CD": plugins.StateSucceeded,
		"CF": plugins.StatePending, "CG": plugins.StateRunning, "DL": plugins.StateTimedOut,
		"F": plugins.StateFailed, "NF": plugins.StateFailed, "OOM": plugins.StateFailed,
		"PD": plugins.StatePending, "PR": plugins.StateFailed, "R": plugins.StateRunning,
		"RD": plugins.StatePending, "RF": plugins.StatePending, "RH": plugins.StatePending,
		"RQ": plugins.StatePending, "RS": plugins.StateRunning, "RV": plugins.StateCancelled,
		"SI": plugins.StateRunning, "SE": plugins.StatePending, "SO": plugins.StateRunning,
		"ST": plugins.StateRunning, "S": plugins.StateRunning, "TO": plugins.StateTimedOut,
		"CANCELLED by 1001": plugins.StateCancelled, "CANCELLED+": plugins.StateCancelled,
		"completed": plugins.StateSucceeded,
	}
	for code, wantState := range table {
		if got, ok := MapState(code); !ok || got != wantState {
			t.Errorf("%s: %v %v, want %v", code, got, ok, wantState)
		}
	}
	if got, ok := MapState("?"); ok || got.Final() {
		t.Errorf("unknown code: %v %v, want a non-final state and ok=false", got, ok)
	}
	if s, _ := MapState("CG"); s.Final() {
		t.Error("COMPLETING must not be final")
	}
}

func TestBatchScriptGolden(t *testing.T) {
	d := NewDialect()
	tests := []struct {
		name string
		req  plugins.SubmitRequest
	}{
		{"basic", plugins.SubmitRequest{CalcID: 42, Folder: "1732640000_7_h2o", Argv: []string{"orca", "h2o.inp"},
			Launch: plugins.LaunchBatch, JobName: "hpcbot-42", Comment: "hpcbot user=7 org=ipc"}},
		{"resources", plugins.SubmitRequest{CalcID: 43, Argv: []string{"g16", "my file.gjf", "$(rm -rf ~)"},
			Launch: plugins.LaunchBatch, JobName: "hpcbot-43", Comment: `hpcbot user=8 org="ИПХФ РАН" #2 \ 'q'`,
			Resources: map[string]string{"ntasks": "4", "mem-per-cpu": "2G", "time": "1-00:00:00", "exclusive": "", "constraint": "a&b|c"}}},
		{"no comment default name", plugins.SubmitRequest{CalcID: 44, Argv: []string{"xtb", "a.xyz", "--opt"}, Launch: plugins.LaunchBatch}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := d.BatchScript(tc.req, "/home/u/calcs/"+strings.ReplaceAll(tc.name, " ", "_"))
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", strings.ReplaceAll(tc.name, " ", "_")+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("script differs from %s:\n%s", golden, got)
			}
		})
	}
}

func TestBatchScriptRefuses(t *testing.T) {
	d := NewDialect()
	base := plugins.SubmitRequest{CalcID: 1, Argv: []string{"x"}, Launch: plugins.LaunchBatch}
	for name, mod := range map[string]func(*plugins.SubmitRequest){
		"newline in comment":      func(r *plugins.SubmitRequest) { r.Comment = "a\n#SBATCH --uid=0" },
		"CR in comment":           func(r *plugins.SubmitRequest) { r.Comment = "a\rb" },
		"tab in comment":          func(r *plugins.SubmitRequest) { r.Comment = "a\tb" },
		"hetjob in comment":       func(r *plugins.SubmitRequest) { r.Comment = "x HetJob y" },
		"packjob in value":        func(r *plugins.SubmitRequest) { r.Resources = map[string]string{"constraint": "packjob"} },
		"newline in value":        func(r *plugins.SubmitRequest) { r.Resources = map[string]string{"ntasks": "4\n#SBATCH --uid=0"} },
		"upper-case key":          func(r *plugins.SubmitRequest) { r.Resources = map[string]string{"NTASKS": "4"} },
		"key with =":              func(r *plugins.SubmitRequest) { r.Resources = map[string]string{"ntasks=4 --uid": "0"} },
		"key with space":          func(r *plugins.SubmitRequest) { r.Resources = map[string]string{"nt asks": "4"} },
		"short option":            func(r *plugins.SubmitRequest) { r.Resources = map[string]string{"-n": "4"} },
		"reserved key":            func(r *plugins.SubmitRequest) { r.Resources = map[string]string{"output": "/etc/x"} },
		"job name with space":     func(r *plugins.SubmitRequest) { r.JobName = "a b" },
		"job name with quote":     func(r *plugins.SubmitRequest) { r.JobName = `a"b` },
		"job name with #":         func(r *plugins.SubmitRequest) { r.JobName = "a#b" },
		"empty argv":              func(r *plugins.SubmitRequest) { r.Argv = nil },
		"NUL in argv":             func(r *plugins.SubmitRequest) { r.Argv = []string{"a\x00b"} },
		"line separator (U+2028)": func(r *plugins.SubmitRequest) { r.Comment = "a\u2028b" },
	} {
		req := base
		mod(&req)
		if s, err := d.BatchScript(req, "/d"); err == nil {
			t.Errorf("%s: accepted:\n%s", name, s)
		}
	}
}

// sbatchSplit is sbatch's own reading of an #SBATCH line (src/sbatch/opt.c
// _get_argument), to check that what we write reads back as what we meant.
func sbatchSplit(line string) []string {
	var words []string
	i := 0
	for {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		if i >= len(line) {
			return words
		}
		var w []byte
		quoted, q, esc := false, byte(0), false
		for i < len(line) && (quoted || (line[i] != ' ' && line[i] != '\t')) && line[i] != '\n' {
			c := line[i]
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
				i++
				continue
			case quoted:
				if c == q {
					quoted = false
					i++
					continue
				}
			case c == '"' || c == '\'':
				quoted, q = true, c
				i++
				continue
			case c == '#':
				return append(words, string(w))
			}
			w = append(w, c)
			i++
		}
		words = append(words, string(w))
	}
}

func FuzzSbatchWord(f *testing.F) {
	for _, s := range []string{"hpcbot user=7 org=ipc", `a "b" c#d \ e 'f' ü`, "", "#", `\`, `"`, "'", "a\tb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		w, err := sbatchWord(v)
		if err != nil {
			return
		}
		if strings.ContainsAny(w, "\n\r") {
			t.Fatalf("%q quoted to %q with a line break", v, w)
		}
		words := sbatchSplit("--comment=" + w)
		if len(words) != 1 || words[0] != "--comment="+v {
			t.Fatalf("%q quoted to %q reads back as %q", v, w, words)
		}
	})
}

func FuzzParsers(f *testing.F) {
	for _, name := range []string{"squeue_mixed", "finished_sacct", "finished_noacct", "odd_sacct", "odd_squeue", "find_batch"} {
		f.Add(readCapture(f, name).R.Stdout)
	}
	d := NewDialect()
	f.Fuzz(func(t *testing.T, out []byte) {
		jobs := refs("53", "54", "57", "58", "70", "71")
		r := cluster.RunResult{Stdout: out}
		for _, m := range []func() (map[string]plugins.JobStatus, error){
			func() (map[string]plugins.JobStatus, error) { return d.ParsePoll(r, jobs) },
			func() (map[string]plugins.JobStatus, error) { return d.ParseFinished(r, jobs) },
		} {
			got, err := m()
			if err != nil {
				continue
			}
			for id, st := range got {
				if st.JobID != id || st.State == "" {
					t.Fatalf("bad status %q: %+v", id, st)
				}
				if st.State == plugins.StateSucceeded && (st.ExitCode == nil || *st.ExitCode != 0) {
					t.Fatalf("succeeded without exit code 0: %+v", st)
				}
			}
		}
		d.ParseFind(r)
		d.ParseSubmit(out, "")
	})
}

// TestRealSbatchReadsOurComment: the captured job was submitted with the comment
// below, quoted by sbatchWord; scontrol shows what the real sbatch 22.05.8 read.
func TestRealSbatchReadsOurComment(t *testing.T) {
	const comment = `hpcbot user=7 org="ИПХФ" #1` // as in capture_test.go
	line := string(readCapture(t, "scontrol_running").R.Stdout)
	i := strings.Index(line, " Comment=")
	j := strings.Index(line, "  StdErr=") // in -o mode scontrol ends the comment with two spaces
	if i < 0 || j < i {
		t.Fatalf("no comment in %q", line)
	}
	if got := line[i+len(" Comment=") : j]; got != comment {
		t.Errorf("sbatch read the comment as %q, want %q", got, comment)
	}
}
