package pbs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
)

func mustNew(t testing.TB, flavor string) *Dialect {
	t.Helper()
	d, err := New(flavor)
	if err != nil {
		t.Fatalf("New(%q): %v", flavor, err)
	}
	d.Location = time.UTC
	return d
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"", FlavorPro, true},
		{"pro", FlavorPro, true},
		{" PRO ", FlavorPro, true},
		{"openpbs", FlavorPro, true},
		{"pbspro", FlavorPro, true},
		{"torque", FlavorTorque, true},
		{"Torque", FlavorTorque, true},
		{"slurm", "", false},
		{"sge", "", false},
	} {
		d, err := New(tc.in)
		if !tc.ok {
			if err == nil || plugins.KindOf(err) != plugins.KindPermanent {
				t.Errorf("New(%q) = %v, want a permanent error", tc.in, err)
			}
			continue
		}
		if err != nil || d.Flavor() != tc.want || d.Name() != "pbs" {
			t.Errorf("New(%q) = %v, %v; want flavor %q", tc.in, d, err, tc.want)
		}
	}
}

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		flavor, file string
		stderr       bool
		want         string
		wantErr      string
	}{
		{"pro", "pbspro/qstat-version-19.0.0.txt", false, "pbs 19.0.0", ""},
		{"pro", "pbspro/qstat-version-19.0.0.txt", true, "pbs 19.0.0", ""},
		{"torque", "torque/qstat-version-6.1.2.txt", false, "torque 6.1.2", ""},
		{"pro", "torque/qstat-version-6.1.2.txt", false, "", `set flavor = "torque"`},
		{"torque", "pbspro/qstat-version-19.0.0.txt", false, "", `set flavor = "pro"`},
		{"pro", "torque/qsub-uic.stdout", false, "", "no version"},
	} {
		out := readTestdata(t, tc.file)
		r := cluster.RunResult{Stdout: out}
		if tc.stderr {
			r = cluster.RunResult{Stderr: out}
		}
		got, err := mustNew(t, tc.flavor).ParseVersion(r)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s/%s: err = %v, want %q", tc.flavor, tc.file, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s/%s = %q, %v; want %q", tc.flavor, tc.file, got, err, tc.want)
		}
	}
	// Torque 2.x prints a lower-case "version:" (hand-written input).
	if got, err := mustNew(t, "torque").ParseVersion(cluster.RunResult{Stdout: []byte("version: 2.5.12\n")}); err != nil || got != "torque 2.5.12" {
		t.Errorf("lower-case version = %q, %v", got, err)
	}
	if mustNew(t, "pro").VersionCommand() != "qstat --version" {
		t.Error("VersionCommand changed")
	}
}

