package bot

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"hpcbot/bot/tgtest"
	"hpcbot/scheduler"
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
	if entries := leftInDownloadPath(t, e.dl); len(entries) != 0 {
		t.Fatalf("download_path holds %v, want nothing", entries)
	}
	e.srv.ClearFaults()
	upd, _ := e.sendFile(tgUser, "dl.sh", []byte("echo dl > dl.out\n"), "sh -e {}")
	calcs := e.calcsOf(e.user)
	if len(calcs) != 1 || calcs[0].UpdateID != upd || calcs[0].Caption == nil || *calcs[0].Caption != "sh -e {}" {
		t.Fatalf("calculations %+v, want one from update %d with its caption", calcs, upd)
	}
	waitState(t, e.st, calcs[0].ID, store.StateNotified)
}

// leftInDownloadPath lists the folders in download_path, failing the test if
// scheduler.IncomingDir (where Accept has inputs written) keeps anything: each
// write folder there is gone once Accept has returned.
func leftInDownloadPath(t *testing.T, dl string) []string {
	t.Helper()
	ents, err := os.ReadDir(dl)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if e.Name() == scheduler.IncomingDir {
			if left, err := os.ReadDir(filepath.Join(dl, e.Name())); err != nil || len(left) != 0 {
				t.Fatalf("%s keeps %v (%v)", e.Name(), left, err)
			}
			continue
		}
		names = append(names, e.Name())
	}
	return names
}
