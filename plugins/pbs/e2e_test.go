package pbs

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
	"hpcbot/plugins/shellquote"
)

// Stand-in PBS commands for TestSchedulerWithFakePBS. Their output is
// hand-written in the shape of the recorded outputs in testdata (it is not
// recorded output): qsub runs the script detached and prints an id; qstat
// prints JSON (pro) or text (torque) for known ids and "Unknown Job Id" for the
// others. The job's output and error land in the script's -o and -e files
// directly (as with PBS Pro's direct_write), not through a spool.
const fakeQsub = `#!/bin/sh
set -e
n=$(( $(cat "$FAKEPBS/seq" 2>/dev/null || echo 100) + 1 )); echo "$n" > "$FAKEPBS/seq"
id="$n.fakepbs"
echo "$PWD" > "$FAKEPBS/$id.dir"
setsid sh -c 'cd "$1" && PBS_O_WORKDIR="$1" sh "$2" >hpcbot-job.out 2>hpcbot-job.err; echo $? > "$3.tmp"; mv "$3.tmp" "$3"' sh "$PWD" "$1" "$FAKEPBS/$id.exit" </dev/null >/dev/null 2>&1 &
echo "$id"
`

const fakeQstat = `#!/bin/sh
case "$1" in --version)
	if [ "$FAKEFLAVOR" = torque ]; then printf 'Version: 6.1.2\nCommit: 0\n'; else echo 'pbs_version = 19.0.0'; fi; exit 0;;
esac
json=; ids=
for a do case $a in json) json=1;; -*) ;; *) ids="$ids $a";; esac; done
rc=0; first=1
[ -z "$json" ] || printf '{\n    "pbs_version":"19.0.0",\n    "Jobs":{\n'
for id in $ids; do
	if [ ! -f "$FAKEPBS/$id.dir" ] || [ -f "$FAKEPBS/$id.purged" ]; then echo "qstat: Unknown Job Id $id" >&2; rc=153; continue; fi
	if [ -f "$FAKEPBS/$id.exit" ]; then st=F; ex=$(cat "$FAKEPBS/$id.exit"); else st=R; ex=; fi
	if [ -n "$json" ]; then
		[ -n "$first" ] || printf ',\n'; first=
		printf '        "%s":{\n            "job_state":"%s"' "$id" "$st"
		[ -z "$ex" ] || printf ',\n            "Exit_status":%s' "$ex"
		printf '\n        }'
	else
		[ "$st" != F ] || st=C
		printf 'Job Id: %s\n    job_state = %s\n' "$id" "$st"
		[ -z "$ex" ] || printf '    exit_status = %s\n' "$ex"
		echo
	fi
done
[ -z "$json" ] || printf '\n    }\n}\n'
exit $rc
`

