package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"hpcbot/internal/testbed"
	"hpcbot/plugins"
)

// TestSlurmPluginSurvivesKill runs the real slurm plugin in its own process (served
// by the hpcbot binary) against the test bed, SIGKILLs the plugin while a job is
// followed, and checks that the host restarts it and the job is still followed to
// its end with the right exit code.
func TestSlurmPluginSurvivesKill(t *testing.T) {
	env := testbed.Slurm(t)
	host, err := plugins.NewHost(plugins.HostOptions{
		Executable: binary,
		Builtins:   builtins,
		Logger:     slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		RestartMin: 50 * time.Millisecond,
		RestartMax: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl := plugins.Cluster{
		Label: "tb", Scheduler: "slurm", UploadPath: "hpcbot-hosttest",
		Connection: plugins.Connection{Host: env.Host, Port: env.Port, User: env.User, KeyPath: env.KeyPath, KnownHosts: env.KnownHosts},
	}
	s, err := host.Scheduler(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	local := t.TempDir()
	os.WriteFile(filepath.Join(local, "in.txt"), []byte("hello\n"), 0o644)
	folder := fmt.Sprintf("%d_1_in", time.Now().UnixNano())
	defer s.Cleanup(context.Background(), folder)
	if err := s.Stage(ctx, plugins.StageRequest{CalcID: 1, LocalDir: local, Folder: folder}); err != nil {
		t.Fatal(err)
	}
	req := plugins.SubmitRequest{CalcID: 1, Folder: folder, Argv: []string{"sh", "-c", "sleep 3; exit 7"}, Launch: plugins.LaunchBatch, JobName: "hpcbot-1", Comment: "hpcbot user=1 org=test"}
	sub, err := s.Submit(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	ref := plugins.JobRef{CalcID: 1, JobID: sub.JobID, Folder: folder, Launch: plugins.LaunchBatch}

	pid := host.Plugins()[0].PID
	// Kill the plugin while a Poll is in flight, or just before it.
	go func() { time.Sleep(20 * time.Millisecond); syscall.Kill(pid, syscall.SIGKILL) }()
	if _, err := s.Poll(ctx, []plugins.JobRef{ref}); err != nil && !plugins.IsTransient(err) {
		t.Fatalf("poll during the kill: want a transient error or a result, got %v", err)
	}
	var st plugins.JobStatus
	for {
		res, err := s.Poll(ctx, []plugins.JobRef{ref})
		if err == nil {
			st = res[0]
			if st.State.Final() {
				break
			}
		} else if !plugins.IsTransient(err) {
			t.Fatal(err)
		}
		if ctx.Err() != nil {
			t.Fatalf("job never finished; last status %+v, err %v", st, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if st.State != plugins.StateFailed || st.ExitCode == nil || *st.ExitCode != 7 {
		t.Errorf("final status %+v (exit %v), want failed with exit 7", st, st.ExitCode)
	}
	if p := host.Plugins()[0]; p.Restarts < 1 || p.PID == pid {
		t.Errorf("plugin not restarted: %+v", p)
	}
	// Submitting again (as after a crash) returns the same job.
	again, err := s.Submit(ctx, req)
	if err != nil || again.JobID != sub.JobID || !again.Existing {
		t.Errorf("repeated submit: %+v, %v; want job %s, Existing", again, err, sub.JobID)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Logf("%s", p); return len(p), nil }
