//go:build linux

package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"hpcbot/bot/tgtest"
	"hpcbot/internal/testbed"
	"hpcbot/plugins/shellquote"
	"hpcbot/scheduler/nextcloud/nctest"
	"hpcbot/store"
)

// e2eLogChat is the log chat of the fault tests' installations: it hears the
// reason behind a waiting calculation, which the user hears only as a code.
const e2eLogChat = -7900

// faultWorld is a world whose one cluster is reached through an sshd of the
// test's own (which the test stops and starts; the bed's shared sshd stays up
// for every other test and for the test's own look at Slurm), with a log chat.
type faultWorld struct {
	*world
	sshd *testbed.SSHD
	user tgtest.User
}

// newFaultWorld builds a faultWorld for user (seeded, approved); with
// downloads != "", download_path is that folder. The daemon is not started.
func newFaultWorld(t *testing.T, user tgtest.User, downloads string) *faultWorld {
	t.Helper()
	bed := testbed.SlurmAccounting(t)
	// Before newWorld: its cleanup (which kills the daemon) runs first, and the
	// sshd goes only after the daemon.
	sshd := testbed.OwnSSHD(t)
	w := newWorld(t)
	w.editConfig(fmt.Sprintf("port = %d\n", bed.Port), fmt.Sprintf("port = %d\n", sshd.Port))
	w.editConfig(fmt.Sprintf("known_hosts = %q\n", bed.KnownHosts), fmt.Sprintf("known_hosts = %q\n", sshd.KnownHosts))
	w.editConfig("[bot]\n", fmt.Sprintf("[bot]\nlog_chat_id = %d\n", e2eLogChat))
	if downloads != "" {
		w.editConfig("download_path = \"downloads\"\n", fmt.Sprintf("download_path = %q\n", downloads))
	}
	w.seedUser(user)
	return &faultWorld{world: w, sshd: sshd, user: user}
}

