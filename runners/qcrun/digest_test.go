package qcrun

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"hpcbot/plugins"
)

func readFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "qc", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// results lays out fetched results: name in the folder → fixture.
func results(t *testing.T, files map[string]string) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	var names []string
	for name, fixture := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(readFixture(t, fixture)), 0o600); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	return dir, names
}

// lastMatch is the last submatch of re in a fixture: the value the program printed.
func lastMatch(t *testing.T, fixture, re string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindAllStringSubmatch(readFixture(t, fixture), -1)
	if len(m) == 0 {
		t.Fatalf("%s: no %s", fixture, re)
	}
	return m[len(m)-1][1]
}

func TestDigestORCA(t *testing.T) {
	r := configured(t, ORCA, orcaRule())
	dir, files := results(t, map[string]string{"dvb_gopt.out": "orca6.0/dvb_gopt.out", "dvb_gopt.xyz": "orca6.0/dvb_gopt.inp"})
	d, err := r.Digest(context.Background(), plugins.DigestRequest{Dir: dir, Files: files, InputFile: "dvb_gopt.inp"})
	if err != nil {
		t.Fatal(err)
	}
	want := lastMatch(t, "orca6.0/dvb_gopt.out", `FINAL SINGLE POINT ENERGY\s+(\S+)`)
	if d.Termination != plugins.TerminationNormal || d.Energy != want || !d.Optimization || !d.OptConverged ||
		d.OptCycles == 0 || d.WallSeconds != 52 || d.GeometryFile != "dvb_gopt.xyz" || d.Program != "orca" {
		t.Errorf("digest %+v; want normal, energy %s, converged, 52 s, dvb_gopt.xyz", d, want)
	}
}

// ORCA's output in the job's standard output (orca x.inp > stdout).
func TestDigestORCAFromStdout(t *testing.T) {
	r := configured(t, ORCA, orcaRule())
	dir, files := results(t, map[string]string{"hpcbot-7.out": "orca6.0/water_mp2.out", "hpcbot-7.err": "xtb6.5.1/water.xyz"})
	d, err := r.Digest(context.Background(), plugins.DigestRequest{Dir: dir, Files: files, InputFile: "water_mp2.inp",
		Stdout: "hpcbot-7.out", Stderr: "hpcbot-7.err"})
	if err != nil {
		t.Fatal(err)
	}
	if d.Termination != plugins.TerminationNormal || d.Energy == "" || d.GeometryFile != "" {
		t.Errorf("digest %+v", d)
	}
}

func TestDigestGaussian(t *testing.T) {
	r := configured(t, Gaussian, gaussianRule())
	dir, files := results(t, map[string]string{"dvb_ir.log": "gaussian16/dvb_ir.out"})
	d, err := r.Digest(context.Background(), plugins.DigestRequest{Dir: dir, Files: files, InputFile: "dvb_ir.gjf"})
	if err != nil {
		t.Fatal(err)
	}
	if d.Termination != plugins.TerminationNormal || d.Frequencies == 0 || d.LowestFrequency == "" || d.Program != "gaussian" {
		t.Errorf("digest %+v", d)
	}
}

func TestDigestXTB(t *testing.T) {
	r := configured(t, XTB, xtbRule())
	dir, files := results(t, map[string]string{
		"hpcbot-3.out": "xtb6.5.1/water_opt.out", "hpcbot-3.err": "xtb6.5.1/water_opt.err",
		"xtbopt.xyz": "xtb6.5.1/water.xyz", "water.xyz": "xtb6.5.1/water.xyz"})
	d, err := r.Digest(context.Background(), plugins.DigestRequest{Dir: dir, Files: files, InputFile: "water.xyz",
		Stdout: "hpcbot-3.out", Stderr: "hpcbot-3.err"})
	if err != nil {
		t.Fatal(err)
	}
	want := lastMatch(t, "xtb6.5.1/water_opt.out", `TOTAL ENERGY\s+(\S+) Eh`)
	if d.Termination != plugins.TerminationNormal || d.TerminationLine != "normal termination of xtb" ||
		d.Energy != want || !d.OptConverged || d.GeometryFile != "xtbopt.xyz" {
		t.Errorf("digest %+v; want normal termination, energy %s, xtbopt.xyz", d, want)
	}

	// The geometry file is named only when it was fetched.
	d, err = r.Digest(context.Background(), plugins.DigestRequest{Dir: dir, Files: []string{"hpcbot-3.out", "hpcbot-3.err"},
		InputFile: "water.xyz", Stdout: "hpcbot-3.out", Stderr: "hpcbot-3.err"})
	if err != nil || d.GeometryFile != "" {
		t.Errorf("geometry file not fetched: %+v, %v", d, err)
	}
}

