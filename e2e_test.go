package main

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"hpcbot/bot/tgtest"
	"hpcbot/scheduler/nextcloud/nctest"
	"hpcbot/store"
)

var acceptedRe = regexp.MustCompile(`Calculation <b>#(\d+)</b> accepted`)

// TestE2EHappyPath: a chemist registers in a group (/access), the admin approves
// them, they send a shell script; the real daemon submits it to the bed's Slurm,
// brings the results back, puts them in the fake Nextcloud with one public link,
// and tells the chemist once.
func TestE2EHappyPath(t *testing.T) {
	w := newWorld(t)
	w.start()
	user := e2eUser(7201, "Ivan")

	w.tg.PushText(user, e2eGroup, "/access")
	w.until("the welcome in the group", 50*time.Millisecond, func() bool {
		return sentHas(w.tg, e2eGroup.ID, "Welcome, Ivan")
	})
	w.tg.PushText(e2eAdmin, tgtest.Private(e2eAdmin), "/approve @ivan")
	w.until("the approval", 50*time.Millisecond, func() bool {
		return sentHas(w.tg, e2eAdmin.ID, "is approved") && sentHas(w.tg, user.ID, "You are approved")
	})

	script := "echo 'energy -76.4' > water.txt\necho progress\n"
	upd := w.tg.PushDocument(user, tgtest.Private(user), "water.sh", []byte(script), "")
	var id uint64
	w.until("the accepted reply", 50*time.Millisecond, func() bool {
		for _, c := range w.tg.Sent(user.ID) {
			if m := acceptedRe.FindStringSubmatch(c.Text()); m != nil {
				id, _ = strconv.ParseUint(m[1], 10, 64)
				return true
			}
		}
		return false
	})
	name := fmt.Sprintf("hpcbot-%d", id)
	var jobs []string
	w.until("job "+name+" in Slurm", 200*time.Millisecond, func() bool {
		jobs = w.jobsNamed(name)
		return len(jobs) > 0
	})

	if got := w.waitFinished(user.ID, "water.sh"); got != id {
		t.Fatalf("finished message names #%d, the accepted reply #%d", got, id)
	}
	msgs, _ := w.finished(user.ID, "water.sh")
	if len(msgs) != 1 {
		t.Errorf("%d finished messages, want 1: %q", len(msgs), msgs)
	}
	if !strings.Contains(msgs[0], "succeeded, exit code 0") || !strings.Contains(msgs[0], "Results: "+w.nc.URL+"/s/") {
		t.Errorf("finished message %q: want succeeded, exit code 0 and a public link", msgs[0])
	}
	if n := w.accepted(user.ID, id); n != 1 {
		t.Errorf("%d accepted replies, want 1", n)
	}

	calcs := w.snapshot()
	if len(calcs) != 1 {
		t.Fatalf("%d calculations in the store, want 1", len(calcs))
	}
	c := calcs[0]
	if c.ID != id || c.State != store.StateNotified || c.ExitCode == nil || *c.ExitCode != 0 || c.UpdateID != upd || c.Cluster != "bed" {
		t.Fatalf("calculation %+v: want #%d notified, exit code 0, update %d, on bed", c, id, upd)
	}
	if jobs = w.jobsNamed(name); len(jobs) != 1 || jobs[0] != c.JobID {
		t.Errorf("Slurm jobs %v named %s, want exactly the stored job %s", jobs, name, c.JobID)
	}
	if !strings.Contains(msgs[0], c.ShareLink) || c.ShareLink == "" {
		t.Errorf("stored link %q is not the one sent: %q", c.ShareLink, msgs[0])
	}
	dir := path.Join("hpc_results", c.Folder)
	if b, err := w.nc.ReadFile(dir + "/water.txt"); err != nil || string(b) != "energy -76.4\n" {
		t.Errorf("water.txt in the cloud: %q, %v", b, err)
	}
	if b, err := w.nc.ReadFile(dir + "/" + name + ".out"); err != nil || string(b) != "progress\n" {
		t.Errorf("%s.out in the cloud: %q, %v", name, b, err)
	}
	if sh := w.nc.Shares(); len(sh) != 1 || !strings.HasSuffix(sh[0], c.Folder) {
		t.Errorf("shares %q, want one of %s", sh, dir)
	}
	for p, n := range w.successfulPuts() {
		if n != 1 {
			t.Errorf("%s uploaded %d times", p, n)
		}
	}
}

