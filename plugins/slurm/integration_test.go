package slurm_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"hpcbot/internal/testbed"
	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
	"hpcbot/plugins/slurm"
	"hpcbot/plugins/sshc"
)

// noAccounting is the Slurm dialect on a cluster without slurmdbd: its sacct reads
// a copy of slurm.conf without accounting and fails exactly as there, while
// squeue, scontrol and sbatch talk to the bed's real slurmctld.
type noAccounting struct {
	slurm.Dialect
	conf string
}

func (d noAccounting) FinishedCommand(jobs []plugins.JobRef) string {
	return "export SLURM_CONF=" + d.conf + "\n" + d.Dialect.FinishedCommand(jobs)
}

type sbed struct {
	t      *testing.T
	s      *cluster.Scheduler
	tr     cluster.Transport
	upload string // relative to the test user's home, as many configs have it
	conn   plugins.Connection
}

func newSlurmBed(t *testing.T, accounting bool) *sbed {
	t.Helper()
	return newSlurmBedOn(t, testbed.Slurm(t), accounting, sshc.Transport)
}

func newSlurmBedOn(t *testing.T, env testbed.SSHEnv, accounting bool, newTr func(plugins.Cluster) (cluster.Transport, error)) *sbed {
	t.Helper()
	conn := plugins.Connection{Host: env.Host, Port: env.Port, User: env.User, KeyPath: env.KeyPath, KnownHosts: env.KnownHosts}
	b := &sbed{t: t, conn: conn, upload: path.Join("hpcbot-it", fmt.Sprintf("%s-%d", strings.ReplaceAll(t.Name(), "/", "_"), time.Now().UnixNano()))}
	tr, err := sshc.New(conn, sshc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b.tr = tr
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		b.tr.RemoveAll(ctx, b.upload)
		b.tr.Close()
	})
	var d cluster.Dialect = slurm.NewDialect()
	if !accounting {
		conf := path.Join(b.upload, "noacct.conf")
		b.run("mkdir -p " + b.upload + " && sed '/^AccountingStorage/d; /^JobAcctGather/d' /etc/slurm/slurm.conf >" + conf)
		d = noAccounting{Dialect: slurm.NewDialect(), conf: "$HOME/" + conf}
	}
	b.s = cluster.New(d, newTr, cluster.WithSubmitWait(0), cluster.WithLogger(slog.New(slog.DiscardHandler)))
	if err := b.s.Configure(ctxT(t), plugins.Cluster{Label: "bed", Scheduler: "slurm", UploadPath: b.upload, Connection: conn}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.s.Close() })
	return b
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func (b *sbed) run(cmd string) cluster.RunResult {
	b.t.Helper()
	r, err := b.tr.Run(ctxT(b.t), cmd)
	if err != nil {
		b.t.Fatalf("%s: %v", cmd, err)
	}
	return r
}

