package slurm

import (
	"context"
	"flag"
	"fmt"
	"path"
	"strings"
	"testing"
	"time"

	"hpcbot/internal/testbed"
	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
	"hpcbot/plugins/sshc"
)

var captureFlag = flag.Bool("capture", false, "run the dialect's commands on the test bed's Slurm and rewrite testdata/*.txt")

// bedTransport connects to the test bed's sshd as its test user.
func bedTransport(t *testing.T) (cluster.Transport, plugins.Connection) {
	t.Helper()
	env := testbed.Slurm(t)
	conn := plugins.Connection{Host: env.Host, Port: env.Port, User: env.User, KeyPath: env.KeyPath, KnownHosts: env.KnownHosts}
	tr, err := sshc.New(conn, sshc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr, conn
}

// TestCapture records real outputs into testdata (go test -run TestCapture -capture).
// It needs the test bed with accounting; it takes about two minutes (a job must time out).
func TestCapture(t *testing.T) {
	if !*captureFlag {
		t.Skip("rewrites testdata: run with -capture against the test bed")
	}
	testbed.SlurmAccounting(t)
	tr, _ := bedTransport(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	d := NewDialect()
	run := func(cmd string) cluster.RunResult {
		t.Helper()
		r, err := tr.Run(ctx, cmd)
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		return r
	}
	record := func(name, cmd string) cluster.RunResult {
		t.Helper()
		r := run(cmd)
		writeCapture(t, name, capture{Cmd: cmd, R: r})
		return r
	}
	home := strings.TrimSpace(string(run("pwd -P").Stdout))
	base := path.Join(home, "hpcbot-capture", time.Now().Format("20060102-150405"))
	noAcct := path.Join(base, "noacct.conf")
	badCtl := path.Join(base, "badctl.conf")
	t.Cleanup(func() { tr.Run(context.Background(), "rm -rf "+base) })
	run("mkdir -p " + base + " && sed '/^AccountingStorage/d; /^JobAcctGather/d' /etc/slurm/slurm.conf >" + noAcct +
		" && sed 's/^SlurmctldPort=.*//' /etc/slurm/slurm.conf >" + badCtl + " && echo SlurmctldPort=1 >>" + badCtl)

	record("version", d.VersionCommand())

	// Batch jobs, submitted the way Submit does (script written, then SubmitCommand).
	submit := func(name string, argv []string, res map[string]string, capName string) string {
		t.Helper()
		dir := path.Join(base, name)
		req := plugins.SubmitRequest{CalcID: 1, Folder: name, Argv: argv, Launch: plugins.LaunchBatch,
			JobName: "hpcbot-cap-" + name, Comment: "hpcbot user=7 org=\"ИПХФ\" #1", Resources: res}
		body, err := d.BatchScript(req, dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.WriteFile(ctx, path.Join(dir, cluster.BatchScriptName), body, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := d.SubmitCommand(req, dir, cluster.BatchScriptName)
		var r cluster.RunResult
		if capName != "" {
			r = record(capName, cmd)
		} else {
			r = run(cmd)
		}
		id, err := d.ParseSubmit(r.Stdout, "")
		if err != nil {
			t.Fatalf("submit %s: %v (%s)", name, err, r.Stderr)
		}
		return id
	}
	long := submit("long", []string{"sleep", "300"}, nil, "sbatch_batch")
	cancelled := submit("cancelled", []string{"sleep", "300"}, nil, "")
	pending := submit("pending", []string{"true"}, map[string]string{"begin": "now+3600"}, "")
	timeout := submit("timeout", []string{"sleep", "300"}, map[string]string{"time": "1"}, "")
	ok := submit("ok", []string{"sh", "-c", "sleep 8; true"}, nil, "")
	fail := submit("fail", []string{"sh", "-c", "sleep 8; exit 3"}, map[string]string{"ntasks": "1"}, "")
	// A wrapper: the program submits itself and prints sbatch's own message.
	wrapDir := path.Join(base, "wrap")
	run("mkdir -p " + wrapDir)
	record("sbatch_wrapper", d.SubmitCommand(plugins.SubmitRequest{Argv: []string{"sbatch", "--job-name=hpcbot-cap-wrap", "--wrap", "true"}}, wrapDir, ""))
	// sbatch that cannot reach slurmctld, and one that slurmctld refuses.
	record("sbatch_no_controller", "cd "+wrapDir+" && SLURM_CONF="+badCtl+" sbatch --parsable --wrap true")
	record("sbatch_rejected", "cd "+wrapDir+" && sbatch --parsable --partition=nosuchpartition --wrap true")

	waitState := func(id, want string) {
		t.Helper()
		for i := 0; i < 300; i++ {
			r := run("squeue --noheader --states=all --jobs=" + id + "," + id + " --format=%T")
			if strings.TrimSpace(string(r.Stdout)) == want {
				return
			}
			time.Sleep(time.Second)
		}
		t.Fatalf("job %s never %s", id, want)
	}
	waitState(long, "RUNNING")
	waitState(cancelled, "RUNNING")
	record("scancel_running", d.CancelCommand(plugins.JobRef{JobID: cancelled}, ""))
	all := func(ids ...string) []plugins.JobRef {
		var refs []plugins.JobRef
		for _, id := range ids {
			refs = append(refs, plugins.JobRef{JobID: id})
		}
		return refs
	}
	mixed := all(ok, fail, long, cancelled, pending, "999999")
	// Catch the finished jobs in squeue, sacct and scontrol before MinJobAge=2 purges them.
	for i := 0; ; i++ {
		cmd := d.PollCommand(mixed, nil)
		r := run(cmd)
		out := string(r.Stdout)
		if strings.Contains(out, ok+"^^^COMPLETED") && strings.Contains(out, fail+"^^^FAILED") && strings.Contains(out, cancelled+"^^^CANCELLED") {
			writeCapture(t, "squeue_mixed", capture{Cmd: cmd, R: r})
			break
		}
		if i > 600 {
			t.Fatalf("never saw the finished jobs in squeue: %s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	record("finished_noacct", "export SLURM_CONF="+noAcct+"\n"+d.FinishedCommand(mixed))
	record("finished_sacct", d.FinishedCommand(mixed))
	many := append([]plugins.JobRef{}, mixed...)
	for i := 0; i < scontrolEach; i++ {
		many = append(many, plugins.JobRef{JobID: fmt.Sprint(900000 + i)})
	}
	// More than scontrolEach jobs unknown to accounting: one scontrol for all jobs.
	record("finished_noacct_many", "export SLURM_CONF="+noAcct+"\n"+d.FinishedCommand(many))
	record("squeue_single_unknown", d.PollCommand(all("999999"), nil))
	record("squeue_single_unknown_once", strings.Replace(d.PollCommand(all("999999"), nil), "999999,999999", "999999", 1))
	record("squeue_no_controller", "SLURM_CONF="+badCtl+" "+d.PollCommand(mixed, nil))
	record("scontrol_running", "SLURM_TIME_FORMAT=standard scontrol show job -o "+long)
	record("scancel_finished", d.CancelCommand(plugins.JobRef{JobID: ok}, ""))
	record("scancel_unknown", d.CancelCommand(plugins.JobRef{JobID: "999999"}, ""))
	record("find_batch", d.FindCommand(plugins.SubmitRequest{Launch: plugins.LaunchBatch, JobName: "hpcbot-cap-long"}, path.Join(base, "long")))

	// A time limit of one minute; Slurm checks limits every 30 s or so.
	for i := 0; ; i++ {
		cmd := d.PollCommand(all(timeout), nil)
		r := run(cmd)
		if strings.Contains(string(r.Stdout), "TIMEOUT") {
			writeCapture(t, "squeue_timeout", capture{Cmd: cmd, R: r})
			break
		}
		if i > 1000 {
			t.Fatalf("job %s never timed out in squeue's view", timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
	record("finished_sacct_timeout", d.FinishedCommand(all(timeout)))
	run(d.CancelCommand(plugins.JobRef{JobID: long}, ""))
	run(d.CancelCommand(plugins.JobRef{JobID: pending}, ""))

	// MinJobAge=2: wait until scontrol has forgotten the finished jobs.
	forgotten := all(ok, fail, cancelled)
	for i := 0; ; i++ {
		r := run("export SLURM_CONF=" + noAcct + "\n" + d.FinishedCommand(forgotten))
		if strings.Count(string(r.Stdout), "Invalid job id specified") == len(forgotten) {
			writeCapture(t, "finished_noacct_forgotten", capture{Cmd: "export SLURM_CONF=" + noAcct + "\n" + d.FinishedCommand(forgotten), R: r})
			break
		}
		if i > 120 {
			t.Fatal("Slurm never forgot the finished jobs")
		}
		time.Sleep(time.Second)
	}
	record("squeue_forgotten", d.PollCommand(forgotten, nil))
	fmt.Println("captured job ids:", ok, fail, long, cancelled, pending, timeout)
}
