package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"hpcbot/plugins"
	"hpcbot/runners/qcrun"
)

// TestQCRunnersServedByTheBinary: the xtb, orca and gaussian runners are built
// in, served by the hpcbot binary in processes of their own, and speak
// protocol 2: Check refuses across the process boundary with the line, and
// Digest reads the fetched results.
func TestQCRunnersServedByTheBinary(t *testing.T) {
	host, err := plugins.NewHost(plugins.HostOptions{Executable: binary, Builtins: builtins, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	ctx := context.Background()
	for _, name := range qcrun.Names {
		rule := plugins.RunnerRule{Runner: name, Program: "/opt/" + name + "/bin/" + name, AllowedArgs: []string{"{}", "--opt"}, MaxCores: 4}
		r, err := host.Runner(ctx, "c1", name, []plugins.RunnerRule{rule})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		file := map[string]string{qcrun.XTB: "w.xyz", qcrun.ORCA: "w.inp", qcrun.Gaussian: "w.gjf"}[name]
		p, err := r.Plan(ctx, plugins.PlanRequest{FileName: file, Caption: name + " {}"})
		if err != nil || p.Argv[0] != rule.Program {
			t.Fatalf("%s: Plan by the runner's name: %+v, %v", name, p, err)
		}
		input := map[string]string{
			qcrun.XTB:      "4\nwater\nO 0 0 0.1173\nH 0 0.7572 -0.4692\nH 0 -0.7572 -0.4692\n",
			qcrun.ORCA:     "! HF\n%pal nprocs 8 end\n",
			qcrun.Gaussian: "%chk=w.chk\n%nprocshared=8\n#p hf\n",
		}[name]
		path := filepath.Join(t.TempDir(), file)
		if err := os.WriteFile(path, []byte(input), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err = r.Check(ctx, plugins.CheckInputRequest{FileName: file, Caption: name + " {}", Path: path, Program: p.Program})
		var ref *plugins.Refusal
		if !errors.As(err, &ref) || ref.Line == 0 {
			t.Errorf("%s: Check: %v, want a refusal with its line", name, err)
		}
	}
	r, err := host.Runner(ctx, "c2", qcrun.XTB, []plugins.RunnerRule{{Runner: qcrun.XTB, Program: "xtb", AllowedArgs: []string{"{}", "--opt"}}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, fixture := range map[string]string{"hpcbot-1.out": "water_opt.out", "hpcbot-1.err": "water_opt.err"} {
		b, err := os.ReadFile(filepath.Join("runners", "qc", "testdata", "xtb6.5.1", fixture))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	d, err := r.Digest(ctx, plugins.DigestRequest{Dir: dir, Files: []string{"hpcbot-1.out", "hpcbot-1.err"},
		InputFile: "water.xyz", Stdout: "hpcbot-1.out", Stderr: "hpcbot-1.err"})
	if err != nil || d.Termination != plugins.TerminationNormal || d.Energy == "" {
		t.Errorf("Digest through the plugin: %+v, %v", d, err)
	}
}