// sentHas tells whether something sent to chat contains text.
func sentHas(tg *tgtest.Server, chat int64, text string) bool {
	for _, c := range tg.Sent(chat) {
		if strings.Contains(c.Text(), text) {
			return true
		}
	}
	return false
}

// killPoint is a moment at which the daemon is SIGKILLed: the input file sent
// (its script), and how to get to the moment (returns what was seen there).
type killPoint struct {
	name   string
	input  string
	script string
	reach  func(w *world, upd int64) string
}

// TestE2EKill9 is issue 5's kill -9 test: one installation, one calculation per
// kill point; the daemon is SIGKILLed at the point, its plugins must follow it,
// and a new daemon must carry the calculation to its end. At the end, over all
// calculations: every input sent is exactly one calculation, notified with exit
// code 0; one Slurm job each; each file uploaded once and one share each; one
// "finished" message each.
func TestE2EKill9(t *testing.T) {
	w := newWorld(t)
	user := e2eUser(7301, "Olga")
	w.seedUser(user)
	w.start()
	chat := user.ID

	// folderOf waits for nothing: the calculation folder name ends with the input's base name.
	hasSuffix := func(list []string, suffix string) bool {
		return slices.ContainsFunc(list, func(s string) bool { return strings.HasSuffix(s, suffix) })
	}
	jobOf := func(w *world, folderSuffix string) (slurmJob, bool) {
		for _, j := range w.queued() {
			if strings.HasSuffix(strings.TrimRight(j.WorkDir, "/"), folderSuffix) {
				return j, true
			}
		}
		return slurmJob{}, false
	}
	points := []killPoint{
		{name: "intake", input: "kintake.sh", script: "echo intake > r.txt\n",
			reach: func(w *world, upd int64) string {
				before := len(w.tg.Calls("getFile"))
				w.until("the bot asks for the file", time.Millisecond, func() bool { return len(w.tg.Calls("getFile")) > before })
				return "getFile seen"
			}},
		{name: "staged", input: "kstaged.sh", script: "echo staged > r.txt\n",
			reach: func(w *world, upd int64) string {
				w.until("the remote folder", 10*time.Millisecond, func() bool { return hasSuffix(w.remoteFolders(), "_kstaged") })
				return "remote folder exists"
			}},
		{name: "submitted", input: "ksubmit.sh", script: "sleep 2; echo submitted > r.txt\n",
			reach: func(w *world, upd int64) string {
				var j slurmJob
				w.until("the job in squeue", 10*time.Millisecond, func() bool { var ok bool; j, ok = jobOf(w, "_ksubmit"); return ok })
				return "squeue: " + j.ID + " " + j.State
			}},
		{name: "running", input: "krun.sh", script: "sleep 5; echo running > r.txt\n",
			reach: func(w *world, upd int64) string {
				var j slurmJob
				w.until("the job running", 50*time.Millisecond, func() bool {
					var ok bool
					j, ok = jobOf(w, "_krun")
					return ok && j.State == "RUNNING"
				})
				return "squeue: " + j.ID + " " + j.State
			}},
		{name: "fetch", input: "kfetch.sh", script: "head -c 8000000 /dev/zero > big.txt; echo fetch > r.txt\n",
			reach: func(w *world, upd int64) string {
				// The fetch has begun when anything but the input appears in the local folder.
				dl := filepath.Join(w.dir, "downloads")
				var what string
				w.until("the fetch to begin", time.Millisecond, func() bool {
					ents, _ := os.ReadDir(dl)
					for _, e := range ents {
						if !strings.HasSuffix(e.Name(), "_kfetch") {
							continue
						}
						files, _ := os.ReadDir(filepath.Join(dl, e.Name()))
						var seen []string
						for _, f := range files {
							if f.Name() == "kfetch.sh" {
								continue
							}
							if fi, err := f.Info(); err == nil {
								seen = append(seen, fmt.Sprintf("%s:%d", f.Name(), fi.Size()))
							}
						}
						if len(seen) > 0 {
							what = "local files " + strings.Join(seen, " ")
							return true
						}
					}
					return false
				})
				return what
			}},
		{name: "delivery", input: "kdeliver.sh", script: "echo deliver > r.txt\n",
			reach: func(w *world, upd int64) string {
				w.nc.Inject(nctest.Fault{Method: "PUT", Hang: true})
				select {
				case req := <-w.nc.Hung():
					return "hung: " + req
				case <-time.After(e2eGuard):
					w.t.Fatal("no PUT reached the cloud")
				}
				return ""
			}},
		{name: "redelivered", input: "kredeliver.sh", script: "echo redeliver > r.txt\n",
			reach: nil}, // below: needs the push itself arranged
	}

	docs := map[string]int64{} // input → update id
	for _, p := range points {
		ok := t.Run(p.name, func(t *testing.T) {
			defer w.use(t)()
			if w.d == nil {
				w.start()
			}
			var upd int64
			var seen string
			if p.name == "redelivered" {
				upd, seen = w.redeliver(user, p.input, p.script)
			} else {
				upd = w.tg.PushDocument(user, tgtest.Private(user), p.input, []byte(p.script), "")
				seen = p.reach(w, upd)
			}
			docs[p.input] = upd
			w.kill9(p.name)
			t.Logf("killed at %s: %s", p.name, seen)
			if p.name == "delivery" {
				w.nc.ReleaseAll()
			}
			if p.name == "redelivered" {
				if !slices.Contains(w.tg.Unconfirmed(), upd) {
					t.Fatalf("update %d was confirmed before the kill; the point was missed", upd)
				}
				w.tg.ClearFaults()
			}
			w.start()
			w.waitFinished(chat, p.input)
		})
		if !ok {
			break
		}
	}

	t.Run("invariants", func(t *testing.T) {
		defer w.use(t)()
		if w.d == nil {
			w.start()
		}
		calcs := w.snapshot()
		if len(calcs) != len(docs) {
			t.Errorf("%d calculations for %d inputs sent", len(calcs), len(docs))
		}
		puts := w.successfulPuts()
		shares := w.nc.Shares()
		for input, upd := range docs {
			cs := byInput(calcs, input)
			if len(cs) != 1 {
				t.Errorf("%s: %d calculations, want 1", input, len(cs))
				continue
			}
			c := cs[0]
			if c.State != store.StateNotified || c.ExitCode == nil || *c.ExitCode != 0 || c.UpdateID != upd {
				t.Errorf("%s: calculation #%d %s (exit %v, update %d; want notified, exit 0, update %d): %s",
					input, c.ID, c.State, c.ExitCode, c.UpdateID, upd, c.Error)
			}
			name := fmt.Sprintf("hpcbot-%d", c.ID)
			if jobs := w.jobsNamed(name); len(jobs) != 1 || jobs[0] != c.JobID {
				t.Errorf("%s: Slurm jobs %v named %s, want exactly the stored %s", input, jobs, name, c.JobID)
			}
			if msgs, id := w.finished(chat, input); len(msgs) != 1 || id != c.ID {
				t.Errorf("%s: %d finished messages (naming #%d), want 1 for #%d: %q", input, len(msgs), id, c.ID, msgs)
			}
			if n := w.accepted(chat, c.ID); n != 1 {
				t.Errorf("%s: %d accepted replies for #%d, want 1", input, n, c.ID)
			}
			prefix := "/remote.php/dav/files/" + w.nc.User + "/hpc_results/" + c.Folder + "/"
			for _, f := range []string{"r.txt", name + ".out"} {
				if n := puts[prefix+f]; n != 1 {
					t.Errorf("%s: %s uploaded %d times, want 1", input, f, n)
				}
			}
			n := 0
			for _, s := range shares {
				if strings.HasSuffix(strings.TrimRight(s, "/"), "/"+c.Folder) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%s: %d shares of %s, want 1 (shares: %q)", input, n, c.Folder, shares)
			}
		}
		for p, n := range puts {
			if n != 1 {
				t.Errorf("%s uploaded %d times", p, n)
			}
		}
		if len(shares) != len(docs) {
			t.Errorf("%d shares for %d calculations", len(shares), len(docs))
		}
	})
}

