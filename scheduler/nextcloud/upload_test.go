package nextcloud

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"hpcbot/plugins"
	"hpcbot/scheduler/nextcloud/nctest"
)

const uploadsPath = "/remote.php/dav/uploads/"

func TestUploadDirSmallAndChunked(t *testing.T) {
	srv := nctest.New(t)
	c := newClient(t, srv, nil)
	dir := t.TempDir()
	files := map[string][]byte{
		"water.out":          writeFile(t, filepath.Join(dir, "water.out"), 4096, 1),
		"empty.log":          writeFile(t, filepath.Join(dir, "empty.log"), 0, 2),
		"résultat final.txt": writeFile(t, filepath.Join(dir, "résultat final.txt"), 100, 3),
		"sub/water.chk":      writeFile(t, filepath.Join(dir, "sub", "water.chk"), 25*mib, 4),
		"sub/deeper/x%20y":   writeFile(t, filepath.Join(dir, "sub", "deeper", "x%20y"), 10*mib-1, 5),
	}
	var saves int
	state := UploadState{}
	err := c.UploadDir(context.Background(), dir, "1700000000_42_water", state, func(s UploadState) error {
		saves++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for rel, want := range files {
		remote := "hpc_results/1700000000_42_water/" + rel
		sameContent(t, srv, remote, want)
		st, err := os.Stat(srv.Path(remote))
		if err != nil {
			t.Fatal(err)
		}
		local, _ := os.Stat(filepath.Join(dir, filepath.FromSlash(rel)))
		if st.ModTime().Unix() != local.ModTime().Unix() {
			t.Errorf("%s: mtime on the server %v, local %v", rel, st.ModTime(), local.ModTime())
		}
	}
	if len(state) != 0 {
		t.Errorf("state after a finished upload: %v", state)
	}
	if saves == 0 {
		t.Error("the chunked upload never saved its progress")
	}
	// 25 MiB in 10 MiB chunks: 3 chunk PUTs, none larger than a chunk; the file just
	// under the threshold went in one PUT.
	if n := srv.Count(http.MethodPut, uploadsPath); n != 3 {
		t.Errorf("%d chunk PUTs, want 3", n)
	}
	if m := srv.MaxBody(); m > DefaultChunkSize {
		t.Errorf("largest request body %d bytes, more than a chunk", m)
	}
	if len(srv.UploadFolders()) != 0 {
		t.Errorf("upload folders left: %v", srv.UploadFolders())
	}

	// Again: everything is there with the same size and mtime, nothing is sent.
	puts := srv.Count(http.MethodPut, "")
	if err := c.UploadDir(context.Background(), dir, "1700000000_42_water", nil, nil); err != nil {
		t.Fatal(err)
	}
	if n := srv.Count(http.MethodPut, ""); n != puts {
		t.Errorf("a repeated upload sent %d PUTs", n-puts)
	}
}

func TestUploadDirCreatesParents(t *testing.T) {
	srv := nctest.New(t)
	c := newClient(t, srv, func(o *Options) { o.BasePath = "/a/b/c/" })
	dir := t.TempDir()
	want := writeFile(t, filepath.Join(dir, "f"), 10, 1)
	if err := c.UploadDir(context.Background(), dir, "u42/calc", nil, nil); err != nil {
		t.Fatal(err)
	}
	sameContent(t, srv, "a/b/c/u42/calc/f", want)
}

// interrupted uploads a 25 MiB file whose third chunk PUT fails with a 500, and
// returns the progress the caller saved.
func interrupted(t *testing.T, srv *nctest.Server, c *Client, local string) Progress {
	t.Helper()
	srv.Inject(nctest.Fault{Method: http.MethodPut, PathPrefix: uploadsPath, Skip: 2, Status: http.StatusInternalServerError})
	var saved Progress
	var p Progress
	err := c.UploadFile(context.Background(), local, "big.chk", &p, func(p Progress) error { saved = p; return nil })
	wantKind(t, err, plugins.KindTransient)
	if saved.ChunksDone != 2 || saved.UploadID == "" {
		t.Fatalf("saved progress %+v, want 2 chunks done", saved)
	}
	// Round trip through the string the scheduler stores.
	st, err := DecodeUploadState(UploadState{"big.chk": saved}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	return st["big.chk"]
}

func TestChunkedResume(t *testing.T) {
	srv := nctest.New(t)
	dir := t.TempDir()
	local := filepath.Join(dir, "big.chk")
	want := writeFile(t, local, 25*mib, 7)
	if err := os.MkdirAll(srv.Path("hpc_results"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := interrupted(t, srv, newClient(t, srv, nil), local)
	putsBefore := srv.Count(http.MethodPut, uploadsPath)

	// A new Client, as after a restart, resumes from the saved progress.
	c := newClient(t, srv, nil)
	if err := c.UploadFile(context.Background(), local, "big.chk", &p, nil); err != nil {
		t.Fatal(err)
	}
	if n := srv.Count(http.MethodPut, uploadsPath) - putsBefore; n != 1 {
		t.Errorf("resume sent %d chunks, want only the missing one", n)
	}
	last := srv.Requests()
	var chunkPaths []string
	for _, r := range last {
		if r.Method == http.MethodPut && strings.HasPrefix(r.Path, uploadsPath) && r.Status == http.StatusCreated {
			chunkPaths = append(chunkPaths, r.Path[strings.LastIndex(r.Path, "/")+1:])
		}
	}
	if strings.Join(chunkPaths, ",") != "00001,00002,00003" {
		t.Errorf("chunks stored: %v", chunkPaths)
	}
	sameContent(t, srv, "hpc_results/big.chk", want)
	if p != (Progress{}) {
		t.Errorf("progress after the upload: %+v", p)
	}
}

// A crash after a chunk reached the server but before its progress was saved:
// the server's listing, not the saved count, decides what is sent again.
func TestChunkedResumeTrustsServerListing(t *testing.T) {
	srv := nctest.New(t)
	dir := t.TempDir()
	local := filepath.Join(dir, "big.chk")
	want := writeFile(t, local, 25*mib, 8)
	if err := os.MkdirAll(srv.Path("hpc_results"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, srv, nil)
	var saved Progress
	var p Progress
	errCrash := errors.New("crash")
	err := c.UploadFile(context.Background(), local, "big.chk", &p, func(p Progress) error {
		if p.ChunksDone == 2 {
			return errCrash // chunk 2 is on the server, its progress is not
		}
		saved = p
		return nil
	})
	if !errors.Is(err, errCrash) {
		t.Fatalf("err = %v", err)
	}
	if saved.ChunksDone != 1 {
		t.Fatalf("saved %+v", saved)
	}
	puts := srv.Count(http.MethodPut, uploadsPath)
	if err := newClient(t, srv, nil).UploadFile(context.Background(), local, "big.chk", &saved, nil); err != nil {
		t.Fatal(err)
	}
	if n := srv.Count(http.MethodPut, uploadsPath) - puts; n != 1 {
		t.Errorf("resume sent %d chunks, want 1", n)
	}
	sameContent(t, srv, "hpc_results/big.chk", want)
}

func TestChunkedExpiredFolderStartsOver(t *testing.T) {
	srv := nctest.New(t)
	dir := t.TempDir()
	local := filepath.Join(dir, "big.chk")
	want := writeFile(t, local, 25*mib, 9)
	if err := os.MkdirAll(srv.Path("hpc_results"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := interrupted(t, srv, newClient(t, srv, nil), local)
	srv.ExpireUploads() // 24 h later
	puts := srv.Count(http.MethodPut, uploadsPath)
	if err := newClient(t, srv, nil).UploadFile(context.Background(), local, "big.chk", &p, nil); err != nil {
		t.Fatal(err)
	}
	if n := srv.Count(http.MethodPut, uploadsPath) - puts; n != 3 {
		t.Errorf("after expiry %d chunks were sent, want all 3", n)
	}
	sameContent(t, srv, "hpc_results/big.chk", want)
}

func TestChunkedChangedFileStartsOver(t *testing.T) {
	srv := nctest.New(t)
	dir := t.TempDir()
	local := filepath.Join(dir, "big.chk")
	writeFile(t, local, 25*mib, 10)
	if err := os.MkdirAll(srv.Path("hpc_results"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := interrupted(t, srv, newClient(t, srv, nil), local)
	want := writeFile(t, local, 21*mib, 11) // fetched again, different now
	if err := newClient(t, srv, nil).UploadFile(context.Background(), local, "big.chk", &p, nil); err != nil {
		t.Fatal(err)
	}
	sameContent(t, srv, "hpc_results/big.chk", want)
	if f := srv.UploadFolders(); len(f) != 0 {
		t.Errorf("stale upload folders left: %v", f)
	}
}

// A MOVE whose answer was lost (proxy timeout) assembled the file: the resume
// sees the folder gone and the destination complete, and sends nothing again.
func TestChunkedAssembledButAnswerLost(t *testing.T) {
	srv := nctest.New(t)
	dir := t.TempDir()
	local := filepath.Join(dir, "big.chk")
	want := writeFile(t, local, 25*mib, 12)
	if err := os.MkdirAll(srv.Path("hpc_results"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, srv, nil)
	var saved, p Progress
	save := func(p Progress) error {
		if p == (Progress{}) {
			return errors.New("crash before the finished upload was recorded")
		}
		saved = p
		return nil
	}
	if err := c.UploadFile(context.Background(), local, "big.chk", &p, save); err == nil {
		t.Fatal("want the save error")
	}
	puts := srv.Count(http.MethodPut, "")
	if err := c.UploadFile(context.Background(), local, "big.chk", &saved, nil); err != nil {
		t.Fatal(err)
	}
	if n := srv.Count(http.MethodPut, "") - puts; n != 0 {
		t.Errorf("%d PUTs after the file was already assembled", n)
	}
	if n := srv.Count("MOVE", ""); n != 1 {
		t.Errorf("%d MOVEs, want 1", n)
	}
	sameContent(t, srv, "hpc_results/big.chk", want)
}

func TestErrorsAreClassified(t *testing.T) {
	tests := []struct {
		name   string
		fault  nctest.Fault
		quota  int64
		size   int // of the one file uploaded
		kind   plugins.Kind
		text   string // the error starts with it
		reqMax int    // requests the server may see (0: no check)
	}{
		{name: "507 small", quota: 1000, size: 2000, kind: plugins.KindPermanent,
			text: "upload to cloud failed: 507 Insufficient Storage (the Nextcloud account is full)"},
		{name: "507 chunked, at the first chunk", quota: 1000, size: 12 * mib, kind: plugins.KindPermanent,
			text: "upload to cloud failed: 507 Insufficient Storage (the Nextcloud account is full)"},
		{name: "500", fault: nctest.Fault{Status: 500}, size: 10, kind: plugins.KindTransient,
			text: "upload to cloud failed: 500 Internal Server Error"},
		{name: "503 on a chunk", fault: nctest.Fault{Method: "PUT", PathPrefix: uploadsPath, Status: 503}, size: 12 * mib,
			kind: plugins.KindTransient, text: "upload to cloud failed: 503 Service Unavailable"},
		{name: "401 once", fault: nctest.Fault{Status: 401}, size: 10, kind: plugins.KindAuth,
			text: "upload to cloud failed: 401 Unauthorized", reqMax: 1},
		{name: "403", fault: nctest.Fault{Status: 403}, size: 10, kind: plugins.KindAuth,
			text: "upload to cloud failed: 403 Forbidden", reqMax: 1},
		{name: "423 locked", fault: nctest.Fault{Method: "PUT", Status: 423}, size: 10, kind: plugins.KindTransient,
			text: "upload to cloud failed: 423 Locked"},
		{name: "413", fault: nctest.Fault{Method: "PUT", Status: 413}, size: 10, kind: plugins.KindPermanent,
			text: "upload to cloud failed: 413 Request Entity Too Large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := nctest.New(t)
			srv.SetQuota(tc.quota)
			if tc.fault.Status != 0 {
				srv.Inject(tc.fault)
			}
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "f"), tc.size, 1)
			err := newClient(t, srv, nil).UploadDir(context.Background(), dir, "calc", nil, nil)
			wantKind(t, err, tc.kind)
			if !strings.HasPrefix(err.Error(), tc.text) {
				t.Errorf("error %q, want it to start with %q", err, tc.text)
			}
			noSecret(t, err.Error(), srv.Password)
			if n := len(srv.Requests()); tc.reqMax > 0 && n > tc.reqMax {
				t.Errorf("%d requests, want at most %d (a refused login is never retried)", n, tc.reqMax)
			}
		})
	}
}

func TestWrongPasswordIsOneRequest(t *testing.T) {
	srv := nctest.New(t)
	const wrong = "not-the-password-123"
	c := newClient(t, srv, func(o *Options) { o.Password = wrong })
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "f"), 10, 1)
	err := c.UploadDir(context.Background(), dir, "calc", nil, nil)
	wantKind(t, err, plugins.KindAuth)
	noSecret(t, err.Error(), wrong)
	if n := srv.AuthFailures(); n != 1 {
		t.Errorf("%d failed logins, want exactly 1", n)
	}
	_, err = c.Share(context.Background(), "calc")
	wantKind(t, err, plugins.KindAuth)
	noSecret(t, err.Error(), wrong)
	if n := srv.AuthFailures(); n != 2 {
		t.Errorf("%d failed logins after one upload and one share, want 2", n)
	}
}

func TestTransientThenRecovers(t *testing.T) {
	srv := nctest.New(t)
	c := newClient(t, srv, nil)
	dir := t.TempDir()
	want := writeFile(t, filepath.Join(dir, "f"), 100, 1)
	srv.Inject(nctest.Fault{Method: http.MethodPut, Times: 1, Status: http.StatusBadGateway})
	err := c.UploadDir(context.Background(), dir, "calc", nil, nil)
	wantKind(t, err, plugins.KindTransient)
	if err := c.UploadDir(context.Background(), dir, "calc", nil, nil); err != nil {
		t.Fatal(err)
	}
	sameContent(t, srv, "hpc_results/calc/f", want)
}

func TestConnectionRefusedIsTransient(t *testing.T) {
	srv := nctest.New(t)
	c := newClient(t, srv, func(o *Options) { o.URL = "http://127.0.0.1:1" })
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "f"), 10, 1)
	err := c.UploadDir(context.Background(), dir, "calc", nil, nil)
	wantKind(t, err, plugins.KindTransient)
	noSecret(t, err.Error(), srv.Password)
}

// A server that stops answering is abandoned after IdleTimeout, as a transient error.
func TestStalledRequestIsAbandoned(t *testing.T) {
	for _, method := range []string{"MKCOL", http.MethodPut} {
		t.Run(method, func(t *testing.T) {
			srv := nctest.New(t)
			c := newClient(t, srv, func(o *Options) { o.IdleTimeout = 50e6 }) // 50 ms
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "f"), 100, 1)
			srv.Inject(nctest.Fault{Method: method, Hang: true})
			err := c.UploadDir(context.Background(), dir, "calc", nil, nil)
			wantKind(t, err, plugins.KindTransient)
			if !strings.Contains(err.Error(), "no progress") {
				t.Errorf("error %q does not say the server stalled", err)
			}
			srv.ReleaseAll()
		})
	}
}

func TestCancelledContext(t *testing.T) {
	srv := nctest.New(t)
	c := newClient(t, srv, nil)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "f"), 100, 1)
	srv.HangNext(1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.UploadDir(ctx, dir, "calc", nil, nil) }()
	<-srv.Hung()
	cancel()
	err := <-done
	wantKind(t, err, plugins.KindTransient)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %q does not wrap context.Canceled", err)
	}
}