// editConfig replaces the one occurrence of old in the config with new.
func (w *world) editConfig(old, new string) {
	w.t.Helper()
	data, err := os.ReadFile(w.cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	if n := strings.Count(string(data), old); n != 1 {
		w.t.Fatalf("config: %q occurs %d times, want 1", old, n)
	}
	if err := os.WriteFile(w.cfg, []byte(strings.Replace(string(data), old, new, 1)), 0o600); err != nil {
		w.t.Fatal(err)
	}
}

// send pushes input as a document from the user in their private chat.
func (fw *faultWorld) send(input, script string) int64 {
	return fw.tg.PushDocument(fw.user, tgtest.Private(fw.user), input, []byte(script), "")
}

// notices returns the texts sent to the user about input whose words after
// "Calculation #N (input) " match what ("waits: ", "goes on", "is on ", "finished: ").
func (fw *faultWorld) notices(input, what string) []string {
	re := regexp.MustCompile(`^Calculation <b>#\d+</b> \(` + regexp.QuoteMeta(input) + `\) ` + what)
	var out []string
	for _, c := range fw.tg.Sent(fw.user.ID) {
		if re.MatchString(c.Text()) {
			out = append(out, c.Text())
		}
	}
	return out
}

// waitNotice waits for the first notice about input matching what.
func (fw *faultWorld) waitNotice(input, what string) string {
	fw.t.Helper()
	var got []string
	fw.until(fmt.Sprintf("a %q notice for %s", what, input), 50*time.Millisecond, func() bool {
		got = fw.notices(input, what)
		return len(got) > 0
	})
	return got[0]
}

// mergedLineRx starts each line of a merged log chat message: its time.
var mergedLineRx = regexp.MustCompile(`^<code>\d\d:\d\d:\d\d</code> `)

// logChat returns what the log chat heard that contains text: each message,
// or each line of a merged one (lines that waited for the chat), without its time.
func (fw *faultWorld) logChat(text string) []string {
	var out []string
	for _, c := range fw.tg.Sent(e2eLogChat) {
		msgs := []string{c.Text()}
		if mergedLineRx.MatchString(c.Text()) {
			msgs = strings.Split(c.Text(), "\n")
		}
		for _, m := range msgs {
			if m = mergedLineRx.ReplaceAllString(m, ""); strings.Contains(m, text) {
				out = append(out, m)
			}
		}
	}
	return out
}

// checkLogChat waits for the log chat to hear, once, that calculation id waits
// with code and a reason that contains reason.
func (fw *faultWorld) checkLogChat(id uint64, code, reason string) {
	fw.t.Helper()
	prefix := fmt.Sprintf("#%d ", id)
	var got []string
	fw.until("the log chat to hear why #"+fmt.Sprint(id)+" waits", 50*time.Millisecond, func() bool {
		got = nil
		for _, m := range fw.logChat(" error " + code + ": ") {
			if strings.HasPrefix(m, prefix) {
				got = append(got, m)
			}
		}
		return len(got) > 0
	})
	if len(got) != 1 || !strings.Contains(got[0], reason) {
		fw.t.Errorf("log chat heard %q about #%d, want one line with %s and %q", got, id, code, reason)
	}
}

// checkDelivered waits for the finished message of input (sent as update upd)
// and for Slurm's accounting to show its job (slurmdbd records a job that
// ended within a second a little after squeue forgets it), then checks the
// world's invariants: one calculation, notified with exit code 0, one job,
// each file uploaded once, one share, one accepted reply, one finished message.
func (fw *faultWorld) checkDelivered(input string, upd int64) {
	fw.t.Helper()
	fw.waitFinished(fw.user.ID, input)
	c := fw.one(input)
	name := fmt.Sprintf("hpcbot-%d", c.ID)
	fw.until("Slurm accounting to show job "+c.JobID+" of "+name, 200*time.Millisecond, func() bool {
		return c.JobID != "" && slices.Contains(fw.jobsNamed(name), c.JobID)
	})
	fw.checkInvariants(fw.user.ID, map[string]int64{input: upd}, false)
}

// one returns the only calculation of input in the store.
func (fw *faultWorld) one(input string) store.Calculation {
	fw.t.Helper()
	cs := byInput(fw.snapshot(), input)
	if len(cs) != 1 {
		fw.t.Fatalf("%d calculations of %s, want 1: %+v", len(cs), input, cs)
	}
	return cs[0]
}

// checkNotices asserts how many waiting and resumed notices input got, and
// exactly one finished message; that the job is on the cluster ("is on") is
// no message but what the calculation's card said (an edit), never a message.
func (fw *faultWorld) checkNotices(input string, waits, resumed int) {
	fw.t.Helper()
	for _, n := range []struct {
		what string
		want int
	}{{"waits: ", waits}, {"goes on", resumed}, {"is on ", 0}, {"finished: ", 1}} {
		if got := fw.notices(input, n.what); len(got) != n.want {
			fw.t.Errorf("%s: %d %q notices, want %d: %q", input, len(got), n.what, n.want, got)
		}
	}
	re := regexp.MustCompile(`^Calculation <b>#\d+</b> \(` + regexp.QuoteMeta(input) + `\) is on `)
	on := 0
	for _, c := range fw.tg.Calls("editMessageText") {
		if c.OK() && c.ChatID() == fw.user.ID && re.MatchString(c.Text()) {
			on++
		}
	}
	if on == 0 {
		fw.t.Errorf("%s: the card never said that the job is on the cluster", input)
	}
}

// remoteSum is the SHA-256 of a file in a calculation's folder on the bed.
func (fw *faultWorld) remoteSum(folder, name string) string {
	fw.t.Helper()
	out := fw.remote("sha256sum " + shellquote.Quote(path.Join(fw.upload, folder, name)))
	sum, _, _ := strings.Cut(out, " ")
	return sum
}

// checkIntact asserts that name reached the local folder and the cloud as it is
// on the cluster, with size bytes.
func (fw *faultWorld) checkIntact(c store.Calculation, name string, size int) {
	fw.t.Helper()
	want := fw.remoteSum(c.Folder, name)
	local, err := os.ReadFile(filepath.Join(c.LocalDir, name))
	if err != nil || len(local) != size {
		fw.t.Errorf("%s in the local folder: %d bytes, %v; want %d", name, len(local), err, size)
	}
	cloud, err := fw.nc.ReadFile("hpc_results/" + c.Folder + "/" + name)
	sum := sha256.Sum256(cloud)
	if err != nil || hex.EncodeToString(sum[:]) != want || !bytes.Equal(cloud, local) {
		fw.t.Errorf("%s in the cloud (%d bytes, %v) is not the cluster's (sha256 %s)", name, len(cloud), err, want)
	}
}

// TestE2EFaults is issue 5's fault test: the real daemon, one cluster behind an
// sshd of the test's own plus the bed's Slurm, the fake Telegram and Nextcloud.
// The login node goes away during staging, during the submission, while a job
// runs (polls) and during the fetch; the cloud answers 500 or hangs; the bot's disk is full
// when results come back. Each calculation waits (the user told once, when the
// wait is long enough to matter), and ends delivered once after the recovery:
// one Slurm job, one upload of each file, one share, one finished message.
//
// The subtests run in parallel, each with its own installation and sshd; the
// waits are sshc's reconnect backoff (15 s) and the scheduler's retry backoff
// (15 s doubling, with jitter), so the whole takes one to two minutes.
func TestE2EFaults(t *testing.T) {
	testbed.SlurmAccounting(t)

	// The login node is down when the calculation arrives: it waits in
	// received, the user is told once why, and it goes on when sshd is back.
	t.Run("sshd-down-stage", func(t *testing.T) {
		t.Parallel()
		fw := newFaultWorld(t, e2eUser(7601, "Stas"), "")
		fw.start()
		fw.sshd.Stop(t)
		const input = "fstage.sh"
		upd := fw.send(input, "echo stage > r.txt\n")
		wait := fw.waitNotice(input, "waits: ")
		if !strings.Contains(wait, "the cluster cannot be reached.") {
			t.Errorf("waiting notice %q: want the cluster unreachable", wait)
		}
		c := fw.one(input)
		if c.State != store.StateReceived || c.WaitingSince.IsZero() || !c.WaitNotified || c.JobID != "" {
			t.Fatalf("while sshd is down: #%d %s, waiting since %v, told %v, job %q; want received, waiting, told, no job",
				c.ID, c.State, c.WaitingSince, c.WaitNotified, c.JobID)
		}
		fw.checkLogChat(c.ID, "cluster_unreachable", "unreachable")
		fw.sshd.Start(t)
		fw.checkDelivered(input, upd)
		fw.checkNotices(input, 1, 1)
	})

	// The login node goes away while the submission is in flight (the submit
	// wrapper took its lock on the cluster), or just after it if sbatch is
	// quicker than the stop: once sshd is back the calculation has exactly one
	// job, whichever way the interrupted Submit ended.
	t.Run("sshd-down-submit", func(t *testing.T) {
		t.Parallel()
		fw := newFaultWorld(t, e2eUser(7607, "Gleb"), "")
		fw.start()
		const input = "fsubmit.sh"
		upd := fw.send(input, "echo submit > r.txt\n")
		seen := fw.spinUntil(`for d in *_fsubmit; do if [ -d "$d/.hpcbot-submit" ]; then echo "lock taken; in it: $(ls -A "$d/.hpcbot-submit" | tr '\n' ' ')"; exit 0; fi; done`)
		fw.sshd.Stop(t)
		c := fw.one(input)
		t.Logf("sshd stopped on seeing the submit %s; then #%d %s, job %q, attempts %d", seen, c.ID, c.State, c.JobID, c.Attempts)
		time.Sleep(3 * time.Second)
		fw.sshd.Start(t)
		fw.checkDelivered(input, upd)
		waits := fw.notices(input, "waits: ")
		if len(waits) > 1 || len(fw.notices(input, "goes on")) != len(waits) {
			t.Errorf("waiting notices %q, resumed %q: want at most one, each resumed", waits, fw.notices(input, "goes on"))
		}
	})

	// The login node goes away for ~10 s while the job runs: polls fail, the job
	// goes on in Slurm, and the daemon follows it to its end once sshd is back.
	t.Run("sshd-down-poll", func(t *testing.T) {
		t.Parallel()
		fw := newFaultWorld(t, e2eUser(7602, "Timur"), "")
		fw.start()
		const input = "fpoll.sh"
		upd := fw.send(input, "sleep 6; echo poll > r.txt\n")
		var job slurmJob
		fw.until("the job running", 100*time.Millisecond, func() bool {
			for _, j := range fw.queued() {
				if strings.HasSuffix(strings.TrimRight(j.WorkDir, "/"), "_fpoll") && j.State == "RUNNING" {
					job = j
					return true
				}
			}
			return false
		})
		fw.sshd.Stop(t)
		time.Sleep(10 * time.Second)
		mid := fw.one(input)
		t.Logf("job %s running; after 10 s without sshd: #%d %s (attempts %d)", job.ID, mid.ID, mid.State, mid.Attempts)
		fw.sshd.Start(t)
		fw.checkDelivered(input, upd)
		if c := fw.one(input); c.JobID != job.ID {
			t.Errorf("stored job %s, want %s", c.JobID, job.ID)
		}
		// A job's polls failing is the cluster's trouble, not the calculation's:
		// at most one waiting notice, and a resumed one for each.
		waits, resumed := fw.notices(input, "waits: "), fw.notices(input, "goes on")
		t.Logf("notices while the job ran without sshd: %d waiting, %d resumed", len(waits), len(resumed))
		if len(waits) > 1 || len(resumed) != len(waits) {
			t.Errorf("%d waiting and %d resumed notices, want at most one of each, as many of both: %q %q", len(waits), len(resumed), waits, resumed)
		}
	})

	// The login node goes away while the results come back (the first bytes of
	// big.txt are in the local folder), or just before if the fetch is quicker
	// than the look: the fetch is redone once sshd is back, and the file
	// arrives whole.
	t.Run("sshd-down-fetch", func(t *testing.T) {
		t.Parallel()
		fw := newFaultWorld(t, e2eUser(7603, "Ulyana"), "")
		fw.start()
		const input, size = "ffetch.sh", 8000000
		upd := fw.send(input, fmt.Sprintf("head -c %d /dev/urandom > big.txt; echo fetch > r.txt\n", size))
		dl := filepath.Join(fw.dir, "downloads")
		var seen string
		fw.until("the fetch to begin", time.Millisecond, func() bool {
			dirs, _ := filepath.Glob(filepath.Join(dl, "*_ffetch"))
			for _, d := range dirs {
				files, _ := os.ReadDir(d)
				for _, f := range files {
					if strings.Contains(f.Name(), "big.txt") {
						if fi, err := f.Info(); err == nil {
							seen = fmt.Sprintf("%s:%d", f.Name(), fi.Size())
						}
						return true
					}
				}
			}
			return false
		})
		fw.sshd.Stop(t)
		c := fw.one(input)
		caught := "caught mid-fetch"
		if c.State != store.StateSucceeded || c.Attempts == 0 {
			caught = "the fetch may have been quicker than the stop"
		}
		t.Logf("sshd stopped on seeing %s; then #%d %s, attempts %d (%s)", seen, c.ID, c.State, c.Attempts, caught)
		time.Sleep(3 * time.Second)
		fw.sshd.Start(t)
		fw.checkDelivered(input, upd)
		c = fw.one(input)
		fw.checkIntact(c, "big.txt", size)
		waits := fw.notices(input, "waits: ")
		if len(waits) > 1 || len(fw.notices(input, "goes on")) != len(waits) {
			t.Errorf("waiting notices %q, resumed %q: want at most one, each resumed", waits, fw.notices(input, "goes on"))
		}
		for _, w := range waits {
			if !strings.Contains(w, "the cluster cannot be reached.") {
				t.Errorf("waiting notice %q: want the cluster unreachable", w)
			}
		}
	})

	// The cloud answers 500 to three PUTs in a row, then works: the delivery
	// fails, not the calculation (the user told once how the job ended and
	// that the results are held because the cloud is unavailable), and is
	// retried; every file is stored once.
	t.Run("webdav-500", func(t *testing.T) {
		t.Parallel()
		fw := newFaultWorld(t, e2eUser(7604, "Vera"), "")
		const failures = 3
		fw.nc.Inject(nctest.Fault{Method: "PUT", Times: failures, Status: 500})
		fw.start()
		const input = "fdav500.sh"
		upd := fw.send(input, "echo dav > r.txt\n")
		fw.checkDelivered(input, upd)
		fw.checkNotices(input, 0, 0)
		if w := fw.notices(input, "ended: "); len(w) != 1 || !strings.Contains(w[0], "ended: succeeded. The results are safe with the bot") ||
			!strings.Contains(w[0], "the cloud storage is not available.") {
			t.Errorf("delivery failed notices %q: want one, succeeded, results held, the cloud unavailable", w)
		}
		n := 0
		for _, r := range fw.nc.Requests() {
			if r.Method == "PUT" && r.Status == 500 {
				n++
			}
		}
		if n != failures {
			t.Errorf("%d PUTs answered 500, want %d", n, failures)
		}
	})

	// The cloud hangs on a PUT for a few seconds (well within the client's idle
	// timeout), then answers: the upload goes on, no wait is announced.
	t.Run("webdav-hang", func(t *testing.T) {
		t.Parallel()
		fw := newFaultWorld(t, e2eUser(7605, "Yuri"), "")
		fw.nc.Inject(nctest.Fault{Method: "PUT", Hang: true})
		fw.start()
		const input = "fdavhang.sh"
		upd := fw.send(input, "echo hang > r.txt\n")
		select {
		case req := <-fw.nc.Hung():
			t.Logf("hanging: %s", req)
		case <-time.After(e2eGuard):
			t.Fatal("no PUT reached the cloud")
		}
		time.Sleep(3 * time.Second)
		fw.nc.ReleaseAll()
		fw.checkDelivered(input, upd)
		fw.checkNotices(input, 0, 0)
	})

	// download_path is a 4 MiB tmpfs and the result is 6 MB. The scheduler
	// fetches only above a reserve of free space (DefaultDiskReserve, 64 MiB,
	// not configurable): with less free, the fetch is not tried, and the
	// calculation waits with code fetch_failed (the user told once that the
	// results could not be brought back, the log chat that the bot's disk is
	// full). Once the disk has room (the tmpfs grown to 128 MiB), it is
	// fetched and delivered whole.
	t.Run("disk-full-fetch", func(t *testing.T) {
		t.Parallel()
		testbed.Require(t, "a tmpfs of the test's own (needs root)", os.Geteuid() == 0)
		mnt := t.TempDir()
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", mnt).CombinedOutput(); err != nil {
			t.Fatalf("mount a tmpfs: %v: %s", err, out)
		}
		// Registered before the world: it runs after the daemon is gone.
		t.Cleanup(func() {
			if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
				t.Errorf("umount %s: %v: %s", mnt, err, out)
			}
		})
		fw := newFaultWorld(t, e2eUser(7606, "Zoya"), mnt)
		fw.start()
		const input, size = "fdisk.sh", 6000000
		upd := fw.send(input, fmt.Sprintf("head -c %d /dev/urandom > big.txt; echo disk > r.txt\n", size))
		wait := fw.waitNotice(input, "waits: ")
		if !strings.Contains(wait, "the results could not be brought back from the cluster.") {
			t.Errorf("waiting notice %q: want the results not brought back (fetch_failed)", wait)
		}
		c := fw.one(input)
		if c.State != store.StateSucceeded || c.WaitingSince.IsZero() || !c.WaitNotified {
			t.Errorf("with the disk full: #%d %s, waiting since %v, told %v; want succeeded, waiting, told",
				c.ID, c.State, c.WaitingSince, c.WaitNotified)
		}
		fw.checkLogChat(c.ID, "fetch_failed", "the bot's disk is full")
		if _, err := os.Stat(filepath.Join(c.LocalDir, "big.txt")); err == nil {
			t.Errorf("big.txt was fetched into a full disk")
		}
		if out, err := exec.Command("mount", "-o", "remount,size=128m", mnt).CombinedOutput(); err != nil {
			t.Fatalf("grow the tmpfs: %v: %s", err, out)
		}
		fw.checkDelivered(input, upd)
		fw.checkNotices(input, 1, 1)
		fw.checkIntact(fw.one(input), "big.txt", size)
	})
}