// use makes the world report to t (a subtest) until the returned func restores it.
func (w *world) use(t *testing.T) func() {
	old := w.t
	w.t = t
	return func() { w.t = old }
}

// redeliver sends an input so that the daemon stores its update but Telegram
// never hears the confirmation: every getUpdates after the one that carries the
// update fails. It returns when the bot has begun handling it (getFile), with
// the update still unconfirmed.
func (w *world) redeliver(user tgtest.User, input, script string) (int64, string) {
	w.t.Helper()
	// A long poll is waiting: it passed the fault check, so it delivers the update.
	w.until("a waiting long poll", 10*time.Millisecond, func() bool {
		calls := w.tg.Calls("getUpdates")
		return len(calls) > 0 && calls[len(calls)-1].Code == 0
	})
	w.tg.Inject(tgtest.Fault{Method: "getUpdates", Code: 500, Description: "Internal Server Error"})
	before := len(w.tg.Calls("getFile"))
	upd := w.tg.PushDocument(user, tgtest.Private(user), input, []byte(script), "")
	w.until("the bot handling the update", time.Millisecond, func() bool { return len(w.tg.Calls("getFile")) > before })
	return upd, fmt.Sprintf("getFile seen, unconfirmed %v", w.tg.Unconfirmed())
}

// TestE2ESigterm: SIGTERM with a job running stops the daemon well within its
// bound (the time is reported), leaves the job alone, and a new daemon follows
// the job to its end: one job, one notification.
func TestE2ESigterm(t *testing.T) {
	w := newWorld(t)
	user := e2eUser(7401, "Pavel")
	w.seedUser(user)
	w.start()
	w.tg.PushDocument(user, tgtest.Private(user), "long.sh", []byte("sleep 6; echo long > r.txt\n"), "")
	var j slurmJob
	w.until("the job running", 50*time.Millisecond, func() bool {
		for _, x := range w.queued() {
			if strings.HasSuffix(strings.TrimRight(x.WorkDir, "/"), "_long") && x.State == "RUNNING" {
				j = x
				return true
			}
		}
		return false
	})
	took, err := w.term(20 * time.Second)
	t.Logf("hpcbot run exited %v after SIGTERM (job %s running)", took.Round(time.Millisecond), j.ID)
	if err != nil {
		t.Errorf("hpcbot run after SIGTERM: %v (want exit status 0)", err)
	}
	if took > 10*time.Second {
		t.Errorf("hpcbot run took %v to stop; the promise is 10 s", took)
	}
	if _, err := os.Stat(filepath.Join(w.dir, "hpcbot.db.sock")); err == nil {
		t.Errorf("the control socket is left behind after a clean stop")
	}
	w.start()
	id := w.waitFinished(user.ID, "long.sh")
	calcs := w.snapshot()
	if len(calcs) != 1 || calcs[0].State != store.StateNotified || calcs[0].ExitCode == nil || *calcs[0].ExitCode != 0 {
		t.Fatalf("after the restart: %+v, want one calculation notified with exit code 0", calcs)
	}
	if jobs := w.jobsNamed(fmt.Sprintf("hpcbot-%d", id)); len(jobs) != 1 || jobs[0] != j.ID {
		t.Errorf("Slurm jobs %v, want only %s", jobs, j.ID)
	}
	if msgs, _ := w.finished(user.ID, "long.sh"); len(msgs) != 1 {
		t.Errorf("%d finished messages, want 1", len(msgs))
	}
}
