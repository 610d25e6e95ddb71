package nctest

import (
	"crypto/subtle"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/webdav"
)

// Default credentials of the account a Server serves.
const (
	DefaultUser     = "hpcbot"
	DefaultPassword = "app-password-Xq7"
)

// Server is a fake Nextcloud: one account, files served by golang.org/x/net/webdav
// from a temporary folder, chunked upload v2, the OCS share API, public share
// pages, and fault injection. Use the setters to change its behaviour; they are
// safe while requests run.
type Server struct {
	URL  string // http://127.0.0.1:port, no trailing slash
	User string
	// Password is the account's password: set it before the first request,
	// or with SetPassword while requests run.
	Password string

	srv      *httptest.Server
	filesDir string // the account's files
	upDir    string // chunked upload folders
	files    *webdav.Handler
	uploads  *webdav.Handler

	mu           sync.Mutex
	faults       []*Fault
	requests     []Request
	maxBody      int64
	authFailures int
	quota        int64
	minChunk     int64
	shareLimit   int
	sharePeriod  time.Duration
	retryAfter   string
	chunkHook    func()
	shares       []*share
	nextShareID  int
	shareTimes   []time.Time
	release      chan struct{}
	hung         chan string
}

// Request is what the Server recorded of one request.
type Request struct {
	Method   string
	Path     string // URL path, unescaped
	BodySize int64  // bytes the handler read from the body
	Status   int
}