func (b *sbed) stage(calc uint64, folder string, files map[string]string) {
	b.t.Helper()
	local := filepath.Join(b.t.TempDir(), folder)
	if err := os.MkdirAll(local, 0o755); err != nil {
		b.t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(local, name), []byte(body), 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
	if err := b.s.Stage(ctxT(b.t), plugins.StageRequest{CalcID: calc, LocalDir: local, Folder: folder}); err != nil {
		b.t.Fatal(err)
	}
}

func batchReq(calc uint64, folder string, argv ...string) plugins.SubmitRequest {
	return plugins.SubmitRequest{CalcID: calc, Folder: folder, Argv: argv, Launch: plugins.LaunchBatch,
		JobName: fmt.Sprintf("hpcbot-it-%d-%d", calc, time.Now().UnixNano()%1e6), Comment: "hpcbot user=7 org=\"test org\"",
		Resources: map[string]string{"ntasks": "1"}}
}

func (b *sbed) submit(req plugins.SubmitRequest) plugins.JobRef {
	b.t.Helper()
	res, err := b.s.Submit(ctxT(b.t), req)
	if err != nil {
		b.t.Fatalf("submit: %v", err)
	}
	if res.Existing || res.JobID == "" {
		b.t.Fatalf("submit: %+v", res)
	}
	return plugins.JobRef{CalcID: req.CalcID, JobID: res.JobID, Folder: req.Folder, Launch: req.Launch}
}

func (b *sbed) poll(job plugins.JobRef) plugins.JobStatus {
	b.t.Helper()
	st, err := b.s.Poll(ctxT(b.t), []plugins.JobRef{job})
	if err != nil {
		b.t.Fatalf("poll: %v", err)
	}
	return st[0]
}

// waitFor polls until cond holds; the deadline only catches a hang.
func (b *sbed) waitFor(job plugins.JobRef, what string, cond func(plugins.JobStatus) bool) plugins.JobStatus {
	b.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		sts, err := b.s.Poll(ctxT(b.t), []plugins.JobRef{job})
		if err != nil {
			if !plugins.IsTransient(err) || time.Now().After(deadline) {
				b.t.Fatalf("poll: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
			continue
		}
		st := sts[0]
		if st.State == plugins.StateLost || st.State == plugins.StateUnknown {
			b.t.Fatalf("job %s %s while waiting until %s", job.JobID, st.State, what)
		}
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("job %s never %s; last %+v", job.JobID, what, st)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func final(s plugins.JobStatus) bool { return s.State.Final() }

// forgotten waits until neither squeue nor scontrol knows the job (MinJobAge=2).
func (b *sbed) forgotten(id string) {
	b.t.Helper()
	for i := 0; i < 240; i++ {
		r := b.run("squeue --noheader --states=all --jobs=" + id + "," + id + " -o %i; scontrol show job -o " + id + " 2>&1")
		if strings.TrimSpace(string(r.Stdout)) == "slurm_load_jobs error: Invalid job id specified" {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	b.t.Fatalf("Slurm never forgot job %s", id)
}

func TestSlurmCheck(t *testing.T) {
	b := newSlurmBed(t, true)
	res, err := b.s.Check(ctxT(t))
	if err != nil || res.Scheduler != "slurm 22.05.8" || res.Host == "" {
		t.Fatalf("check: %+v, %v", res, err)
	}
}

// TestSlurmBatchExitCodes: exit 0 and 3, with and without accounting; the outcome is
// read once Slurm has forgotten the job (MinJobAge=2): from sacct, or from the
// exit-code file the batch script wrote.
func TestSlurmBatchExitCodes(t *testing.T) {
	for _, accounting := range []bool{true, false} {
		if accounting && os.Getenv(testbed.EnvSlurmAccounting) != "1" {
			continue
		}
		t.Run(fmt.Sprintf("accounting=%v", accounting), func(t *testing.T) {
			b := newSlurmBed(t, accounting)
			for i, code := range []int{0, 3} {
				folder := fmt.Sprintf("exit%d", code)
				b.stage(uint64(100+i), folder, map[string]string{"in.inp": "x"})
				job := b.submit(batchReq(uint64(100+i), folder, "sh", "-c", fmt.Sprintf("cat in.inp > result.out; exit %d", code)))
				b.forgotten(job.JobID)
				st := b.poll(job)
				wantState := plugins.StateSucceeded
				if code != 0 {
					wantState = plugins.StateFailed
				}
				if st.State != wantState || st.ExitCode == nil || *st.ExitCode != code {
					t.Errorf("exit %d: %+v (exit %v)", code, st, st.ExitCode)
				}
			}
		})
	}
}

// TestSlurmLostWithoutEvidence: a wrapper job (no exit-code file) on a cluster
// without accounting, polled only after Slurm forgot it, is lost, never succeeded.
func TestSlurmLostWithoutEvidence(t *testing.T) {
	b := newSlurmBed(t, false)
	b.stage(110, "wrap", map[string]string{"x": ""})
	res, err := b.s.Submit(ctxT(t), plugins.SubmitRequest{CalcID: 110, Folder: "wrap", Launch: plugins.LaunchWrapper,
		Argv: []string{"sbatch", "--job-name=hpcbot-it-wrap", "--wrap", "exit 0"}})
	if err != nil {
		t.Fatal(err)
	}
	job := plugins.JobRef{CalcID: 110, JobID: res.JobID, Folder: "wrap", Launch: plugins.LaunchWrapper}
	b.forgotten(job.JobID)
	if st := b.poll(job); st.State != plugins.StateLost {
		t.Fatalf("vanished wrapper job: %+v, want lost", st)
	}
}

func TestSlurmWrapperSubmit(t *testing.T) {
	b := newSlurmBed(t, os.Getenv(testbed.EnvSlurmAccounting) == "1")
	b.stage(120, "wrapper", map[string]string{"x": ""})
	name := fmt.Sprintf("hpcbot-it-wrapper-%d", time.Now().UnixNano())
	req := plugins.SubmitRequest{CalcID: 120, Folder: "wrapper", Launch: plugins.LaunchWrapper,
		Argv: []string{"sbatch", "--job-name=" + name, "--wrap", "sleep 2; exit 4"}}
	first, err := b.s.Submit(ctxT(t), req)
	if err != nil || first.Existing || !strings.Contains(first.Output, "Submitted batch job "+first.JobID) {
		t.Fatalf("submit: %+v, %v", first, err)
	}
	again, err := b.s.Submit(ctxT(t), req)
	if err != nil || again.JobID != first.JobID || !again.Existing {
		t.Fatalf("repeat: %+v, %v; want job %s existing", again, err, first.JobID)
	}
	job := plugins.JobRef{CalcID: 120, JobID: first.JobID, Folder: "wrapper", Launch: plugins.LaunchWrapper}
	st := b.waitFor(job, "finished", final)
	if st.State != plugins.StateFailed || st.ExitCode == nil || *st.ExitCode != 4 {
		t.Errorf("wrapper job: %+v", st)
	}
	out := b.run("squeue --me --noheader --states=all --name=" + name + " -o %i; sacct -X -n -P --name=" + name + " -o JobID 2>/dev/null")
	if ids := strings.Fields(string(out.Stdout)); len(slices.Compact(slices.Sorted(slices.Values(ids)))) > 1 {
		t.Errorf("several jobs started: %v", ids)
	}
}

// TestSlurmSubmitOneCommand: a batch submission over SSH is one remote command
// and no file transfer (the SFTP session, which any transfer opens and keeps
// open, is never opened), and the batch script arrives byte for byte: the
// program gets exactly its arguments, quotes, a here-document delimiter, a
// command substitution, CR, LF and non-ASCII bytes included.
func TestSlurmSubmitOneCommand(t *testing.T) {
	var cl *sshc.Client
	b := newSlurmBedOn(t, testbed.Slurm(t), os.Getenv(testbed.EnvSlurmAccounting) == "1", func(c plugins.Cluster) (cluster.Transport, error) {
		var err error
		cl, err = sshc.New(c.Connection, sshc.Options{})
		return cl, err
	})
	// Staged through the other connection, so that the scheduler's own sees the submit only.
	local := t.TempDir()
	if err := os.WriteFile(filepath.Join(local, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := path.Join(b.upload, "one")
	if err := b.tr.PutDir(ctxT(t), local, dir); err != nil {
		t.Fatal(err)
	}
	args := []string{"it's", `a'\''b`, "EOF", "'EOF'", "$(id)", "`id`", `\`, "%s %b", "cr\r", "two\nlines", "tab\there", "ünï €", ""}
	req := batchReq(150, "one", append([]string{"printf", "[%s]"}, args...)...)
	job := b.submit(req)
	st := cl.Stats()
	if st.Commands != 1 || st.Handshakes != 1 || st.ChannelsHighWater != 1 || st.ChannelsOpen != 0 {
		t.Errorf("submit: %d commands, %d handshakes, at most %d channels open, %d still open; want one command on one channel, no SFTP session",
			st.Commands, st.Handshakes, st.ChannelsHighWater, st.ChannelsOpen)
	}
	want, err := slurm.NewDialect().BatchScript(req, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.run("cat " + path.Join(dir, cluster.BatchScriptName)).Stdout; string(got) != string(want) {
		t.Errorf("batch script on the cluster:\n%q\nwant\n%q", got, want)
	}
	if st := b.waitFor(job, "finished", final); st.State != plugins.StateSucceeded {
		t.Fatalf("job: %+v", st)
	}
	var wantOut strings.Builder
	for _, a := range args {
		wantOut.WriteString("[" + a + "]")
	}
	if got := b.run("cat " + path.Join(dir, req.JobName+".out")).Stdout; string(got) != wantOut.String() {
		t.Errorf("the program printed %q, want %q", got, wantOut.String())
	}
}

func TestSlurmCancelRunning(t *testing.T) {
	b := newSlurmBed(t, false)
	b.stage(130, "cancel", map[string]string{"x": ""})
	job := b.submit(batchReq(130, "cancel", "sleep", "300"))
	b.waitFor(job, "running", func(s plugins.JobStatus) bool { return s.State == plugins.StateRunning })
	if err := b.s.Cancel(ctxT(t), job); err != nil {
		t.Fatal(err)
	}
	st := b.waitFor(job, "finished", final)
	if st.State != plugins.StateCancelled {
		t.Errorf("after cancel: %+v", st)
	}
	if err := b.s.Cancel(ctxT(t), job); err != nil {
		t.Errorf("cancel of a cancelled job: %v", err)
	}
	// Once Slurm forgot it, the cancel marker still tells (no accounting needed).
	b.forgotten(job.JobID)
	if st := b.poll(job); st.State != plugins.StateCancelled {
		t.Errorf("forgotten cancelled job: %+v", st)
	}
}

func TestSlurmSubmitRepeatedAndAdopted(t *testing.T) {
	b := newSlurmBed(t, os.Getenv(testbed.EnvSlurmAccounting) == "1")
	b.stage(140, "repeat", map[string]string{"x": ""})
	req := batchReq(140, "repeat", "sleep", "30")
	job := b.submit(req)
	again, err := b.s.Submit(ctxT(t), req)
	if err != nil || again.JobID != job.JobID || !again.Existing {
		t.Fatalf("repeat: %+v, %v", again, err)
	}
	// Simulate a login node that rebooted during sbatch: the lock exists, the
	// outcome was never recorded. The job is found by name and folder and adopted.
	b.run("cd " + path.Join(b.upload, "repeat") + " && rm " + cluster.SubmitRCFile + " " + cluster.SubmitOutFile)
	adopted, err := b.s.Submit(ctxT(t), req)
	if err != nil || adopted.JobID != job.JobID || !adopted.Existing {
		t.Fatalf("after a simulated crash: %+v, %v; want job %s adopted", adopted, err, job.JobID)
	}
	b.s.Cancel(ctxT(t), job)

	// A crash before sbatch ran: nothing to adopt, and no second launch.
	b.stage(141, "crashed", map[string]string{"x": ""})
	b.run("mkdir " + path.Join(b.upload, "crashed", cluster.SubmitLockDir))
	_, err = b.s.Submit(ctxT(t), batchReq(141, "crashed", "true"))
	if !plugins.IsTransient(err) {
		t.Fatalf("crash before launch: %v, want a transient error", err)
	}
}

func TestSlurmFetch(t *testing.T) {
	b := newSlurmBed(t, os.Getenv(testbed.EnvSlurmAccounting) == "1")
	b.stage(150, "fetch", map[string]string{"in.inp": "x"})
	req := batchReq(150, "fetch", "sh", "-c", "printf 123 > a.out; printf 1234567 > big.out; printf x > c.chk; printf y > d.tmp; echo done")
	job := b.submit(req)
	if st := b.waitFor(job, "finished", final); st.State != plugins.StateSucceeded {
		t.Fatalf("status %+v", st)
	}
	local := filepath.Join(t.TempDir(), "res")
	res, err := b.s.Fetch(ctxT(t), plugins.FetchRequest{Folder: "fetch", LocalDir: local, Extensions: []string{".out"}, MaxSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a.out", req.JobName + ".out"}
	if !slices.Equal(res.Files, want) {
		t.Errorf("fetched %v, want %v (skipped %+v)", res.Files, want, res.Skipped)
	}
	if got, _ := os.ReadFile(filepath.Join(local, req.JobName+".out")); string(got) != "done\n" {
		t.Errorf("job output %q", got)
	}
	var skipped []string
	for _, s := range res.Skipped {
		skipped = append(skipped, s.Path+":"+s.Code)
	}
	for _, w := range []string{"big.out:" + plugins.SkipTooLarge, "c.chk:" + plugins.SkipNotWhitelisted, "d.tmp:" + plugins.SkipTemporary} {
		if !slices.Contains(skipped, w) {
			t.Errorf("skipped %v lacks %s", skipped, w)
		}
	}
	if err := b.s.Cleanup(ctxT(t), "fetch"); err != nil {
		t.Fatal(err)
	}
}

// TestSlurmSSHDownWhileJobRuns: the login node's sshd goes away while a batch job
// runs; polls fail transiently, and once sshd is back the job is followed to its
// end and its results fetched.
func TestSlurmSSHDownWhileJobRuns(t *testing.T) {
	testbed.Slurm(t)
	own := testbed.OwnSSHD(t)
	b := newSlurmBedOn(t, own.SSHEnv, os.Getenv(testbed.EnvSlurmAccounting) == "1", func(c plugins.Cluster) (cluster.Transport, error) {
		return sshc.New(c.Connection, sshc.Options{BackoffMin: 50 * time.Millisecond, BackoffMax: 500 * time.Millisecond,
			HandshakeLimit: 100, Logger: slog.New(slog.DiscardHandler)})
	})
	b.stage(160, "bounce", map[string]string{"x": ""})
	req := batchReq(160, "bounce", "sh", "-c", "sleep 4; echo survived > result.out")
	job := b.submit(req)
	b.waitFor(job, "running", func(s plugins.JobStatus) bool { return s.State == plugins.StateRunning })
	own.Stop(t)
	if _, err := b.s.Poll(ctxT(t), []plugins.JobRef{job}); !plugins.IsTransient(err) {
		t.Fatalf("poll with sshd down: %v, want a transient error", err)
	}
	own.Start(t)
	if st := b.waitFor(job, "finished", final); st.State != plugins.StateSucceeded {
		t.Fatalf("after sshd came back: %+v", st)
	}
	local := filepath.Join(t.TempDir(), "res")
	res, err := b.s.Fetch(ctxT(t), plugins.FetchRequest{Folder: "bounce", LocalDir: local, Files: []string{"result.out"}})
	if err != nil || !slices.Equal(res.Files, []string{"result.out"}) {
		t.Fatalf("fetch: %+v, %v", res, err)
	}
}

// TestSlurmTail: Tail on the test bed's Slurm over SSH: no output before the
// job ran, then the end of an output far above the byte cap, the error
// stream of the failed job cleaned of escape sequences and invalid bytes, and
// a clear "not found" for a folder that is gone. Poll names the node.
func TestSlurmTail(t *testing.T) {
	b := newSlurmBed(t, false)
	b.stage(300, "tail", map[string]string{"in.inp": "x"})
	req := batchReq(300, "tail", "sh", "-c",
		`i=0; while [ $i -lt 3000 ]; do echo "step $i energy -76.0$i"; i=$((i+1)); done; printf 'fatal: \033[31mSCF\033[0m \377 failed\n' >&2; exit 2`)
	tailReq := plugins.TailRequest{CalcID: 300, Folder: "tail", JobName: req.JobName, MaxLines: 30, MaxBytes: 16 << 10}
	if _, err := b.s.Tail(ctxT(t), tailReq); plugins.KindOf(err) != plugins.KindNotFound {
		t.Fatalf("Tail before the job ran: %v, want kind not found", err)
	}
	job := b.submit(req)
	st := b.waitFor(job, "the end", final)
	if st.State != plugins.StateFailed || st.Node == "" {
		t.Errorf("final status %+v: want failed, on a named node", st)
	}
	tailReq.JobID = job.JobID
	tailReq.PreferError = true
	res, err := b.s.Tail(ctxT(t), tailReq)
	if err != nil || res.Text != "fatal: SCF \uFFFD failed" || res.Stream != plugins.StreamError || res.Truncated {
		t.Errorf("Tail of the failed job = %+v, %v", res, err)
	}
	tailReq.PreferError = false
	res, err = b.s.Tail(ctxT(t), tailReq)
	lines := strings.Split(res.Text, "\n")
	if err != nil || len(lines) != 30 || lines[29] != "step 2999 energy -76.02999" || lines[0] != "step 2970 energy -76.02970" ||
		!res.Truncated || res.Stream != plugins.StreamOutput {
		t.Errorf("Tail of the output: %d lines %q…%q, truncated %v, stream %q, %v", len(lines), lines[0], lines[len(lines)-1], res.Truncated, res.Stream, err)
	}
	if _, err := b.s.Tail(ctxT(t), plugins.TailRequest{CalcID: 301, JobID: job.JobID, Folder: "gone", JobName: req.JobName}); plugins.KindOf(err) != plugins.KindNotFound {
		t.Errorf("Tail of a missing folder: %v, want kind not found", err)
	}
}
