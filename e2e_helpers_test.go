//go:build linux

package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"hpcbot/bot/tgtest"
	"hpcbot/internal/testbed"
	"hpcbot/plugins/shellquote"
	"hpcbot/scheduler/nextcloud/nctest"
	"hpcbot/store"
)

// The end-to-end tests run the real hpcbot binary (built by TestMain) as a
// daemon against the fake Bot API (tgtest), the fake Nextcloud (nctest) and the
// test bed's real Slurm over SSH, and look at what each of them saw. The store
// is read through `hpcbot backup` while the daemon runs.
//
//	eval "$(scripts/testbed.sh env)"   # the bed must run with accounting (sacct)
//	go test -run 'TestE2E' .
//
// HPCBOT_E2E_KEEP=DIR keeps each test's daemon log in DIR.

// e2eGuard bounds every wait of these tests: a guard against a hang, never a
// speed check (jobs of other tests share the bed's two CPUs).
const e2eGuard = 4 * time.Minute

// Who talks to the bot.
var (
	e2eAdmin = tgtest.User{ID: 7001, FirstName: "Ada", LastName: "Admin", Username: "ada_admin", LanguageCode: "en"}
	e2eGroup = tgtest.Group(-7100, "Chemists")
)

// e2eUser is a chemist with a Telegram id of their own.
func e2eUser(id int64, name string) tgtest.User {
	return tgtest.User{ID: id, FirstName: name, LastName: "Chemist", Username: strings.ToLower(name), LanguageCode: "en"}
}

// world is one hpcbot installation: its folder, config and store, its fakes,
// its own folder on the bed's cluster, and the daemon when it runs.
type world struct {
	t      *testing.T
	bed    testbed.SSHEnv
	ssh    *ssh.Client
	tg     *tgtest.Server
	nc     *nctest.Server
	dir    string
	cfg    string
	upload string // upload_path on the cluster, relative to the test user's home
	logf   *os.File
	d      *daemon
	runs   int
	snaps  int
	kills  []time.Time // when each SIGKILL was sent
}

