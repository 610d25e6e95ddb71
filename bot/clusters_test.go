package bot

import (
	"fmt"
	"testing"

	"hpcbot/bot/tgtest"
	"hpcbot/store"
)

// An admin drains the cluster: a user's file is kept, and the user is told why
// (with the admin's words) and that it will be submitted when the cluster is
// back; /clusters shows the drain; /undrain sends the file on its way.
func TestE2EDrainUndrain(t *testing.T) {
	e := newEnv(t)
	want(t, e.private(tgAdmin, "/drain"), "/drain LABEL reason", "Clusters: loc.")
	want(t, e.private(tgAdmin, "/drain nosuch x"), "There is no cluster nosuch. Clusters: loc.")
	want(t, e.private(tgAdmin, "/undrain loc"), "Cluster loc is not drained.")
	want(t, e.private(tgAdmin, "/drain loc new <b>disks</b>"), "Cluster loc is drained")
	e.waitSent(logChat, "drained cluster loc for maintenance. Reason: new &lt;b&gt;disks&lt;/b&gt;")
	want(t, e.private(tgAdmin, "/clusters"), "<b>loc</b> (local): working", "drained for maintenance since", "reason: new &lt;b&gt;disks&lt;/b&gt;",
		"not polled yet", "no calculations under way", "since the start: 0 submitted, 0 plugin restarts")

	e.sendFile(tgUser, "h2o.sh", []byte("echo ok > result.out\n"), "")
	c := e.calcsOf(e.user)[0]
	e.waitSent(tgUser.ID, fmt.Sprintf("Calculation <b>#%d</b> (h2o.sh) waits: the admins closed cluster loc for maintenance", c.ID),
		"I will submit it when the cluster is back", "The admins wrote: new &lt;b&gt;disks&lt;/b&gt;")
	if got, _ := e.st.Calc(c.ID); got.State != store.StateReceived || got.JobID != "" {
		t.Fatalf("calculation on a drained cluster: %s, job %q", got.State, got.JobID)
	}

	want(t, e.private(tgAdmin, "/clusters"), "calculations: received 1")
	want(t, e.private(tgAdmin, "/undrain loc"), "Cluster loc takes calculations again")
	waitState(t, e.st, c.ID, store.StateNotified)
	e.waitSent(tgUser.ID, fmt.Sprintf("Calculation <b>#%d</b> (h2o.sh) goes on.", c.ID))
	e.waitSent(logChat, "opened cluster loc again.")
	r := e.private(tgAdmin, "/clusters")
	if len(r) != 1 || containsAll(r[0], "drained") {
		t.Fatalf("/clusters after undrain: %q", r)
	}
	want(t, r, "last poll at ", "since the start: 1 submitted",
		// The local cluster has no SSH; its plugin says so through the Stats call.
		"SSH in the last hour: 0 handshakes, 0 commands, 0 refused logins; in the last day: 0 handshakes")
}

// Failed Bot API sends are counted for the metrics endpoint.
func TestE2ESendErrorsCounted(t *testing.T) {
	e := newEnv(t)
	if n := e.bot.SendErrors(); n != 0 {
		t.Fatalf("%d send errors before any", n)
	}
	e.srv.Inject(tgtest.Blocked(tgUser.ID))
	e.private(tgUser, "/status")
	e.quiesce()
	if n := e.bot.SendErrors(); n < 1 {
		t.Fatalf("a refused send was not counted (%d)", n)
	}
}
