package bot

import (
	"net/http"
	"os"
	"testing"

	"hpcbot/bot/tgtest"
	"hpcbot/store"
)

// A file whose download fails becomes no calculation and leaves no folder;
// the user is asked to send it again, and the same file sent again is
// accepted, with its caption kept for Run again.
func TestE2EDownloadFailed(t *testing.T) {
	e := newEnv(t)
	e.srv.Inject(tgtest.Fault{Method: "getFile", Code: http.StatusInternalServerError, Description: "Internal Server Error"})
	_, replies := e.sendFile(tgUser, "dl.sh", []byte("echo dl > dl.out\n"), "sh -e {}")
	want(t, replies, "could not download the file")
	if n := len(e.calcsOf(e.user)); n != 0 {
		t.Fatalf("%d calculations", n)
	}
	if entries, err := os.ReadDir(e.dl); err != nil || len(entries) != 0 {
		t.Fatalf("download_path holds %v (%v), want nothing", entries, err)
	}
	e.srv.ClearFaults()
	upd, _ := e.sendFile(tgUser, "dl.sh", []byte("echo dl > dl.out\n"), "sh -e {}")
	calcs := e.calcsOf(e.user)
	if len(calcs) != 1 || calcs[0].UpdateID != upd || calcs[0].Caption == nil || *calcs[0].Caption != "sh -e {}" {
		t.Fatalf("calculations %+v, want one from update %d with its caption", calcs, upd)
	}
	waitState(t, e.st, calcs[0].ID, store.StateNotified)
}
