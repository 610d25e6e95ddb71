package scheduler

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"hpcbot/internal/testbed"
	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
	"hpcbot/plugins/shellquote"
	"hpcbot/plugins/slurm"
	"hpcbot/runners/command"
	"hpcbot/store"
)

// newSlurmBed is a bed whose one cluster, "bed", is the test bed's Slurm over
// SSH (its scheduler behind a fault injector), with results going to the fake
// Nextcloud; upload is its folder on the cluster, removed when the test ends.
// Its runner runs *.sh with bash, asking sbatch for resources.
func newSlurmBed(t *testing.T, env testbed.SSHEnv, resources map[string]string) (b *bed, upload string) {
	ctx := context.Background()
	upload = path.Join("hpcbot-scheduler-test", time.Now().Format("20060102-150405.000000000"))
	pc := plugins.Cluster{Label: "bed", Scheduler: "slurm", UploadPath: upload,
		Connection: plugins.Connection{Host: env.Host, Port: env.Port, User: env.User, KeyPath: env.KeyPath, KnownHosts: env.KnownHosts}}
	sched := slurm.New(cluster.WithLogger(testLogger(t)), cluster.WithLostGrace(time.Minute))
	if err := sched.Configure(ctx, pc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sched.Close() })
	rules := []plugins.RunnerRule{{Runner: "command", Program: "bash", AllowedArgs: []string{"{}"}, Associations: []string{".sh"},
		Resources: resources}}
	r := command.New()
	if err := r.Configure(ctx, "bed", rules); err != nil {
		t.Fatal(err)
	}
	b = newBed(t, withCloud("per_calculation"), func(b *bed) {
		f := newFaulty(sched)
		b.faults["bed"], b.scheds["bed"], b.uploads["bed"] = f, f, upload
		b.runners["bed"] = []plugins.Runner{r}
		b.cfg.Clusters = []ClusterConfig{{Cluster: pc, Runners: rules, Cleanup: true}}
	})
	b.cfg.FetchTime = FetchTime{Min: time.Second, Max: 2 * time.Second}
	t.Cleanup(func() {
		if _, err := testbed.Output(env.Dial(t), "rm -rf "+shellquote.Quote(upload)); err != nil {
			t.Logf("remove %s: %v", upload, err)
		}
	})
	return b, upload
}

// One calculation end to end against the test bed: a batch job on the real
// Slurm over SSH, its results fetched back and delivered to the fake Nextcloud.
func TestSlurmEndToEnd(t *testing.T) {
	b, _ := newSlurmBed(t, testbed.Slurm(t), nil)
	b.start()
	c := b.submit("water.sh", "echo \"energy -76.4 on $(hostname)\" > water.log\necho progress\necho warning >&2\n", "")
	d := b.waitState(c.ID, store.StateNotified, store.StateError)
	if d.State != store.StateNotified {
		t.Fatalf("%s: %s", history(d), d.Error)
	}
	if !slices.Contains(states(d), store.StateSucceeded) || d.ExitCode == nil || *d.ExitCode != 0 {
		t.Fatalf("history %s, exit %v", history(d), d.ExitCode)
	}
	acc := b.notes.of(c.ID, EventAccepted)
	if len(acc) != 1 || acc[0].Calc.JobID == "" || acc[0].Calc.Cluster != "bed" {
		t.Fatalf("accepted %+v", acc)
	}
	fin := b.notes.of(c.ID, EventFinished)
	if len(fin) != 1 || fin[0].Link == "" || fin[0].Outcome != store.StateSucceeded {
		t.Fatalf("finished %+v", fin)
	}
	log, err := b.nc.ReadFile("hpc_results/" + d.Folder + "/water.log")
	if err != nil || !strings.HasPrefix(string(log), "energy -76.4 on ") {
		t.Fatalf("water.log in the cloud: %q, %v", log, err)
	}
	out, err := b.nc.ReadFile(fmt.Sprintf("hpc_results/%s/%s.out", d.Folder, jobName(d.ID)))
	if err != nil || string(out) != "progress\n" {
		t.Fatalf("job output in the cloud: %q, %v", out, err)
	}
	if n := b.faults["bed"].launched(c.ID); n != 1 {
		t.Fatalf("%d launches", n)
	}
	until(t, func() string { return "remote folder cleaned" }, func() bool {
		got, _ := b.st.Calc(c.ID)
		return got.Progress.Cleaned
	})
	b.stop()
}

// Usage against the test bed's accounting: a job asking for 2 tasks records,
// when it ends, sacct's ElapsedRaw × AllocCPUS, and the usage report's
// core-hours are exactly that.
func TestSlurmUsageFromAccounting(t *testing.T) {
	env := testbed.SlurmAccounting(t)
	b, _ := newSlurmBed(t, env, map[string]string{"ntasks": "2"})
	b.start()
	c := b.submit("sleep.sh", "sleep 3\necho done > done.log\n", "")
	d := b.waitState(c.ID, store.StateNotified, store.StateError)
	if d.State != store.StateNotified {
		t.Fatalf("%s: %s", history(d), d.Error)
	}
	out, err := testbed.Output(env.Dial(t), "sacct -X --noheader --parsable2 -j "+shellquote.Quote(d.JobID)+" -o ElapsedRaw,AllocCPUS")
	if err != nil {
		t.Fatal(err)
	}
	var elapsed int64
	var cpus int
	if n, _ := fmt.Sscanf(strings.ReplaceAll(strings.TrimSpace(out), "|", " "), "%d %d", &elapsed, &cpus); n != 2 || cpus != 2 || elapsed < 3 {
		t.Fatalf("sacct says %q", out)
	}
	u := d.Usage
	if u == nil || u.Source != store.UsageAccounting || u.WallSeconds != elapsed || u.Cores != cpus {
		t.Fatalf("stored usage %+v, sacct %d s × %d", u, elapsed, cpus)
	}
	rows, err := b.st.Report(d.Created.Add(-time.Hour), d.Created.Add(time.Hour), "org")
	if err != nil {
		t.Fatal(err)
	}
	want := float64(elapsed*int64(cpus)) / 3600
	if len(rows) != 1 || rows[0].Key != "ipc" || rows[0].CoreHoursAccounting != want || rows[0].CoreHoursEstimate != 0 ||
		rows[0].Outcomes["succeeded"] != 1 {
		t.Fatalf("report %+v, want %.4f core-hours from accounting for ipc", rows, want)
	}
}

// The plugin's SSH traffic reaches Health: handshakes and remote commands in
// the last hour and day, as the plugin's own client counted them.
func TestSlurmTrafficInHealth(t *testing.T) {
	b, _ := newSlurmBed(t, testbed.Slurm(t), nil)
	s := b.start()
	c := b.submit("t.sh", "echo t > t.log\n", "")
	b.waitState(c.ID, store.StateNotified)
	want := b.faults["bed"].Scheduler.(plugins.StatsReporter)
	var h ClusterHealth
	until(t, func() string { return fmt.Sprintf("traffic in Health %+v", h) }, func() bool {
		hs, err := s.Health()
		if err != nil {
			t.Fatal(err)
		}
		h = hs[0]
		now, err := want.TransportStats(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		// Health lags the plugin by at most a poll tick.
		return h.TrafficKnown && h.TrafficDay == now
	})
	if h.TrafficDay.Handshakes < 1 || h.TrafficDay.Commands < 2 || h.TrafficDay.AuthFailures != 0 || h.TrafficHour != h.TrafficDay {
		t.Fatalf("traffic %+v / %+v", h.TrafficHour, h.TrafficDay)
	}
}
