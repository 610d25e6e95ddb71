package pbs

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
)

func TestParseFindRecorded(t *testing.T) {
	d := mustNew(t, "pro")
	epfl := readTestdata(t, "pbspro/qstat-f-aiida-epfl-2013.txt")
	for _, tc := range []struct {
		name, dirs string
		want       []string
	}{
		// PBS_O_WORKDIR folded over a tab continuation ("produc" + "tion").
		{"folded workdir", "hpcbot-pbs-dir: /scratch/user3/ubiquitin/100gL/starting-from-left/production/\nhpcbot-pbs-dir: /gpfs/user3/production\n",
			[]string{"74164.mycluster", "74165.mycluster"}},
		{"physical path matches", "hpcbot-pbs-dir: /home/link/RUN7\nhpcbot-pbs-dir: /scratch/user02/QMMM-CuPhens/dbp/NOSE/RUN7\n",
			[]string{"69301.mycluster"}},
		{"no match", "hpcbot-pbs-dir: /nowhere\n", nil},
	} {
		got, err := d.ParseFind(cluster.RunResult{Stdout: append([]byte(tc.dirs), epfl...)})
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	if _, err := d.ParseFind(cluster.RunResult{Stdout: epfl, ExitCode: 1}); err == nil {
		t.Error("no folder line: want an error")
	}
	if got := workdir(`A=1,B=x\,y,PBS_O_WORKDIR=/a\,b/c,C=2`); got != "/a,b/c" {
		t.Errorf("workdir with escaped comma = %q", got)
	}
	ids := []string{"100.s", "99.s", "1000.s", "99[].s", "x.s"}
	for i := 0; i < len(ids); i++ {
		for j := i + 1; j < len(ids); j++ {
			if seqLess(ids[j], ids[i]) == seqLess(ids[i], ids[j]) && ids[i] != ids[j] {
				t.Errorf("seqLess(%q, %q) is not an order", ids[i], ids[j])
			}
		}
	}
	if !seqLess("99.s", "100.s") || seqLess("1000.s", "100.s") {
		t.Error("seqLess must compare numbers")
	}
}

// TestFindCommandWithFakeTools runs FindCommand with sh and stand-ins for
// qselect and qstat (their output here is hand-written: PBS_O_WORKDIR must be
// this test's folder), through a symlink so that the logical and physical
// paths differ.
func TestFindCommandWithFakeTools(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh on this host")
	}
	base := t.TempDir()
	real := filepath.Join(base, "real folder")
	link := filepath.Join(base, "link")
	if err := os.MkdirAll(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, link); err != nil {
		t.Skip("no symlinks:", err)
	}
	physical, err := filepath.EvalSymlinks(real)
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	qselect := "#!/bin/sh\n[ \"$*\" = \"" + "-x -N hpcbot-42 -u $(id -un)" + "\" ] || [ \"$*\" = \"-N hpcbot-42 -u $(id -un)\" ] || exit 0\nprintf '7.srv\\n5.srv\\n6.srv\\n'\n"
	qstat := "#!/bin/sh\nfor id in \"$@\"; do case $id in -*) continue;; esac\n" +
		"printf 'Job Id: %s\\n    Job_Name = hpcbot-42\\n    job_state = F\\n' \"$id\"\n" +
		"case $id in 5.srv) w=/elsewhere;; 6.srv) w='" + link + "';; *) w='" + physical + "';; esac\n" +
		"printf '    Variable_List = PBS_O_HOME=/home/u,PBS_O_WORKDIR=%s,\\n\\tPBS_O_HOST=login1\\n\\n' \"$w\"\ndone\n"
	for name, body := range map[string]string{"qselect": qselect, "qstat": qstat} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, flavor := range []string{"pro", "torque"} {
		d := mustNew(t, flavor)
		req := plugins.SubmitRequest{CalcID: 42, JobName: "hpcbot-42", Launch: plugins.LaunchBatch}
		cmd := exec.Command(sh, "-c", d.FindCommand(req, link))
		cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", flavor, err)
		}
		got, err := d.ParseFind(cluster.RunResult{Stdout: out})
		if want := []string{"6.srv", "7.srv"}; err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %q, %v; want %q\n%s", flavor, got, err, want, out)
		}
		if !strings.Contains(d.FindCommand(req, link), "qselect") {
			t.Errorf("%s: no qselect", flavor)
		}
		req.Launch = plugins.LaunchWrapper
		if d.FindCommand(req, link) != "" {
			t.Errorf("%s: wrapper launch should not be looked up", flavor)
		}
	}
}

func TestNothingSubmitted(t *testing.T) {
	d := mustNew(t, "pro")
	for _, tc := range []struct {
		out  string
		code int
		want bool
	}{
		// Message format as OpenPBS's own tests expect it (errno 15010), and Torque's with its reason.
		{"Connection refused\nqsub: cannot connect to server pbs01 (errno=15010)\n", 1, true},
		{"qsub: cannot connect to server pbs01 (errno=111) Connection refused\n", 2, true},
		{"qsub: cannot connect to server pbs01 (errno=15010)\n", 0, false},
		{string(readTestdata(t, "torque/qsub-exceeds-limits.stderr")), 190, false},
		{"hpcbot-pbs-job: 1.srv\nlater: qsub: cannot connect to server\n", 1, false},
	} {
		if got := d.NothingSubmitted([]byte(tc.out), tc.code); got != tc.want {
			t.Errorf("NothingSubmitted(%q, %d) = %v, want %v", tc.out, tc.code, got, tc.want)
		}
	}
}