// The client streams: a 256 MiB upload never holds the file in memory. The fake
// records the largest body (at most one chunk), and the bytes the whole process
// allocated during the upload (client and fake server together) stay far below
// the file size; HeapInuse is sampled whenever the server stores a chunk.
func TestChunkedUploadDoesNotBuffer(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 512 MiB to the temporary folder")
	}
	const size = 256 * mib
	srv := nctest.New(t)
	c := newClient(t, srv, nil)
	local := filepath.Join(t.TempDir(), "huge.chk")
	f, err := os.Create(local)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil { // sparse: no disk used on this side
		t.Fatal(err)
	}
	f.Close()
	if err := os.MkdirAll(srv.Path("hpc_results"), 0o755); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var peak uint64
	srv.SetChunkHook(func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		mu.Lock()
		peak = max(peak, ms.HeapInuse)
		mu.Unlock()
	})
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var p Progress
	if err := c.UploadFile(context.Background(), local, "huge.chk", &p, nil); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	srv.SetChunkHook(nil)
	mu.Lock()
	defer mu.Unlock()

	if m := srv.MaxBody(); m > DefaultChunkSize {
		t.Errorf("largest request body %d bytes, more than one chunk", m)
	}
	if n := srv.Count(http.MethodPut, uploadsPath); n != size/DefaultChunkSize+1 {
		t.Errorf("%d chunk PUTs", n)
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d MiB in all during the upload; heap in use at most %d MiB (before %d MiB)",
		allocated/mib, peak/mib, before.HeapInuse/mib)
	if allocated > size/4 {
		t.Errorf("allocated %d MiB while uploading a %d MiB file: something buffers it", allocated/mib, size/mib)
	}
	if peak > before.HeapInuse+size/4 {
		t.Errorf("heap in use reached %d MiB during a %d MiB upload", peak/mib, size/mib)
	}
	if !isZeros(t, srv.Path("hpc_results/huge.chk"), size) {
		t.Error("the file on the server differs")
	}
}