func TestDigestXTBFailed(t *testing.T) {
	r := configured(t, XTB, xtbRule())
	dir, files := results(t, map[string]string{"hpcbot-4.out": "xtb6.5.1/bad_count.out", "hpcbot-4.err": "xtb6.5.1/bad_count.err"})
	d, err := r.Digest(context.Background(), plugins.DigestRequest{Dir: dir, Files: files, InputFile: "bad_count.xyz",
		Stdout: "hpcbot-4.out", Stderr: "hpcbot-4.err"})
	if err != nil {
		t.Fatal(err)
	}
	if d.Termination != plugins.TerminationFailed || !strings.Contains(d.TerminationLine, "Atom number missmatch") || d.Energy != "" {
		t.Errorf("digest %+v; want failed with xtb's error line and no energy", d)
	}
}

// A cut output is unfinished, never an energy; no recognised output is no summary.
func TestDigestUnfinishedAndNoSummary(t *testing.T) {
	r := configured(t, ORCA, orcaRule())
	dir := t.TempDir()
	full := readFixture(t, "orca6.0/dvb_sp_dft.out")
	if err := os.WriteFile(filepath.Join(dir, "dvb.out"), []byte(full[:len(full)/2]), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "other.out"), []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := r.Digest(context.Background(), plugins.DigestRequest{Dir: dir, Files: []string{"dvb.out"}, InputFile: "dvb.inp"})
	if err != nil || d.Termination != plugins.TerminationUnfinished || d.Energy != "" {
		t.Errorf("cut output: %+v, %v", d, err)
	}
	d, err = r.Digest(context.Background(), plugins.DigestRequest{Dir: dir, Files: []string{"other.out"}, InputFile: "other.inp"})
	if err != nil || d.HasSummary() || d.Termination != plugins.TerminationNone || d.Program != "orca" {
		t.Errorf("not an ORCA output: %+v, %v", d, err)
	}
	// Names not fetched are not read even when the file is there.
	d, err = r.Digest(context.Background(), plugins.DigestRequest{Dir: dir, Files: nil, InputFile: "dvb.inp"})
	if err != nil || d.HasSummary() {
		t.Errorf("no files: %+v, %v", d, err)
	}
}

// A symlink out of the results folder is not followed.
func TestDigestStaysInTheFolder(t *testing.T) {
	r := configured(t, ORCA, orcaRule())
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret.out"), []byte(readFixture(t, "orca6.0/dvb_sp_dft.out")), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(outside, "secret.out"), filepath.Join(dir, "dvb.out")); err != nil {
		t.Fatal(err)
	}
	d, err := r.Digest(context.Background(), plugins.DigestRequest{Dir: dir, Files: []string{"dvb.out"}, InputFile: "dvb.inp"})
	if err == nil && d.HasSummary() {
		t.Errorf("a symlink out of the folder was read: %+v", d)
	}
}

func TestDigestStopsAtDeadline(t *testing.T) {
	r := configured(t, ORCA, orcaRule())
	dir, files := results(t, map[string]string{"dvb_gopt.out": "orca6.0/dvb_gopt.out"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := r.Digest(ctx, plugins.DigestRequest{Dir: dir, Files: files, InputFile: "dvb_gopt.inp"})
	if plugins.KindOf(err) != plugins.KindTransient {
		t.Errorf("cancelled Digest: %v, want a transient error", err)
	}
}
