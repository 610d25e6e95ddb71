package scheduler

import (
	"maps"
	"testing"

	"hpcbot/plugins"
	"hpcbot/runners/qcrun"
	"hpcbot/store"
)

// The runner's Check runs before anything is uploaded: a refused input ends in
// error with the refusal for the user, and nothing is staged or submitted.
func TestCheckRefusesBeforeStaging(t *testing.T) {
	b := newBed(t, func(b *bed) { b.addLocalRunner("loc", 4, xtbAsSh, qcrun.New(qcrun.XTB)) })
	b.start()
	for name, body := range map[string]string{"empty.sh": " \n", "utf16.sh": "\xFF\xFEe\x00c\x00h\x00o\x00"} {
		c := b.submit(name, body, "")
		got := b.waitError(c.ID)
		if got.Progress.ErrorCode != CodeInputRefused {
			t.Errorf("%s: error code %q, want %s", name, got.Progress.ErrorCode, CodeInputRefused)
		}
		ns := b.notes.of(c.ID, EventError)
		if len(ns) != 1 || ns[0].Refusal == nil {
			t.Fatalf("%s: error notices %+v", name, ns)
		}
		want := plugins.RefuseInputEmpty
		if name == "utf16.sh" {
			want = plugins.RefuseInputEncoding
		}
		if ns[0].Refusal.Code != want {
			t.Errorf("%s: refusal %+v, want %s", name, *ns[0].Refusal, want)
		}
	}
	if n := b.faults["loc"].count("stage"); n != 0 {
		t.Errorf("a refused input was staged %d times", n)
	}
}

// What the input asks for reaches the job's resources (Slurm words); the rule's
// own settings win.
func TestCheckResourcesReachTheJob(t *testing.T) {
	rules := []plugins.RunnerRule{{Runner: qcrun.ORCA, Program: "sh", AllowedArgs: []string{"{}"}, Associations: []string{".inp"},
		Resources: map[string]string{"time": "01:00:00"}}}
	b := newBed(t, func(b *bed) {
		b.addLocalRunner("loc", 4, rules, qcrun.New(qcrun.ORCA))
		b.cfg.Clusters[0].Scheduler = "slurm" // the words inputResources uses; the plugin stays local
	})
	b.start()
	c := b.submit("h2o.inp", "%pal nprocs 2 end\n%maxcore 100\necho done\n", "")
	got := b.waitState(c.ID, store.StateNotified)
	want := map[string]string{"time": "01:00:00", "ntasks": "2", "mem": "200M"}
	if !maps.Equal(got.Resources, want) {
		t.Errorf("resources %v, want %v", got.Resources, want)
	}
}

func TestInputResources(t *testing.T) {
	in := plugins.InputResources{Tasks: 8, CPUsPerTask: 4, MemoryMB: 24000}
	for _, c := range []struct {
		sched string
		rule  map[string]string
		want  map[string]string
	}{
		{"slurm", nil, map[string]string{"ntasks": "8", "cpus-per-task": "4", "mem": "24000M"}},
		{"slurm", map[string]string{"ntasks": "2", "partition": "short"}, map[string]string{"ntasks": "2", "partition": "short", "cpus-per-task": "4", "mem": "24000M"}},
		{"slurm", map[string]string{"mem-per-cpu": "2G"}, map[string]string{"mem-per-cpu": "2G", "ntasks": "8", "cpus-per-task": "4"}},
		{"pbs", map[string]string{"select": "1:ncpus=4"}, map[string]string{"select": "1:ncpus=4"}},
		{"local", nil, nil},
	} {
		rule := maps.Clone(c.rule)
		got := inputResources(c.sched, c.rule, in)
		if !maps.Equal(got, c.want) {
			t.Errorf("%s %v: got %v, want %v", c.sched, c.rule, got, c.want)
		}
		if !maps.Equal(rule, c.rule) {
			t.Errorf("the rule's map was changed: %v", c.rule)
		}
	}
}