// TestSchedulerWithFakePBS drives the generic cluster.Scheduler with this
// dialect over the local transport: Check, Stage, Submit (twice: the second is
// the same job), Poll to completion, and Poll again after qstat forgot the job
// (the exit-code file answers).
func TestSchedulerWithFakePBS(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("no setsid on this host")
	}
	for _, flavor := range []string{"pro", "torque"} {
		t.Run(flavor, func(t *testing.T) {
			// The local transport gives commands a login environment, not the
			// test's, so the stand-ins get their settings written into them.
			state := t.TempDir()
			bin := t.TempDir()
			settings := fmt.Sprintf("FAKEPBS=%s\nFAKEFLAVOR=%s\n", shellquote.Quote(state), flavor)
			for name, body := range map[string]string{"qsub": fakeQsub, "qstat": fakeQstat} {
				body = strings.Replace(body, "#!/bin/sh\n", "#!/bin/sh\n"+settings, 1)
				if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
			ctx := context.Background()
			s := cluster.New(mustNew(t, "pro"), cluster.NewLocalTransport, cluster.WithLogger(slog.New(slog.DiscardHandler)))
			upload := t.TempDir()
			if err := s.Configure(ctx, plugins.Cluster{Label: "fake", Scheduler: "pbs", Flavor: flavor, UploadPath: upload}); err != nil {
				t.Fatal(err)
			}
			check, err := s.Check(ctx)
			if want := map[string]string{"pro": "pbs 19.0.0", "torque": "torque 6.1.2"}[flavor]; err != nil || check.Scheduler != want {
				t.Fatalf("Check = %+v, %v; want %q", check, err, want)
			}
			local := t.TempDir()
			if err := os.WriteFile(filepath.Join(local, "in.txt"), []byte("water\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			folder := "1732640000_1_in"
			if err := s.Stage(ctx, plugins.StageRequest{CalcID: 1, LocalDir: local, Folder: folder}); err != nil {
				t.Fatal(err)
			}
			tailReq := plugins.TailRequest{CalcID: 1, JobID: "101.fakepbs", Folder: folder, JobName: "hpcbot-1", MaxLines: 30, PreferError: true}
			if _, err := s.Tail(ctx, tailReq); plugins.KindOf(err) != plugins.KindNotFound {
				t.Fatalf("Tail before the job wrote anything: %v, want kind not found", err)
			}
			req := plugins.SubmitRequest{CalcID: 1, Folder: folder, Launch: plugins.LaunchBatch, JobName: "hpcbot-1",
				Comment: "hpcbot user=1 org=test", Argv: []string{"sh", "-c", "cat in.txt > out.txt; echo reading; printf 'bad \\033[1minput\\377\\n' >&2; exit 3"},
				Resources: map[string]string{"walltime": "00:10:00"}}
			first, err := s.Submit(ctx, req)
			if err != nil || first.JobID != "101.fakepbs" || first.Existing {
				t.Fatalf("Submit = %+v, %v", first, err)
			}
			again, err := s.Submit(ctx, req)
			if err != nil || again.JobID != first.JobID || !again.Existing {
				t.Fatalf("second Submit = %+v, %v", again, err)
			}
			ref := []plugins.JobRef{{CalcID: 1, JobID: first.JobID, Folder: folder, Launch: plugins.LaunchBatch}}
			var st plugins.JobStatus
			for deadline := time.Now().Add(60 * time.Second); ; {
				got, err := s.Poll(ctx, ref)
				if err != nil {
					t.Fatal(err)
				}
				st = got[0]
				if st.State.Final() || time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			raw := map[string]string{"pro": "F", "torque": "C"}[flavor]
			if st.State != plugins.StateFailed || st.ExitCode == nil || *st.ExitCode != 3 || st.Raw != raw {
				t.Fatalf("final status = %+v", st)
			}
			if b, err := os.ReadFile(filepath.Join(upload, folder, "out.txt")); err != nil || string(b) != "water\n" {
				t.Fatalf("out.txt = %q, %v", b, err)
			}
			// The job failed: Tail shows its error stream, cleaned.
			tail, err := s.Tail(ctx, tailReq)
			if err != nil || tail.Text != "bad input\uFFFD" || tail.Stream != plugins.StreamError || tail.Truncated {
				t.Fatalf("Tail of the failed job = %+v, %v", tail, err)
			}
			tailReq.PreferError = false
			if tail, err := s.Tail(ctx, tailReq); err != nil || tail.Text != "reading" || tail.Stream != plugins.StreamOutput {
				t.Fatalf("Tail of the output = %+v, %v", tail, err)
			}
			// qstat forgets the job: the exit-code file the script wrote answers.
			if err := os.WriteFile(filepath.Join(state, first.JobID+".purged"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := s.Poll(ctx, ref)
			if err != nil || got[0].State != plugins.StateFailed || got[0].ExitCode == nil || *got[0].ExitCode != 3 {
				t.Fatalf("after purge = %+v, %v", got, err)
			}
		})
	}
}