// New starts a Server for the duration of the test.
func New(t testing.TB) *Server {
	t.Helper()
	root := t.TempDir()
	s := &Server{
		User:        DefaultUser,
		Password:    DefaultPassword,
		filesDir:    filepath.Join(root, "files"),
		upDir:       filepath.Join(root, "uploads"),
		minChunk:    5 << 20,
		shareLimit:  20,
		sharePeriod: 10 * time.Minute,
		release:     make(chan struct{}),
		hung:        make(chan string, 64),
		nextShareID: 1,
	}
	for _, d := range []string{s.filesDir, s.upDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s.files = &webdav.Handler{Prefix: s.filesPrefix(), FileSystem: webdav.Dir(s.filesDir), LockSystem: webdav.NewMemLS()}
	s.uploads = &webdav.Handler{Prefix: s.uploadsPrefix(), FileSystem: webdav.Dir(s.upDir), LockSystem: webdav.NewMemLS()}
	s.srv = httptest.NewServer(s)
	s.URL = s.srv.URL
	t.Cleanup(func() {
		s.ReleaseAll()
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
	return s
}

func (s *Server) filesPrefix() string   { return "/remote.php/dav/files/" + s.User }
func (s *Server) uploadsPrefix() string { return "/remote.php/dav/uploads/" + s.User }

// FilesDir is the folder on disk that holds the account's files.
func (s *Server) FilesDir() string { return s.filesDir }

// Path returns the file on disk behind a path below the account's root.
func (s *Server) Path(remote string) string {
	return filepath.Join(s.filesDir, filepath.FromSlash(path.Clean("/"+remote)))
}

// ReadFile returns the content of a file below the account's root.
func (s *Server) ReadFile(remote string) ([]byte, error) { return os.ReadFile(s.Path(remote)) }

// SetQuota limits the account's files to n bytes (0: no limit); beyond it uploads
// answer 507 Insufficient Storage.
func (s *Server) SetQuota(n int64) { s.mu.Lock(); s.quota = n; s.mu.Unlock() }

// SetPassword changes the account's password (as an admin who resets the
// bot's app password does).
func (s *Server) SetPassword(p string) { s.mu.Lock(); s.Password = p; s.mu.Unlock() }

// SetMinChunkSize changes the smallest chunk but the last that assembly accepts
// (default 5 MiB, Nextcloud's).
func (s *Server) SetMinChunkSize(n int64) { s.mu.Lock(); s.minChunk = n; s.mu.Unlock() }

// SetShareLimit changes the share-creation limit (default 20 per 10 min).
func (s *Server) SetShareLimit(n int, period time.Duration) {
	s.mu.Lock()
	s.shareLimit, s.sharePeriod = n, period
	s.mu.Unlock()
}

// SetRetryAfter makes rate-limit answers (429) carry this Retry-After header.
// Nextcloud itself sends none; the default is "".
func (s *Server) SetRetryAfter(v string) { s.mu.Lock(); s.retryAfter = v; s.mu.Unlock() }

// SetChunkHook calls f after every chunk the server stored (for tests that
// sample something while an upload is in flight).
func (s *Server) SetChunkHook(f func()) { s.mu.Lock(); s.chunkHook = f; s.mu.Unlock() }

// Fault makes matching requests fail or hang. Zero fields match everything.
type Fault struct {
	Method     string // "PUT", "MKCOL", ... ("": any)
	PathPrefix string // URL path prefix, e.g. "/remote.php/dav/uploads/" ("": any)
	Skip       int    // let this many matching requests through first
	Times      int    // then apply to this many (0: one)
	Status     int    // answer this status ...
	RetryAfter string // ... with this Retry-After header
	Hang       bool   // or hang until Release (then proceed, or answer Status if set)
}

// Inject adds a fault; faults are tried in the order they were added.
func (s *Server) Inject(f Fault) {
	if f.Times <= 0 {
		f.Times = 1
	}
	s.mu.Lock()
	s.faults = append(s.faults, &f)
	s.mu.Unlock()
}

// FailNext makes the next n requests answer status.
func (s *Server) FailNext(n, status int) { s.Inject(Fault{Times: n, Status: status}) }

// HangNext makes the next n requests hang until Release.
func (s *Server) HangNext(n int) { s.Inject(Fault{Times: n, Hang: true}) }

// Hung delivers "METHOD path" for every request that starts hanging.
func (s *Server) Hung() <-chan string { return s.hung }

// ReleaseAll lets every hanging request (and any that hangs later) go on.
func (s *Server) ReleaseAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.release:
	default:
		close(s.release)
	}
}

// Requests returns what the server saw, in order of completion.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Count returns how many requests had this method ("": any) and a path with this prefix.
func (s *Server) Count(method, pathPrefix string) int {
	n := 0
	for _, r := range s.Requests() {
		if (method == "" || r.Method == method) && strings.HasPrefix(r.Path, pathPrefix) {
			n++
		}
	}
	return n
}

// MaxBody returns the largest request body the server read, in bytes.
func (s *Server) MaxBody() int64 { s.mu.Lock(); defer s.mu.Unlock(); return s.maxBody }

// AuthFailures returns how many requests came with wrong or no credentials.
func (s *Server) AuthFailures() int { s.mu.Lock(); defer s.mu.Unlock(); return s.authFailures }

// ExpireUploads removes every chunked-upload folder, as Nextcloud does after
// 24 hours without activity (docs/FACTS.md#nextcloud-chunked-upload).
func (s *Server) ExpireUploads() {
	entries, _ := os.ReadDir(s.upDir)
	for _, e := range entries {
		_ = os.RemoveAll(filepath.Join(s.upDir, e.Name()))
	}
}

// UploadFolders returns the names of the chunked-upload folders that exist.
func (s *Server) UploadFolders() []string {
	entries, _ := os.ReadDir(s.upDir)
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

type countingReader struct {
	io.ReadCloser
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	return n, err
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body := &countingReader{ReadCloser: r.Body}
	r.Body = body
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		s.mu.Lock()
		s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, BodySize: body.n, Status: sw.status})
		if body.n > s.maxBody {
			s.maxBody = body.n
		}
		s.mu.Unlock()
	}()
	if f := s.fault(r); f != nil {
		if f.Hang {
			select {
			case s.hung <- r.Method + " " + r.URL.Path:
			default:
			}
			s.mu.Lock()
			release := s.release
			s.mu.Unlock()
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		if f.Status != 0 {
			if f.RetryAfter != "" {
				sw.Header().Set("Retry-After", f.RetryAfter)
			}
			sabreError(sw, f.Status, "Sabre\\DAV\\Exception", "injected fault")
			return
		}
	}
	p := r.URL.Path
	switch {
	case p == s.filesPrefix() || strings.HasPrefix(p, s.filesPrefix()+"/"):
		if s.auth(sw, r, false) {
			s.serveFiles(sw, r)
		}
	case p == s.uploadsPrefix() || strings.HasPrefix(p, s.uploadsPrefix()+"/"):
		if s.auth(sw, r, false) {
			s.serveUploads(sw, r)
		}
	case strings.HasPrefix(p, "/ocs/v1.php/apps/files_sharing/api/v1/shares"),
		strings.HasPrefix(p, "/ocs/v2.php/apps/files_sharing/api/v1/shares"):
		s.serveOCS(sw, r)
	case strings.HasPrefix(p, "/s/"):
		s.serveSharePage(sw, r)
	case strings.HasPrefix(p, "/public.php/dav/files/"):
		s.servePublicDAV(sw, r)
	default:
		http.NotFound(sw, r)
	}
}

// fault returns the fault that applies to r, if any, and uses it up.
func (s *Server) fault(r *http.Request) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if (f.Method != "" && f.Method != r.Method) || !strings.HasPrefix(r.URL.Path, f.PathPrefix) {
			continue
		}
		if f.Skip > 0 {
			f.Skip--
			continue
		}
		f.Times--
		if f.Times <= 0 {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
		}
		c := *f
		return &c
	}
	return nil
}

