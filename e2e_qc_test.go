package main

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"hpcbot/bot/tgtest"
	"hpcbot/store"
)

// The xtb runner end to end, with the real xtb of the test bed (scripts/
// testbed.sh installs Debian's xtb; the Slurm node runs on this machine): the
// fake Bot API, the real binary, real Slurm over SSH, the results in the fake
// Nextcloud. Every value the test expects is read from the output the run
// wrote, never written here.

// xtbWorld is a world whose cluster also has the xtb runner for .xyz files.
func xtbWorld(t *testing.T) (*world, tgtest.User) {
	t.Helper()
	if _, err := exec.LookPath("xtb"); err != nil {
		t.Fatalf("xtb is not installed on the test bed (scripts/testbed.sh installs it): %v", err)
	}
	w := newWorld(t)
	f, err := os.OpenFile(w.cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(`
[[clusters.runners]]
runner = "xtb"
program = "xtb"
description = "xtb (GFN2-xTB)"
allowed_args = ["{}", "--opt"]
associations = [".xyz"]
max_cores = 2
resources = { cpus-per-task = "1" }
`)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	user := e2eUser(7301, "Olga")
	w.seedUser(user)
	w.start()
	return w, user
}

// xtbResult sends an .xyz file with a caption and returns the finish message
// and the calculation as stored.
func xtbResult(w *world, user tgtest.User, name, xyz, caption string) (string, store.Calculation) {
	w.t.Helper()
	w.tg.PushDocument(user, tgtest.Private(user), name, []byte(xyz), caption)
	id := w.waitFinished(user.ID, name)
	msgs, _ := w.finished(user.ID, name)
	if len(msgs) != 1 {
		w.t.Fatalf("%d finished messages for %s: %q", len(msgs), name, msgs)
	}
	for _, c := range w.snapshot() {
		if c.ID == id {
			return msgs[0], c
		}
	}
	w.t.Fatalf("calculation #%d is not in the store", id)
	return "", store.Calculation{}
}

// cloudFile reads a result file of c from the fake Nextcloud.
func (w *world) cloudFile(c store.Calculation, name string) string {
	w.t.Helper()
	b, err := w.nc.ReadFile(path.Join("hpc_results", c.Folder, name))
	if err != nil {
		w.t.Fatalf("%s in the cloud: %v", name, err)
	}
	return string(b)
}

var xtbEnergyRe = regexp.MustCompile(`\| TOTAL ENERGY\s+(-?\d+\.\d+) Eh`)

// TestE2EXTBOptimization: water.xyz with the caption `xtb {} --opt` runs the
// real xtb on Slurm; the finish message says normal termination, the energy the
// run printed and that the optimization converged, and xtbopt.xyz comes back.
func TestE2EXTBOptimization(t *testing.T) {
	w, user := xtbWorld(t)
	water := "3\nwater\nO 0.000000 0.000000 0.117300\nH 0.000000 0.757200 -0.469200\nH 0.000000 -0.757200 -0.469200\n"
	msg, c := xtbResult(w, user, "water.xyz", water, "xtb {} --opt")

	out := w.cloudFile(c, fmt.Sprintf("hpcbot-%d.out", c.ID))
	m := xtbEnergyRe.FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		t.Fatalf("no TOTAL ENERGY in xtb's output:\n%s", out)
	}
	energy := m[len(m)-1][1]
	for _, want := range []string{"succeeded, exit code 0", "xtb: normal termination.", "Final energy", energy + " Eh.",
		"The geometry optimization converged in ", "Final geometry: xtbopt.xyz."} {
		if !strings.Contains(msg, want) {
			t.Errorf("finish message lacks %q:\n%s", want, msg)
		}
	}
	if geo := w.cloudFile(c, "xtbopt.xyz"); !strings.HasPrefix(strings.TrimSpace(geo), "3") {
		t.Errorf("xtbopt.xyz is not water's geometry:\n%s", geo)
	}
	if c.Digest == nil || c.Digest.Termination != store.DigestNormal || c.Digest.Energy != energy || !c.Digest.OptConverged {
		t.Errorf("stored digest %+v, want normal, energy %s, converged", c.Digest, energy)
	}
	if c.Resources["cpus-per-task"] != "1" {
		t.Errorf("resources %v: the rule's cpus-per-task must stay", c.Resources)
	}
}

// TestE2EXTBFailure: an input that passes the runner's checks but that xtb
// cannot run (an element that does not exist) is reported as failed with
// xtb's own error line; an input the runner refuses never reaches the cluster.
func TestE2EXTBFailure(t *testing.T) {
	w, user := xtbWorld(t)
	bad := "3\nwater with a nonsense element\nXq 0.000000 0.000000 0.117300\nH 0.000000 0.757200 -0.469200\nH 0.000000 -0.757200 -0.469200\n"
	msg, c := xtbResult(w, user, "bad.xyz", bad, "xtb {} --opt")

	out := w.cloudFile(c, fmt.Sprintf("hpcbot-%d.out", c.ID))
	var line string
	for l := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "-1-") {
			line = strings.TrimSpace(l)
			break
		}
	}
	if line == "" {
		t.Fatalf("xtb printed no -1- error line:\n%s", out)
	}
	if !strings.Contains(msg, "finished: failed") || !strings.Contains(msg, "xtb stopped with an error: <code>"+line+"</code>") {
		t.Errorf("finish message %q: want failed with xtb's line %q", msg, line)
	}
	if c.Digest == nil || c.Digest.Termination != store.DigestFailed || c.Digest.Energy != "" {
		t.Errorf("stored digest %+v, want failed without an energy", c.Digest)
	}

	// The atom count disagrees with the atom lines: refused before upload,
	// with the line and the fix, and no job.
	w.tg.PushDocument(user, tgtest.Private(user), "count.xyz", []byte(strings.Replace(bad, "3\n", "5\n", 1)), "xtb {}")
	w.until("the refusal of count.xyz", 50*time.Millisecond, func() bool {
		return sentHas(w.tg, user.ID, "(count.xyz) was not started. Line 1 gives 5 as the number of atoms, but the file has 3 atom lines.")
	})
	for _, calc := range byInput(w.snapshot(), "count.xyz") {
		if calc.State != store.StateError || calc.JobID != "" {
			t.Errorf("refused input: %s, job %q; want error and no job", calc.State, calc.JobID)
		}
		if jobs := w.jobsNamed("hpcbot-" + strconv.FormatUint(calc.ID, 10)); len(jobs) != 0 {
			t.Errorf("a refused input reached Slurm: %v", jobs)
		}
	}
}