// daemon is one `hpcbot run` process.
type daemon struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// newWorld writes a config for the bed's Slurm (accounting on), the fakes, and
// admin e2eAdmin, with fetch_time = 1; the daemon is not started.
func newWorld(t *testing.T) *world {
	t.Helper()
	bed := testbed.SlurmAccounting(t)
	w := &world{t: t, bed: bed, tg: tgtest.New(t), nc: nctest.New(t), dir: t.TempDir()}
	var rnd [4]byte
	rand.Read(rnd[:])
	w.upload = path.Join("hpcbot-e2e", time.Now().Format("20060102-150405")+"-"+hex.EncodeToString(rnd[:]))
	w.ssh = bed.Dial(t)
	t.Cleanup(func() {
		if _, err := testbed.Output(w.ssh, "rm -rf "+shellquote.Quote(w.upload)); err != nil {
			t.Logf("remove %s on the bed: %v", w.upload, err)
		}
	})
	w.cfg = filepath.Join(w.dir, "hpcbot.toml")
	text := fmt.Sprintf(`
download_path = "downloads"
fetch_time = 1
extensions_whitelist = [".txt", ".out", ".log"]
log_level = "debug"

[store]
path = "hpcbot.db"

[bot]
token = %q
api_url = %q
admins = [%d]
admin_name = "@%s"
submits_per_minute = 100

[quota]
new_user = 100
approved = 200

[storage]
url = %q
user = %q
password = %q
base_path = "hpc_results"

[[clusters]]
label = "bed"
scheduler = "slurm"
upload_path = %q

[clusters.connection]
host = %q
port = %d
user = %q
key_path = %q
known_hosts = %q

[[clusters.runners]]
program = "sh"
description = "POSIX shell"
allowed_args = ["{}"]
associations = [".sh"]
`, w.tg.Token, w.tg.URL, e2eAdmin.ID, e2eAdmin.Username, w.nc.URL, w.nc.User, w.nc.Password, w.upload,
		bed.Host, bed.Port, bed.User, bed.KeyPath, bed.KnownHosts)
	if err := os.WriteFile(w.cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(w.dir, "daemon.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	w.logf = f
	t.Cleanup(func() {
		if w.d != nil {
			w.d.cmd.Process.Kill()
			<-w.d.done
		}
		f.Close()
		if t.Failed() {
			w.dumpLog(300)
		}
		// HPCBOT_E2E_KEEP=DIR keeps every daemon log, as DIR/<test name>.log.
		if keep := os.Getenv("HPCBOT_E2E_KEEP"); keep != "" {
			if data, err := os.ReadFile(filepath.Join(w.dir, "daemon.log")); err == nil {
				name := strings.ReplaceAll(t.Name(), "/", "_") + ".log"
				if err := os.WriteFile(filepath.Join(keep, name), data, 0o600); err != nil {
					t.Logf("keep the daemon log: %v", err)
				}
			}
		}
	})
	return w
}

// dumpLog shows the last n lines the daemons logged.
func (w *world) dumpLog(n int) {
	data, err := os.ReadFile(filepath.Join(w.dir, "daemon.log"))
	if err != nil {
		w.t.Logf("daemon log: %v", err)
		return
	}
	lines := strings.Split(string(data), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	w.t.Logf("last %d lines of the daemon log:\n%s", len(lines), strings.Join(lines, "\n"))
}

// daemonEnv is the test's environment without hpcbot's own variables (a token
// or password there would win over the config), but with the bed's.
func daemonEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "HPCBOT_") && !strings.HasPrefix(kv, "HPCBOT_TEST") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// seedUser registers u as an approved user in the store before the daemon
// first starts (the daemon holds the store's lock while it runs).
func (w *world) seedUser(u tgtest.User) store.User {
	w.t.Helper()
	if w.d != nil {
		w.t.Fatal("seedUser while the daemon runs")
	}
	st, err := store.Open(filepath.Join(w.dir, "hpcbot.db"), store.Options{})
	if err != nil {
		w.t.Fatal(err)
	}
	defer st.Close()
	su, _, err := st.RegisterUser(store.TelegramAccount{TelegramID: u.ID, Username: u.Username,
		DisplayName: u.FirstName + " " + u.LastName, LanguageCode: u.LanguageCode}, 200)
	if err != nil {
		w.t.Fatal(err)
	}
	su, err = st.UpdateUser(su.ID, func(_ *store.Tx, x *store.User) error { x.Approved = true; return nil })
	if err != nil {
		w.t.Fatal(err)
	}
	return su
}

// start runs `hpcbot run` and waits until it polls Telegram.
func (w *world) start() {
	w.t.Helper()
	if w.d != nil {
		w.t.Fatal("start: the daemon runs already")
	}
	w.runs++
	fmt.Fprintf(w.logf, "\n===== test: start #%d at %s =====\n", w.runs, time.Now().Format(time.RFC3339Nano))
	before := len(w.tg.Calls("getUpdates"))
	cmd := exec.Command(binary, "run", "--config", w.cfg)
	cmd.Stdout, cmd.Stderr = w.logf, w.logf
	cmd.Env = daemonEnv()
	// A test process that dies without its cleanups (a timeout, a kill) takes
	// the daemon with it: an orphan would go on polling the bed's Slurm.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	d := &daemon{cmd: cmd, done: make(chan struct{})}
	go func() { d.err = cmd.Wait(); close(d.done) }()
	w.d = d
	w.until("the daemon polls Telegram", 20*time.Millisecond, func() bool {
		select {
		case <-d.done:
			w.t.Fatalf("hpcbot run exited at start: %v", d.err)
		default:
		}
		return len(w.tg.Calls("getUpdates")) > before
	})
}

// kill9 SIGKILLs the daemon and checks that its plugin processes follow it (a
// stray plugin would keep an SSH connection, or the store, busy).
func (w *world) kill9(why string) {
	w.t.Helper()
	d := w.d
	if d == nil {
		w.t.Fatal("kill9: no daemon")
	}
	pid := d.cmd.Process.Pid
	kids := childrenOf(pid)
	w.kills = append(w.kills, time.Now())
	syscall.Kill(pid, syscall.SIGKILL)
	<-d.done
	w.d = nil
	fmt.Fprintf(w.logf, "\n===== test: SIGKILL (%s) at %s; plugin pids %v =====\n", why, time.Now().Format(time.RFC3339Nano), kids)
	if len(kids) == 0 {
		w.t.Errorf("kill %s: the daemon had no plugin process", why)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, k := range kids {
		for alive(k) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(k) {
			w.t.Errorf("kill %s: plugin process %d outlived its host by 30 s", why, k)
			syscall.Kill(k, syscall.SIGKILL)
		}
	}
}

// term sends SIGTERM and returns how long the daemon took to exit and how it
// ended; the bound is a guard, the caller reports the time.
func (w *world) term(bound time.Duration) (time.Duration, error) {
	w.t.Helper()
	d := w.d
	pid := d.cmd.Process.Pid
	kids := childrenOf(pid)
	begin := time.Now()
	syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(bound):
		d.cmd.Process.Kill()
		<-d.done
		w.d = nil
		w.t.Fatalf("hpcbot run still running %v after SIGTERM", bound)
	}
	took := time.Since(begin)
	w.d = nil
	fmt.Fprintf(w.logf, "\n===== test: SIGTERM exit after %v: %v =====\n", took, d.err)
	for _, k := range kids {
		for alive(k) && time.Since(begin) < bound {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(k) {
			w.t.Errorf("plugin process %d still there after a clean stop", k)
			syscall.Kill(k, syscall.SIGKILL)
		}
	}
	return took, d.err
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(pid int) []int {
	var kids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, _, ok := procStat(p); ok && ppid == pid {
			kids = append(kids, p)
		}
	}
	return kids
}

// alive tells whether pid exists and is not a zombie.
func alive(pid int) bool {
	_, state, ok := procStat(pid)
	return ok && state != "Z" && state != "X"
}

// procStat reads the parent pid and state of pid from /proc/<pid>/stat.
func procStat(pid int) (ppid int, state string, ok bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", false
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, "", false
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 2 {
		return 0, "", false
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, f[0], err == nil
}

// until polls cond every `every` until it holds; past e2eGuard the test fails.
func (w *world) until(what string, every time.Duration, cond func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(e2eGuard)
	for !cond() {
		if time.Now().After(deadline) {
			w.t.Fatalf("gave up waiting (%v) for: %s", e2eGuard, what)
		}
		time.Sleep(every)
	}
}

// remote runs a shell command on the bed as the test user.
func (w *world) remote(cmd string) string {
	w.t.Helper()
	out, err := testbed.Output(w.ssh, cmd)
	if err != nil {
		w.t.Fatalf("on the bed: %s: %v: %s", cmd, err, out)
	}
	return out
}

// spinUntil runs a shell loop on the bed, in upload_path, that repeats body
// without pausing until body exits (printing what it saw), and returns that
// output: the test reacts within milliseconds of what body looks for.
func (w *world) spinUntil(body string) string {
	w.t.Helper()
	dir := shellquote.Quote(w.upload)
	out := w.remote("mkdir -p " + dir + " && cd " + dir + " || exit 1\n" +
		"i=0\nwhile [ $i -lt 5000000 ]; do\n" + body + "\ni=$((i+1))\ndone\necho gave up")
	if strings.TrimSpace(out) == "gave up" {
		w.t.Fatal("the watcher on the bed gave up")
	}
	return strings.TrimSpace(out)
}

// orphanedSubmits lists the (newly) orphaned calculation folders whose submit lock
// (.hpcbot-submit) holds neither an exit code nor an adopted job once no daemon
// runs: the submit wrapper died mid-way (see checkNoOrphanedSubmit). A wrapper that
// survived its caller finishes within seconds, so this waits a little first.
func (w *world) orphanedSubmits() []string {
	w.t.Helper()
	cmd := "cd " + shellquote.Quote(w.upload) + " 2>/dev/null || exit 0\n" +
		`for d in */.hpcbot-submit; do if [ -d "$d" ] && [ ! -f "$d/rc" ] && [ ! -f "$d/adopted" ]; then echo "${d%/.hpcbot-submit}"; fi; done`
	var orphans []string
	for range 50 {
		orphans = strings.Fields(w.remote(cmd))
		if len(orphans) == 0 {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return orphans
}

// slurmJob is a job of this world as squeue or sacct show it.
type slurmJob struct {
	ID, Name, State, WorkDir string
}

// ours tells whether a job's working folder is below this world's upload_path
// (other tests on the bed use the same job names for their calculation ids).
func (w *world) ours(workDir string) bool {
	return strings.Contains(workDir+"/", "/"+w.upload+"/")
}

// queued lists this world's jobs squeue knows (pending, running, just ended).
func (w *world) queued() []slurmJob {
	w.t.Helper()
	out := w.remote("squeue --me --noheader --states=all --format='%i|%j|%T|%Z'")
	var jobs []slurmJob
	for _, l := range strings.Split(out, "\n") {
		f := strings.Split(strings.TrimSpace(l), "|")
		if len(f) == 4 && w.ours(f[3]) {
			jobs = append(jobs, slurmJob{ID: f[0], Name: f[1], State: f[2], WorkDir: f[3]})
		}
	}
	return jobs
}

// jobsNamed lists every job ever submitted under name from this world: what
// accounting recorded, plus what squeue still shows.
func (w *world) jobsNamed(name string) []string {
	w.t.Helper()
	out := w.remote("sacct -X --noheader --parsable2 -S now-1days --name=" + shellquote.Quote(name) + " -o JobID,WorkDir")
	seen := map[string]bool{}
	var ids []string
	add := func(id string) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if id, wd, ok := strings.Cut(strings.TrimSpace(l), "|"); ok && w.ours(wd) {
			add(id)
		}
	}
	for _, j := range w.queued() {
		if j.Name == name {
			add(j.ID)
		}
	}
	return ids
}

// settledJobs is jobsNamed once the stored job has reached accounting:
// slurmdbd records a job that ended a moment after squeue forgets it
// (MinJobAge=2), so a job missing from both is waited for (up to 30 s) before
// the caller counts. A second job, the failure the callers look for, would be
// seen either way.
func (w *world) settledJobs(name, jobID string) []string {
	w.t.Helper()
	jobs := w.jobsNamed(name)
	for i := 0; i < 60 && !slices.Contains(jobs, jobID); i++ {
		time.Sleep(500 * time.Millisecond)
		jobs = w.jobsNamed(name)
	}
	return jobs
}

// backup has read look at a copy of the store made by `hpcbot backup` (which
// asks the running daemon for a copy, or opens the store when none runs).
func (w *world) backup(read func(*store.Store)) {
	w.t.Helper()
	w.snaps++
	cp := filepath.Join(w.dir, fmt.Sprintf("copy-%d.db", w.snaps))
	cmd := exec.Command(binary, "backup", "--config", w.cfg, cp)
	cmd.Env = daemonEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		w.t.Fatalf("hpcbot backup: %v: %s", err, out)
	}
	defer os.Remove(cp)
	st, err := store.Open(cp, store.Options{ReadOnly: true})
	if err != nil {
		w.t.Fatal(err)
	}
	defer st.Close()
	read(st)
}

// snapshot reads every calculation through `hpcbot backup`.
func (w *world) snapshot() []store.Calculation {
	w.t.Helper()
	var calcs []store.Calculation
	w.backup(func(st *store.Store) {
		var err error
		if calcs, err = st.CalcsByState(store.States...); err != nil {
			w.t.Fatal(err)
		}
	})
	return calcs
}

// byInput finds the calculation of an input file name.
func byInput(calcs []store.Calculation, name string) []store.Calculation {
	var out []store.Calculation
	for _, c := range calcs {
		if c.InputName == name {
			out = append(out, c)
		}
	}
	return out
}

var finishedRe = regexp.MustCompile(`Calculation <b>#(\d+)</b> \(([^)]*)\) finished: `)

// finished returns the "finished" messages sent to chat for input name, and the
// calculation number they name.
func (w *world) finished(chat int64, name string) (msgs []string, id uint64) {
	for _, c := range w.tg.Sent(chat) {
		m := finishedRe.FindStringSubmatch(c.Text())
		if m != nil && m[2] == name {
			msgs = append(msgs, c.Text())
			id, _ = strconv.ParseUint(m[1], 10, 64)
		}
	}
	return msgs, id
}

// waitFinished waits for the "finished" message of input name and returns the
// calculation number.
func (w *world) waitFinished(chat int64, name string) uint64 {
	w.t.Helper()
	var id uint64
	w.until("the finished message for "+name, 50*time.Millisecond, func() bool {
		var msgs []string
		msgs, id = w.finished(chat, name)
		return len(msgs) > 0
	})
	return id
}

// waitFinishedOr is waitFinished, but fails as soon as the daemons logged a
// line with every one of stuck (a calculation retrying a step it cannot pass).
func (w *world) waitFinishedOr(chat int64, name string, stuck ...string) uint64 {
	w.t.Helper()
	var id uint64
	w.until("the finished message for "+name, 50*time.Millisecond, func() bool {
		var msgs []string
		msgs, id = w.finished(chat, name)
		if len(msgs) == 0 && w.logHas(stuck...) {
			w.t.Fatalf("%s is stuck: the daemon logged %q", name, stuck)
		}
		return len(msgs) > 0
	})
	return id
}

// accepted counts the "accepted" replies naming calculation id in chat.
func (w *world) accepted(chat int64, id uint64) int {
	n := 0
	for _, c := range w.tg.Sent(chat) {
		if strings.Contains(c.Text(), fmt.Sprintf("Calculation <b>#%d</b> accepted", id)) {
			n++
		}
	}
	return n
}

// successfulPuts counts the successful PUTs the fake Nextcloud answered, by path.
func (w *world) successfulPuts() map[string]int {
	n := map[string]int{}
	for _, r := range w.nc.Requests() {
		if r.Method == "PUT" && r.Status >= 200 && r.Status < 300 {
			n[r.Path]++
		}
	}
	return n
}

// logHas tells whether the daemons logged a line containing every one of words.
func (w *world) logHas(words ...string) bool {
	f, err := os.Open(filepath.Join(w.dir, "daemon.log"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		all := true
		for _, x := range words {
			if !strings.Contains(l, x) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// sendWindow is how long after Telegram received a message a SIGKILL can come
// before the daemon has marked it sent: a message sent just before a kill is
// sent again after the restart (at least once, as the outbox promises; Telegram
// has no idempotency key). Generous for a loaded machine, and still far shorter
// than the time between a message and an unrelated later kill.
const sendWindow = 500 * time.Millisecond

// copies returns the successful sends to chat whose text matches re.
func (w *world) copies(chat int64, re *regexp.Regexp) []tgtest.Call {
	var out []tgtest.Call
	for _, c := range w.tg.Sent(chat) {
		if re.MatchString(c.Text()) {
			out = append(out, c)
		}
	}
	return out
}

// explained tells whether every copy after the first follows a SIGKILL that
// came within sendWindow of the previous copy (the at-least-once window).
func (w *world) explained(copies []tgtest.Call) bool {
	for i := 1; i < len(copies); i++ {
		prev, next := copies[i-1].Time, copies[i].Time
		ok := false
		for _, k := range w.kills {
			if !k.Before(prev) && k.Before(next) && k.Sub(prev) < sendWindow {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// checkInvariants asserts, for every input sent (name → update id) by the user
// in chat: exactly one calculation, notified with exit code 0 from that update;
// exactly one Slurm job under its name; each result file uploaded once and one
// share of its folder; one accepted reply and one finished message. With
// atLeastOnce, a second copy of a message is tolerated when a kill explains it
// (see sendWindow); it is logged.
func (w *world) checkInvariants(chat int64, docs map[string]int64, atLeastOnce bool) {
	t := w.t
	t.Helper()
	calcs := w.snapshot()
	if len(calcs) != len(docs) {
		t.Errorf("%d calculations for %d inputs sent", len(calcs), len(docs))
	}
	puts := w.successfulPuts()
	shares := w.nc.Shares()
	once := func(what string, copies []tgtest.Call) {
		switch {
		case len(copies) == 1:
		case len(copies) > 1 && atLeastOnce && w.explained(copies):
			t.Logf("%s sent %d times, each repeat right after a kill (at least once)", what, len(copies))
		default:
			var texts []string
			for _, c := range copies {
				texts = append(texts, c.Time.Format("15:04:05.000")+" "+c.Text())
			}
			t.Errorf("%s sent %d times, want 1: %q (kills at %v)", what, len(copies), texts, w.killTimes())
		}
	}
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
		if jobs := w.settledJobs(name, c.JobID); len(jobs) != 1 || jobs[0] != c.JobID {
			t.Errorf("%s: Slurm jobs %v named %s, want exactly the stored %s", input, jobs, name, c.JobID)
		}
		once(fmt.Sprintf("%s: finished message of #%d", input, c.ID),
			w.copies(chat, regexp.MustCompile(fmt.Sprintf(`^Calculation <b>#%d</b> \(%s\) finished: `, c.ID, regexp.QuoteMeta(input)))))
		once(fmt.Sprintf("%s: accepted reply of #%d", input, c.ID),
			w.copies(chat, regexp.MustCompile(fmt.Sprintf(`^Calculation <b>#%d</b> accepted`, c.ID))))
		prefix := "/remote.php/dav/files/" + w.nc.User + "/hpc_results/" + c.Folder + "/"
		for _, f := range []string{"r.txt", name + ".out"} {
			if n := puts[prefix+f]; n != 1 {
				t.Errorf("%s: %s uploaded %d times, want 1", input, f, n)
			}
		}
		// What is in the cloud is what was fetched, whole.
		for p := range puts {
			rel, ok := strings.CutPrefix(p, prefix)
			if !ok {
				continue
			}
			local, err := os.ReadFile(filepath.Join(c.LocalDir, filepath.FromSlash(rel)))
			if err != nil {
				t.Errorf("%s: %s uploaded but not in the local folder: %v", input, rel, err)
				continue
			}
			cloud, err := w.nc.ReadFile("hpc_results/" + c.Folder + "/" + rel)
			if err != nil || !bytes.Equal(cloud, local) {
				t.Errorf("%s: %s in the cloud (%d bytes, %v) differs from the fetched file (%d bytes)", input, rel, len(cloud), err, len(local))
			}
		}
		if r, err := w.nc.ReadFile("hpc_results/" + c.Folder + "/r.txt"); err != nil || len(r) == 0 {
			t.Errorf("%s: r.txt in the cloud: %q, %v", input, r, err)
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
}

func (w *world) killTimes() []string {
	var out []string
	for _, k := range w.kills {
		out = append(out, k.Format("15:04:05.000"))
	}
	return out
}