// auth checks Basic credentials. A failure answers 401 as Sabre does (or as OCS
// does when ocs is set) and counts towards AuthFailures.
func (s *Server) auth(w http.ResponseWriter, r *http.Request, ocs bool) bool {
	u, p, ok := r.BasicAuth()
	s.mu.Lock()
	want := s.Password
	s.mu.Unlock()
	if ok && subtle.ConstantTimeCompare([]byte(u), []byte(s.User)) == 1 &&
		subtle.ConstantTimeCompare([]byte(p), []byte(want)) == 1 {
		return true
	}
	s.mu.Lock()
	s.authFailures++
	s.mu.Unlock()
	w.Header().Set("WWW-Authenticate", `Basic realm="Nextcloud", charset="UTF-8"`)
	if ocs {
		s.writeOCS(w, r, http.StatusUnauthorized, 997, "Current user is not logged in", nil)
		return false
	}
	sabreError(w, http.StatusUnauthorized, "Sabre\\DAV\\Exception\\NotAuthenticated", "No public access to this resource., Username or password was incorrect")
	return false
}

// sabreError writes an error the way Nextcloud's WebDAV server (sabre/dav) does.
func sabreError(w http.ResponseWriter, status int, exception, msg string) {
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?>
<d:error xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns">
  <s:exception>%s</s:exception>
  <s:message>%s</s:message>
</d:error>
`, xmlEscape(exception), xmlEscape(msg))
}

// serveFiles is /remote.php/dav/files/<user>/: x/net/webdav for everything but
// PUT, which is done here as Nextcloud does it: the body goes to a part file that
// replaces the target only when Content-Length bytes arrived, X-OC-Mtime sets the
// modification time, and the quota is checked first (507).
func (s *Server) serveFiles(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut {
		s.files.ServeHTTP(w, r)
		return
	}
	rel := strings.TrimPrefix(r.URL.Path, s.filesPrefix())
	target := s.Path(rel)
	if !s.checkPutLength(w, r) || !s.checkQuota(w, r.ContentLength) {
		return
	}
	if st, err := os.Stat(filepath.Dir(target)); err != nil || !st.IsDir() {
		sabreError(w, http.StatusConflict, "Sabre\\DAV\\Exception\\Conflict", "Files can only be created as children of collections")
		return
	}
	if st, err := os.Stat(target); err == nil && st.IsDir() {
		sabreError(w, http.StatusMethodNotAllowed, "Sabre\\DAV\\Exception\\MethodNotAllowed", "A collection cannot be overwritten")
		return
	}
	_, existed := os.Stat(target)
	if err := writeExactly(target, r.Body, r.ContentLength); err != nil {
		sabreError(w, http.StatusBadRequest, "Sabre\\DAV\\Exception\\BadRequest", err.Error())
		return
	}
	if !setMtime(w, r, target) {
		return
	}
	if existed == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

// checkPutLength refuses a PUT without Content-Length: behind php-fpm such an
// upload can be stored as an empty file (docs/FACTS.md#nextcloud-put-without-length),
// so a client that sends one is wrong even where the server does not complain.
func (s *Server) checkPutLength(w http.ResponseWriter, r *http.Request) bool {
	if r.ContentLength < 0 {
		sabreError(w, http.StatusLengthRequired, "Sabre\\DAV\\Exception", "hpcbot fake: PUT without Content-Length (php-fpm may store it as an empty file)")
		return false
	}
	return true
}

// checkQuota answers 507 when n more bytes would exceed the quota.
func (s *Server) checkQuota(w http.ResponseWriter, n int64) bool {
	s.mu.Lock()
	quota := s.quota
	s.mu.Unlock()
	if quota <= 0 {
		return true
	}
	if used := s.used(); used+n > quota {
		sabreError(w, http.StatusInsufficientStorage, "Sabre\\DAV\\Exception\\InsufficientStorage",
			fmt.Sprintf("Insufficient space in %s, %d required, %d available", "/", n, max(0, quota-used)))
		return false
	}
	return true
}

func (s *Server) used() int64 {
	var n int64
	_ = filepath.WalkDir(s.filesDir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// writeExactly writes n bytes from r to target through a part file.
func writeExactly(target string, r io.Reader, n int64) error {
	tmp, err := os.CreateTemp(filepath.Dir(target), ".part-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	got, err := io.Copy(tmp, io.LimitReader(r, n))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("reading the body: %w", err)
	}
	if got != n {
		return fmt.Errorf("expected filesize of %d bytes but read (from Nextcloud client) and wrote (to Nextcloud storage) %d bytes", n, got)
	}
	return os.Rename(tmp.Name(), target)
}

// setMtime applies X-OC-Mtime (unix seconds) and says "accepted" as Nextcloud does.
func setMtime(w http.ResponseWriter, r *http.Request, target string) bool {
	v := r.Header.Get("X-OC-Mtime")
	if v == "" {
		return true
	}
	sec, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		sabreError(w, http.StatusBadRequest, "Sabre\\DAV\\Exception\\BadRequest", "X-OC-Mtime header must be an integer (unix timestamp).")
		return false
	}
	t := time.Unix(sec, 0)
	if err := os.Chtimes(target, t, t); err != nil {
		sabreError(w, http.StatusInternalServerError, "Sabre\\DAV\\Exception", err.Error())
		return false
	}
	w.Header().Set("X-OC-MTime", "accepted")
	return true
}