func TestParseSubmit(t *testing.T) {
	d := mustNew(t, "torque")
	for _, tc := range []struct {
		name, out, re, want, wantErr string
	}{
		{"recorded torque", string(readTestdata(t, "torque/qsub-uic.stdout")), "", "1037417.admin.extreme.acer.uic.edu", ""},
		{"bare number", "9668628\n", "", "9668628", ""},
		{"short server", "1234.pbs01\n", "", "1234.pbs01", ""},
		{"warning first", "qsub: Warning: walltime not given, default used\n1234.pbs01.cluster\n", "", "1234.pbs01.cluster", ""},
		{"crlf", "77.srv\r\n", "", "77.srv", ""},
		{"array", "88[].srv\n", "", "88[].srv", ""},
		{"no id", "qsub: Job exceeds queue resource limits MSG=cannot locate feasible nodes\n", "", "", "no job id"},
		{"number inside text", "Job 42 submitted\n", "", "", "no job id"},
		{"wrapper regex", "Your job 9876.master.cl has been queued\n", `job (\S+) has`, "9876.master.cl", ""},
		{"regex without group", "id=555.srv\n", `[0-9]+\.srv`, "555.srv", ""},
		{"bad regex", "1.srv", `(`, "", "job_id_regex"},
		{"hostile id", "submitted: $(reboot)\n", `submitted: (.*)`, "", "not a job id"},
		// Batch launch: the marker wins over a job_id_regex written for a wrapper.
		{"batch marker", "hpcbot-pbs-job: " + string(readTestdata(t, "torque/qsub-uic.stdout")), `Submitted job (\d+)`, "1037417.admin.extreme.acer.uic.edu", ""},
		{"batch marker after stderr", "qsub: Warning: 12 jobs queued\nhpcbot-pbs-job: 5.srv\n", "", "5.srv", ""},
		{"batch marker, two lines", "hpcbot-pbs-job: site banner\n6.srv\n", "", "6.srv", ""},
		{"batch marker, no id", "hpcbot-pbs-job: \n", "", "", "no job id"},
	} {
		got, err := d.ParseSubmit([]byte(tc.out), tc.re)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || plugins.KindOf(err) != plugins.KindPermanent {
				t.Errorf("%s: got %q, %v; want permanent error %q", tc.name, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

func TestSubmitCommand(t *testing.T) {
	d := mustNew(t, "pro")
	batch := d.SubmitCommand(plugins.SubmitRequest{Launch: plugins.LaunchBatch}, "/scratch/u/hpcbot/17_3_h2o", cluster.BatchScriptName)
	if want := `cd /scratch/u/hpcbot/17_3_h2o && hb_out=$(qsub hpcbot-job.sh) && printf '%s%s\n' 'hpcbot-pbs-job: ' "$hb_out"`; batch != want {
		t.Errorf("batch = %q, want %q", batch, want)
	}
	wrap := d.SubmitCommand(plugins.SubmitRequest{Launch: plugins.LaunchWrapper, Argv: []string{"subg16", "in put.gjf", "$(id)"}},
		"/scratch/my dir", cluster.BatchScriptName)
	if want := `cd '/scratch/my dir' && subg16 'in put.gjf' '$(id)'`; wrap != want {
		t.Errorf("wrapper = %q, want %q", wrap, want)
	}
}

func TestCancel(t *testing.T) {
	for _, tc := range []struct {
		flavor, file string
		code         int
		want         bool
	}{
		{"torque", "torque/qdel-complete.stderr", 1, true},
		{"torque", "torque/qdel-unknown.stderr", 153, true},
		{"torque", "torque/qdel-unauthorized.stderr", 159, false},
		{"pro", "pbspro/qdel-finished.stderr", 1, true},
		{"pro", "pbspro/qdel-unknown.stderr", 1, true},
		{"pro", "torque/qsub-exceeds-limits.stderr", 1, false},
	} {
		d := mustNew(t, tc.flavor)
		r := cluster.RunResult{Stderr: readTestdata(t, tc.file), ExitCode: tc.code}
		if got := d.CancelDone(r); got != tc.want {
			t.Errorf("%s: CancelDone = %v, want %v", tc.file, got, tc.want)
		}
	}
	d := mustNew(t, "pro")
	if !d.CancelDone(cluster.RunResult{}) {
		t.Error("exit 0 is done")
	}
	// PBS Pro prints the id inside: "qdel: Job 12.srv has finished" (hand-written, from the
	// PBSE_HISTJOBID message format "Job %s has finished").
	if !d.CancelDone(cluster.RunResult{ExitCode: 35, Stderr: []byte("qdel: Job 12.srv has finished\n")}) {
		t.Error("Job <id> has finished is done")
	}
	if got := d.CancelCommand(plugins.JobRef{JobID: "12.srv"}, "/x"); got != "qdel 12.srv" {
		t.Errorf("CancelCommand = %q", got)
	}
	if got := d.CancelCommand(plugins.JobRef{JobID: "12;rm -rf ~"}, "/x"); got != "qdel '12;rm -rf ~'" {
		t.Errorf("CancelCommand quoting = %q", got)
	}
}

func refs(ids ...string) []plugins.JobRef {
	out := make([]plugins.JobRef, len(ids))
	for i, id := range ids {
		out[i] = plugins.JobRef{CalcID: uint64(i + 1), JobID: id}
	}
	return out
}

func TestPollCommand(t *testing.T) {
	pro, torque := mustNew(t, "pro"), mustNew(t, "torque")
	jobs := refs("1.srv", "2.srv", "1.srv", "", "3[].srv")
	if got, want := pro.PollCommand(jobs, nil), "qstat -x -f -F json 1.srv 2.srv '3[].srv'"; got != want {
		t.Errorf("pro = %q, want %q", got, want)
	}
	if got, want := torque.PollCommand(jobs, nil), "qstat -f 1.srv 2.srv '3[].srv'"; got != want {
		t.Errorf("torque = %q, want %q", got, want)
	}
	if got := pro.PollCommand(nil, nil); got != "" {
		t.Errorf("no jobs = %q, want empty", got)
	}
	many := make([]plugins.JobRef, 3)
	for i := range many {
		many[i] = plugins.JobRef{JobID: fmt.Sprintf("%d.pbs01.cluster.example.org", 1000+i)}
	}
	if got, want := torque.PollCommand(many, nil), "qstat -f 1000.pbs01.cluster.example.org 1001.pbs01.cluster.example.org 1002.pbs01.cluster.example.org"; got != want {
		t.Errorf("torque = %q, want %q", got, want)
	}
	if pro.FinishedCommand(jobs) != "" || torque.FinishedCommand(jobs) != "" {
		t.Error("FinishedCommand should be empty")
	}
	if m, err := pro.ParseFinished(cluster.RunResult{}, jobs); err != nil || len(m) != 0 {
		t.Errorf("ParseFinished = %v, %v", m, err)
	}
}

func ptr(i int) *int { return &i }

func utc(s string) time.Time {
	t, err := time.ParseInLocation(time.ANSIC, s, time.UTC)
	if err != nil {
		panic(err)
	}
	return t
}

type want struct {
	state    plugins.State
	raw      string
	exit     *int
	reason   string // substring
	started  time.Time
	ended    time.Time
	checkEnd bool
	node     string // exec_host's hosts; "" where qstat shows none
}

// ichecNodes are the hosts of exec_host of job 543984 in the ichec capture.
const ichecNodes = "r2i7n17,r2i0n11,r2i6n17,r2i0n5,r2i7n1,r2i5n8,r2i4n11,r2i4n8,r2i2n8,r2i0n2,r2i3n16,r2i3n2,r2i1n2,r2i4n3,r2i1n15,r2i1n9,r2i2n2,r2i3n8,r2i3n5,r2i1n11,r2i0n16,r2i2n5,r2i0n17,r2i0n8,r1i3n0,r1i7n7,r1i6n1,r1i7n3,r1i7n5,r1i6n17,r1i7n4"

func TestParsePollFixtures(t *testing.T) {
	for _, tc := range []struct {
		name, flavor, file string
		exit               int
		stderr             string
		jobs               []plugins.JobRef
		want               map[string]want // absent ids: not in the result
	}{
		{
			name: "pro json running 19.0.0", flavor: "pro", file: "pbspro/qstat-xf-json-19.0.0-running.json",
			jobs: refs("12860476.meta-pbs.metacentrum.cz", "12860477.meta-pbs.metacentrum.cz"),
			want: map[string]want{
				"12860476.meta-pbs.metacentrum.cz": {state: plugins.StateRunning, raw: "R", started: utc("Tue Oct  4 21:23:33 2022"), node: "charon24,charon21"},
			},
		},
		{
			name: "pro json short id matches the full one", flavor: "pro", file: "pbspro/qstat-xf-json-19.0.0-running.json",
			jobs: refs("12860476.meta-pbs", "12860476.other-server"),
			want: map[string]want{"12860476.meta-pbs": {state: plugins.StateRunning, raw: "R", node: "charon24,charon21"}},
		},
		{
			name: "pro json queued and held 2022.1.1", flavor: "pro", file: "pbspro/qstat-f-json-2022.1.1-queued-held.json",
			jobs: refs("359322.polaris-pbs-01.hsn.cm.polaris.alcf.anl.gov", "412020.polaris-pbs-01.hsn.cm.polaris.alcf.anl.gov"),
			want: map[string]want{
				"359322.polaris-pbs-01.hsn.cm.polaris.alcf.anl.gov": {state: plugins.StatePending, raw: "Q", reason: "exclusive node"},
				// Held after too many failed starts: Exit_status -3 is from the last attempt, the job is not final.
				"412020.polaris-pbs-01.hsn.cm.polaris.alcf.anl.gov": {state: plugins.StatePending, raw: "H", reason: "held: job held, too many failed attempts",
					started: utc("Fri Feb 10 17:02:23 2023")},
			},
		},
		{
			name: "pro json finished (synthetic)", flavor: "pro", file: "pbspro/synthetic-qstat-xf-json-finished.json",
			jobs: refs("100.pbs01", "101.pbs01", "102.pbs01", "103.pbs01", "104.pbs01", "105.pbs01", "106.pbs01", "107.pbs01", "108.pbs01"),
			want: map[string]want{
				"100.pbs01": {state: plugins.StateSucceeded, raw: "F", exit: ptr(0), started: utc("Tue Oct  4 21:23:33 2022"), ended: utc("Tue Oct  4 21:24:35 2022"), checkEnd: true, node: "charon24,charon21"},
				"101.pbs01": {state: plugins.StateTimedOut, raw: "F", reason: "JOB_EXEC_KILL_WALLTIME", node: "charon24,charon21"},
				"102.pbs01": {state: plugins.StateCancelled, raw: "F", reason: "deleted (qdel), exit status 271", node: "charon24,charon21"},
				"103.pbs01": {state: plugins.StateFailed, raw: "F", exit: ptr(3), reason: "exit status 3", node: "charon24,charon21"},
				"104.pbs01": {state: plugins.StateCancelled, raw: "F", reason: "deleted (qdel)", node: "charon24,charon21"},
				// 105: finished without Exit_status: left to the exit-code file.
				"106.pbs01": {state: plugins.StateLost, raw: "M", reason: "moved", node: "charon24,charon21"},
				"107.pbs01": {state: plugins.StateFailed, raw: "F", reason: "killed by signal 9", node: "charon24,charon21"},
				"108.pbs01": {state: plugins.StateFailed, raw: "F", reason: "JOB_EXEC_KILL_MEM", node: "charon24,charon21"},
			},
		},
		{
			name: "pro json invalid as in openpbs#1255 (synthetic)", flavor: "pro", file: "pbspro/synthetic-qstat-xf-json-issue1255.json",
			jobs: refs("12860476.meta-pbs.metacentrum.cz"),
			want: map[string]want{"12860476.meta-pbs.metacentrum.cz": {state: plugins.StateRunning, raw: "R", started: utc("Tue Oct  4 21:23:33 2022"), node: "charon24,charon21"}},
		},
		{
			name: "pro json with unknown ids on stderr", flavor: "pro", file: "pbspro/qstat-xf-json-19.0.0-running.json",
			exit: 35, stderr: "qstat: Unknown Job Id 1.meta-pbs.metacentrum.cz\n",
			jobs: refs("1.meta-pbs.metacentrum.cz", "12860476.meta-pbs.metacentrum.cz"),
			want: map[string]want{"12860476.meta-pbs.metacentrum.cz": {state: plugins.StateRunning, raw: "R", node: "charon24,charon21"}},
		},
		{
			name: "torque text ichec", flavor: "torque", file: "torque/qstat-f-aiida-ichec-2015.txt",
			jobs: refs("549159.service1", "555716", "556491", "546437", "547637", "543984", "999999"),
			want: map[string]want{
				"549159.service1": {state: plugins.StatePending, raw: "H", reason: "held"},
				"555716":          {state: plugins.StateRunning, raw: "R", started: utc("Sun Jun 28 23:20:51 2015"), node: "r2i4n13,r1i2n12,r1i2n11,r1i1n15"},
				"556491":          {state: plugins.StateRunning, raw: "R", node: "r3i1n2"},
				// exit 271 after 06:12:22 of 08:00:00: SIGTERM before the walltime, as qdel does.
				"546437": {state: plugins.StateCancelled, raw: "C", reason: "SIGTERM",
					started: utc("Thu Jun 18 16:23:35 2015"), ended: utc("Thu Jun 18 22:36:03 2015"), checkEnd: true,
					node: "r2i7n16,r2i6n14,r2i6n1,r1i7n8"},
				"547637": {state: plugins.StatePending, raw: "Q"},
				"543984": {state: plugins.StateCancelled, raw: "C", reason: "exit status 271", node: ichecNodes},
			},
		},
		{
			name: "text parser on pbs pro text, finished", flavor: "pro-text", file: "pbspro/qstat-xf-katana-finished.txt",
			jobs: refs("4686875.kman.restech.unsw.edu.au"),
			want: map[string]want{"4686875.kman.restech.unsw.edu.au": {state: plugins.StateSucceeded, raw: "F", exit: ptr(0),
				started: utc("Thu Aug 10 16:10:55 2023"), ended: utc("Thu Aug 10 16:11:09 2023"), checkEnd: true, node: "k242"}},
		},
		{
			name: "text parser on pbs pro text 2013", flavor: "pro-text", file: "pbspro/qstat-f-aiida-epfl-2013.txt",
			jobs: refs("68350.mycluster", "69301.mycluster", "69302.mycluster", "74164.mycluster"),
			want: map[string]want{
				"68350.mycluster": {state: plugins.StatePending, raw: "Q", reason: "Not Running: Node is in an ineligible state: offline"},
				"69301.mycluster": {state: plugins.StateRunning, raw: "R", started: utc("Sat Apr 20 01:36:59 2013"), node: "b141,b142,b143,b144"},
				"69302.mycluster": {state: plugins.StatePending, raw: "H"},
				"74164.mycluster": {state: plugins.StateRunning, raw: "R", node: "b270,b275"},
			},
		},
		{
			name: "text parser, bash function with newlines", flavor: "pro-text", file: "pbspro/qstat-f-aiida-multiline-func.txt",
			jobs: refs("171389798.mycluster"),
			want: map[string]want{"171389798.mycluster": {state: plugins.StatePending, raw: "Q"}},
		},
		{
			name: "text parser, running", flavor: "pro-text", file: "pbspro/qstat-f-aiida-running.txt",
			jobs: refs("171390152.mycluster"),
			want: map[string]want{"171390152.mycluster": {state: plugins.StateRunning, raw: "R", started: utc("Wed Jun 17 04:57:53 2026"), node: "mycluster-cpu-0686"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got map[string]plugins.JobStatus
			var err error
			r := cluster.RunResult{Stdout: readTestdata(t, tc.file), Stderr: []byte(tc.stderr), ExitCode: tc.exit}
			if tc.flavor == "pro-text" {
				// PBS Pro's text format through the shared text parser with PBS Pro's mapping.
				d := mustNew(t, "pro")
				got = map[string]plugins.JobStatus{}
				byID, bySeq := indexRecords(parseText(r.Stdout))
				for _, j := range tc.jobs {
					if rec, ok := lookup(byID, bySeq, j.JobID); ok {
						if st, ok := d.status(rec); ok {
							st.JobID = j.JobID
							got[j.JobID] = st
						}
					}
				}
			} else {
				got, err = mustNew(t, tc.flavor).ParsePoll(r, tc.jobs)
				if err != nil {
					t.Fatal(err)
				}
			}
			for id, w := range tc.want {
				st, ok := got[id]
				if !ok {
					t.Errorf("%s: missing", id)
					continue
				}
				if st.JobID != id || st.State != w.state || st.Raw != w.raw {
					t.Errorf("%s: got %+v, want state %s raw %s", id, st, w.state, w.raw)
				}
				if (st.ExitCode == nil) != (w.exit == nil) || (w.exit != nil && *st.ExitCode != *w.exit) {
					t.Errorf("%s: exit code %v, want %v", id, deref(st.ExitCode), deref(w.exit))
				}
				if !strings.Contains(st.Reason, w.reason) {
					t.Errorf("%s: reason %q, want it to contain %q", id, st.Reason, w.reason)
				}
				if !w.started.IsZero() && !st.Started.Equal(w.started) {
					t.Errorf("%s: started %v, want %v", id, st.Started, w.started)
				}
				if st.Node != w.node {
					t.Errorf("%s: node %q, want %q", id, st.Node, w.node)
				}
				if w.checkEnd && !st.Ended.Equal(w.ended) {
					t.Errorf("%s: ended %v, want %v", id, st.Ended, w.ended)
				}
			}
			for id := range got {
				if _, ok := tc.want[id]; !ok {
					t.Errorf("%s: unexpected %+v", id, got[id])
				}
			}
		})
	}
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestParsePollErrors(t *testing.T) {
	pro, torque := mustNew(t, "pro"), mustNew(t, "torque")
	jobs := refs("123", "124.srv")
	unknown := readTestdata(t, "torque/qstat-unknown.stderr")

	// Only unknown ids: no error, nothing known.
	for _, d := range []*Dialect{pro, torque} {
		got, err := d.ParsePoll(cluster.RunResult{Stderr: unknown, ExitCode: 153}, jobs)
		if err != nil || len(got) != 0 {
			t.Errorf("%s, unknown ids: %v, %v", d.Flavor(), got, err)
		}
	}
	// PBS Pro prints the header of an empty document (hand-written shape).
	if got, err := pro.ParsePoll(cluster.RunResult{Stdout: []byte(`{"timestamp":1,"pbs_version":"19.0.0","pbs_server":"s"}`), Stderr: unknown, ExitCode: 153}, jobs); err != nil || len(got) != 0 {
		t.Errorf("empty document: %v, %v", got, err)
	}
	for _, tc := range []struct {
		name string
		d    *Dialect
		r    cluster.RunResult
	}{
		{"server down", torque, cluster.RunResult{Stderr: []byte("qstat: cannot connect to server pbs01 (errno=111) Connection refused\n"), ExitCode: 2}},
		{"mixed stderr", pro, cluster.RunResult{Stderr: append([]byte("Connection timed out\n"), unknown...), ExitCode: 2}},
		{"silent failure", pro, cluster.RunResult{ExitCode: 127}},
		{"not json", pro, cluster.RunResult{Stdout: []byte("qstat: invalid option -- 'F'\nusage: ...\n"), ExitCode: 0}},
		{"truncated json", pro, cluster.RunResult{Stdout: readTestdata(t, "pbspro/qstat-xf-json-19.0.0-running.json")[:100]}},
	} {
		got, err := tc.d.ParsePoll(tc.r, jobs)
		if err == nil || plugins.KindOf(err) != plugins.KindTransient {
			t.Errorf("%s: got %v, %v; want a transient error", tc.name, got, err)
		}
	}
}

func TestFinishedMapping(t *testing.T) {
	pro, torque := mustNew(t, "pro"), mustNew(t, "torque")
	for _, tc := range []struct {
		name  string
		d     *Dialect
		rec   record
		state plugins.State
		exit  *int
		ok    bool
	}{
		{"pro ok", pro, record{State: "F", Exit: "0"}, plugins.StateSucceeded, ptr(0), true},
		{"pro exit 1", pro, record{State: "F", Exit: "1"}, plugins.StateFailed, ptr(1), true},
		{"pro exit 255", pro, record{State: "F", Exit: "255"}, plugins.StateFailed, ptr(255), true},
		{"pro walltime", pro, record{State: "F", Exit: "-29", Substate: "93"}, plugins.StateTimedOut, nil, true},
		{"pro deleted running", pro, record{State: "F", Exit: "271", Substate: "91"}, plugins.StateCancelled, nil, true},
		{"pro deleted queued", pro, record{State: "F", Substate: "91"}, plugins.StateCancelled, nil, true},
		{"pro deleted after exit 2", pro, record{State: "F", Exit: "2", Substate: "91"}, plugins.StateCancelled, ptr(2), true},
		{"pro sigterm", pro, record{State: "F", Exit: "271"}, plugins.StateCancelled, nil, true},
		{"pro sigkill", pro, record{State: "F", Exit: "265"}, plugins.StateFailed, nil, true},
		{"pro could not run", pro, record{State: "F", Exit: "-1"}, plugins.StateFailed, nil, true},
		{"pro unknown negative", pro, record{State: "F", Exit: "-99"}, plugins.StateFailed, nil, true},
		{"pro subjob", pro, record{State: "X", Exit: "0"}, plugins.StateSucceeded, ptr(0), true},
		{"pro no exit", pro, record{State: "F", Substate: "92"}, "", nil, false},
		{"pro garbage exit", pro, record{State: "F", Exit: "x"}, "", nil, false},
		{"torque ok", torque, record{State: "C", Exit: "0"}, plugins.StateSucceeded, ptr(0), true},
		{"torque exit 3", torque, record{State: "C", Exit: "3"}, plugins.StateFailed, ptr(3), true},
		{"torque walltime sigterm", torque, record{State: "C", Exit: "271", UsedWall: "01:00:05", ReqWall: "01:00:00"}, plugins.StateTimedOut, nil, true},
		{"torque overlimit at walltime", torque, record{State: "C", Exit: "-10", UsedWall: "00:10:00", ReqWall: "600"}, plugins.StateTimedOut, nil, true},
		{"torque overlimit memory", torque, record{State: "C", Exit: "-10", UsedWall: "00:01:00", ReqWall: "01:00:00"}, plugins.StateFailed, nil, true},
		{"torque qdel", torque, record{State: "C", Exit: "271", UsedWall: "00:01:00", ReqWall: "01:00:00"}, plugins.StateCancelled, nil, true},
		{"torque sigkill", torque, record{State: "C", Exit: "265"}, plugins.StateFailed, nil, true},
		{"torque cmdfail", torque, record{State: "C", Exit: "-8"}, plugins.StateFailed, nil, true},
		{"torque no exit", torque, record{State: "C"}, "", nil, false},
		// PBS Pro's substate 91 means nothing to Torque.
		{"torque substate ignored", torque, record{State: "C", Substate: "91", Exit: "0"}, plugins.StateSucceeded, ptr(0), true},
	} {
		st, ok := tc.d.status(tc.rec)
		if ok != tc.ok {
			t.Errorf("%s: ok = %v, want %v (%+v)", tc.name, ok, tc.ok, st)
			continue
		}
		if !ok {
			continue
		}
		if st.State != tc.state || (st.ExitCode == nil) != (tc.exit == nil) || (tc.exit != nil && *st.ExitCode != *tc.exit) {
			t.Errorf("%s: got %s exit %v (%s), want %s exit %v", tc.name, st.State, deref(st.ExitCode), st.Reason, tc.state, deref(tc.exit))
		}
		if st.Reason == "" {
			t.Errorf("%s: no reason", tc.name)
		}
	}
	for _, tc := range []struct {
		state string
		want  plugins.State
	}{
		{"Q", plugins.StatePending}, {"W", plugins.StatePending}, {"T", plugins.StatePending}, {"H", plugins.StatePending},
		{"R", plugins.StateRunning}, {"E", plugins.StateRunning}, {"B", plugins.StateRunning},
		{"S", plugins.StateRunning}, {"U", plugins.StateRunning},
		{"M", plugins.StateLost}, {"Z", plugins.StateLost}, {"", plugins.StateLost},
	} {
		st, ok := pro.status(record{State: tc.state})
		if !ok || st.State != tc.want || st.Raw != tc.state {
			t.Errorf("state %q: %+v, %v; want %s", tc.state, st, ok, tc.want)
		}
	}
}

func TestLookup(t *testing.T) {
	byID, bySeq := indexRecords([]record{
		{ID: "10.srv.example.org", State: "R"},
		{ID: "11", State: "Q"},
		{ID: "12.a", State: "R"}, {ID: "12.b", State: "Q"},
	})
	for _, tc := range []struct {
		id    string
		found bool
		state string
	}{
		{"10.srv.example.org", true, "R"},
		{"10.srv", true, "R"},
		{"10", true, "R"},
		{"10.other", false, ""},
		{"10.srv.example", true, "R"},
		{"11.srv", true, "Q"},
		{"12", false, ""}, // ambiguous
		{"12.a", true, "R"},
		{"13", false, ""},
	} {
		r, ok := lookup(byID, bySeq, tc.id)
		if ok != tc.found || r.State != tc.state {
			t.Errorf("lookup(%q) = %+v, %v; want found %v state %q", tc.id, r, ok, tc.found, tc.state)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"01:00:00", 3600, true}, {"72:00:00", 259200, true}, {"10:30", 630, true}, {"600", 600, true},
		{"00:00:01.5", 1, true}, {"", 0, false}, {"1:2:3:4", 0, false}, {"a:b", 0, false}, {"-1", 0, false},
	} {
		got, ok := parseDuration(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseDuration(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestNodes(t *testing.T) {
	for in, want := range map[string]string{
		"":                        "",
		"k242/3":                  "k242",
		"b141/0*16+b142/0*16":     "b141,b142",
		"n1/0+n1/1+n2/0":          "n1,n2", // Torque: one entry per core
		" r3i1n2/0-23 ":           "r3i1n2",
		"charon24/0*2+charon24/1": "charon24",
	} {
		if got := nodes(in); got != want {
			t.Errorf("nodes(%q) = %q, want %q", in, got, want)
		}
	}
}
