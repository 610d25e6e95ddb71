package pbs

import (
	"os/exec"
	"strings"
	"testing"

	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
)

func addFixtureSeeds(f *testing.F, names ...string) {
	for _, n := range names {
		f.Add(readTestdata(f, n))
	}
}

// FuzzParseText: the Torque/PBS text parser and ParsePoll never panic, and every
// status they return is well formed.
func FuzzParseText(f *testing.F) {
	addFixtureSeeds(f, "torque/qstat-f-aiida-ichec-2015.txt", "pbspro/qstat-f-aiida-epfl-2013.txt",
		"pbspro/qstat-f-aiida-multiline-func.txt", "pbspro/qstat-xf-katana-finished.txt")
	f.Add([]byte("Job Id: 1\n    job_state = C\n    exit_status = -10\n    resources_used.walltime = 1:00\n    Resource_List.walltime = 60\n"))
	f.Add([]byte("Job Id:\n\t\n    = \n    x = \n"))
	d := mustNew(f, "torque")
	f.Fuzz(func(t *testing.T, data []byte) {
		recs := parseText(data)
		ids := make([]string, 0, len(recs)+1)
		for _, r := range recs {
			ids = append(ids, r.ID)
		}
		ids = append(ids, "1.srv")
		got, err := d.ParsePoll(cluster.RunResult{Stdout: data, ExitCode: 1}, refs(ids...))
		checkStatuses(t, got, err)
	})
}

// FuzzParseJSON: the JSON reader (strict and line scanner) and ParsePoll never
// panic, and every status they return is well formed.
func FuzzParseJSON(f *testing.F) {
	addFixtureSeeds(f, "pbspro/qstat-xf-json-19.0.0-running.json", "pbspro/qstat-f-json-2022.1.1-queued-held.json",
		"pbspro/synthetic-qstat-xf-json-finished.json", "pbspro/synthetic-qstat-xf-json-issue1255.json")
	f.Add([]byte(`{"Jobs":{"1.s":{"job_state":5,"Exit_status":"x","substate":{"a":1}}}}`))
	f.Add([]byte("        \"1.s\":{\n            \"job_state\":\"F\",\n            \"Exit_status\":-29\n"))
	d := mustNew(f, "pro")
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, _ := parseJSON(data)
		ids := make([]string, 0, len(recs)+1)
		for _, r := range recs {
			ids = append(ids, r.ID)
		}
		ids = append(ids, "1.s")
		got, err := d.ParsePoll(cluster.RunResult{Stdout: data}, refs(ids...))
		checkStatuses(t, got, err)
	})
}

func checkStatuses(t *testing.T, got map[string]plugins.JobStatus, err error) {
	t.Helper()
	if err != nil {
		if got != nil {
			t.Fatalf("error %v with a result", err)
		}
		return
	}
	for id, st := range got {
		switch st.State {
		case plugins.StatePending, plugins.StateRunning, plugins.StateSucceeded, plugins.StateFailed,
			plugins.StateCancelled, plugins.StateTimedOut, plugins.StateLost:
		default:
			t.Fatalf("%s: state %q", id, st.State)
		}
		if st.JobID != id {
			t.Fatalf("%s: JobID %q", id, st.JobID)
		}
		if st.State == plugins.StateSucceeded && (st.ExitCode == nil || *st.ExitCode != 0) {
			t.Fatalf("%s: succeeded with exit %v", id, st.ExitCode)
		}
	}
}

// FuzzParseSubmit: whatever qsub or a wrapper prints, the id found is a plain
// job id or there is an error.
func FuzzParseSubmit(f *testing.F) {
	f.Add(readTestdata(f, "torque/qsub-uic.stdout"), "")
	f.Add([]byte("Your job 12 ('x') has been submitted\n"), `job (\d+)`)
	f.Add([]byte("$(rm -rf ~)\n"), `(.*)`)
	d := mustNew(f, "pro")
	f.Fuzz(func(t *testing.T, out []byte, re string) {
		id, err := d.ParseSubmit(out, re)
		if err == nil && !validJobID.MatchString(id) {
			t.Fatalf("id %q", id)
		}
	})
}

// FuzzBatchScript: whatever the argument, job name and comment, the script has
// the same directives, and sh passes the argument to the program unchanged.
func FuzzBatchScript(f *testing.F) {
	for _, a := range hostileArgs {
		f.Add(a, "hpcbot-1", "hpcbot user=1 org=x")
	}
	f.Add("x", "\n#PBS -l walltime=1", "\n#PBS -q evil")
	sh, _ := exec.LookPath("sh")
	pro, torque := mustNew(f, "pro"), mustNew(f, "torque")
	f.Fuzz(func(t *testing.T, arg, name, comment string) {
		d := pro
		if len(arg)%2 == 1 {
			d = torque
		}
		req := plugins.SubmitRequest{CalcID: 3, JobName: name, Comment: comment, Argv: []string{"prog", arg}}
		script, err := d.BatchScript(req, "/work/calc")
		if strings.IndexByte(arg, 0) >= 0 {
			if err == nil {
				t.Fatal("NUL accepted")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		dirs := directives(string(script))
		want := 5
		if CommentValue(comment) != "" {
			want = 6
		}
		if len(dirs) != want {
			t.Fatalf("directives %q", dirs)
		}
		for _, l := range dirs {
			if strings.ContainsAny(l[len("#PBS "):], " \t") && !strings.HasPrefix(l, "#PBS -") {
				t.Fatalf("directive %q", l)
			}
			if strings.Count(l, " ") != 2 {
				t.Fatalf("directive %q has extra words", l)
			}
		}
		if sh == "" {
			return
		}
		dir := t.TempDir()
		runScript(t, sh, d, dir, false, []string{arg}, 3)
	})
}
