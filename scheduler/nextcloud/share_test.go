package nextcloud

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"hpcbot/plugins"
	"hpcbot/scheduler/nextcloud/nctest"
)

const sharesPath = "/ocs/v2.php/apps/files_sharing/api/v1/shares"

func mkdirs(t *testing.T, srv *nctest.Server, remotes ...string) {
	t.Helper()
	for _, r := range remotes {
		if err := os.MkdirAll(srv.Path(r), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func get(t *testing.T, link string) (int, string) {
	t.Helper()
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestShareCreatedOnceAndReused(t *testing.T) {
	srv := nctest.New(t)
	mkdirs(t, srv, "hpc_results/1700000000_42_water/sub")
	if err := os.WriteFile(srv.Path("hpc_results/1700000000_42_water/water.out"), []byte("E=-76.0"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, srv, nil)
	link, err := c.Share(context.Background(), "1700000000_42_water")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(link, srv.URL+"/s/") || len(link) != len(srv.URL)+3+15 {
		t.Errorf("link %q does not look like Nextcloud's /s/<token>", link)
	}
	// A repeat (the crash between creating the share and recording it) and a
	// restarted Client both find the share instead of creating another.
	for _, c := range []*Client{c, newClient(t, srv, nil)} {
		again, err := c.Share(context.Background(), "1700000000_42_water")
		if err != nil {
			t.Fatal(err)
		}
		if again != link {
			t.Errorf("second link %q, want the first %q", again, link)
		}
	}
	if n := srv.Count(http.MethodPost, sharesPath); n != 1 {
		t.Errorf("%d share creations, want 1", n)
	}
	if got := srv.Shares(); len(got) != 1 || got[0] != "/hpc_results/1700000000_42_water" {
		t.Errorf("shares on the server: %v", got)
	}
	if code, body := get(t, link); code != 200 || !strings.Contains(body, "water.out") {
		t.Errorf("share page: %d %q", code, body)
	}
}

func TestShareOptions(t *testing.T) {
	srv := nctest.New(t)
	mkdirs(t, srv, "hpc_results/calc")
	const sharePassword = "s3cret-share-pw"
	var logs bytes.Buffer
	c := newClient(t, srv, func(o *Options) {
		o.ShareExpireDays = 7
		o.SharePassword = sharePassword
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	link, err := c.Share(context.Background(), "calc")
	if err != nil {
		t.Fatal(err)
	}
	tok := link[strings.LastIndex(link, "/")+1:]
	// The public WebDAV of a password-protected share wants "anonymous" and the password.
	req, _ := http.NewRequest("PROPFIND", srv.URL+"/public.php/dav/files/"+tok+"/", nil)
	req.Header.Set("Depth", "0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("share without password: %d", resp.StatusCode)
	}
	req.SetBasicAuth("anonymous", sharePassword)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMultiStatus {
		t.Errorf("share with password: %d", resp.StatusCode)
	}
	// The expiry went out as YYYY-MM-DD, 7 days ahead.
	q := url.Values{"path": {"/hpc_results/calc"}, "format": {"json"}}
	req, _ = http.NewRequest(http.MethodGet, srv.URL+sharesPath+"?"+q.Encode(), nil)
	req.SetBasicAuth(srv.User, srv.Password)
	req.Header.Set("OCS-APIRequest", "true")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := time.Now().UTC().AddDate(0, 0, 7).Format(time.DateOnly) + " 00:00:00"
	if !strings.Contains(string(body), want) {
		t.Errorf("share listing %s lacks expiration %s", body, want)
	}
	noSecret(t, logs.String(), sharePassword)
	noSecret(t, logs.String(), srv.Password)
	noSecret(t, fmt.Sprint(c.opts), sharePassword)
	noSecret(t, fmt.Sprint(c.opts), srv.Password)
}

// A link that expires sooner than a new one would is not reused.
func TestShareNotReusedWhenExpiringSoon(t *testing.T) {
	srv := nctest.New(t)
	mkdirs(t, srv, "hpc_results/u42")
	tomorrow := time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly)
	form := url.Values{"path": {"/hpc_results/u42"}, "shareType": {"3"}, "permissions": {"1"}, "expireDate": {tomorrow}}.Encode()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+sharesPath, strings.NewReader(form))
	req.SetBasicAuth(srv.User, srv.Password)
	req.Header.Set("OCS-APIRequest", "true")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("creating the old share: %d", resp.StatusCode)
	}
	week := newClient(t, srv, func(o *Options) { o.ShareExpireDays = 7 })
	if _, err := week.Share(context.Background(), "u42"); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Shares()); n != 2 {
		t.Errorf("%d shares, want a new one beside the one expiring tomorrow", n)
	}
	// Without an expiry setting, any link still valid is good.
	forever := newClient(t, srv, nil)
	if _, err := forever.Share(context.Background(), "u42"); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Shares()); n != 2 {
		t.Errorf("%d shares, want the existing one reused", n)
	}
}

// A server (or proxy) that ignores Accept answers XML; OCS v1 answers statuscode 100.
func TestShareXMLReply(t *testing.T) {
	srv := nctest.New(t)
	mkdirs(t, srv, "hpc_results/calc")
	target, _ := url.Parse(srv.URL)
	proxy := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Header.Del("Accept")
	}})
	t.Cleanup(proxy.Close)
	c := newClient(t, srv, func(o *Options) { o.URL = proxy.URL })
	link, err := c.Share(context.Background(), "calc")
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Share(context.Background(), "calc")
	if err != nil || again != link {
		t.Fatalf("second share %q, %v; want %q", again, err, link)
	}
	if n := srv.Count(http.MethodPost, sharesPath); n != 1 {
		t.Errorf("%d creations", n)
	}
}

func TestShareRateLimit(t *testing.T) {
	srv := nctest.New(t)
	var paths []string
	for i := range 23 {
		p := fmt.Sprintf("calc%02d", i)
		paths = append(paths, p)
		mkdirs(t, srv, "hpc_results/"+p)
	}
	c := newClient(t, srv, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, p := range paths[:20] {
		if _, err := c.Share(ctx, p); err != nil {
			t.Fatalf("share %s: %v", p, err)
		}
	}
	// The 21st would wait until the first leaves the 10-minute window, past the
	// deadline: refused at once, without asking the server.
	_, err := c.Share(ctx, paths[20])
	wantKind(t, err, plugins.KindTransient)
	var le *LimitError
	if !errors.As(err, &le) {
		t.Fatalf("error %q is not a LimitError", err)
	}
	if d, ok := RetryAfter(err); !ok || d < 9*time.Minute || d > 10*time.Minute {
		t.Errorf("RetryAfter = %v, %v", d, ok)
	}
	if n := srv.Count(http.MethodPost, sharesPath); n != 20 {
		t.Errorf("%d creations reached the server, want 20", n)
	}
	// A repeat of a shared path still works: lookups are not limited.
	if _, err := c.Share(ctx, paths[0]); err != nil {
		t.Errorf("reuse while limited: %v", err)
	}

	// Another client of the account (a restarted bot) has a full bucket, but the
	// server counts 20 already: 429, which is transient and pauses that client.
	srv.SetRetryAfter("120")
	c2 := newClient(t, srv, nil)
	_, err = c2.Share(ctx, paths[21])
	wantKind(t, err, plugins.KindTransient)
	if statusOf(err) != http.StatusTooManyRequests {
		t.Errorf("error %q is not a 429", err)
	}
	if d, ok := RetryAfter(err); !ok || d != 120*time.Second {
		t.Errorf("RetryAfter = %v, %v; want 2m0s", d, ok)
	}
	posts := srv.Count(http.MethodPost, sharesPath)
	_, err = c2.Share(ctx, paths[22])
	if !errors.As(err, &le) || le.Wait < 100*time.Second {
		t.Errorf("after a 429 with Retry-After 120 the next creation got %v", err)
	}
	if n := srv.Count(http.MethodPost, sharesPath); n != posts {
		t.Errorf("the paused client still sent %d creations", n-posts)
	}

	// Without Retry-After (Nextcloud sends none) the client pauses for two intervals.
	srv.SetRetryAfter("")
	c3 := newClient(t, srv, nil)
	_, err = c3.Share(ctx, paths[21])
	if statusOf(err) != http.StatusTooManyRequests {
		t.Fatalf("want a 429, got %v", err)
	}
	if _, ok := RetryAfter(err); ok {
		t.Errorf("RetryAfter reported a wait the server never asked for")
	}
	_, err = c3.Share(ctx, paths[22])
	if !errors.As(err, &le) || le.Wait <= 30*time.Second {
		t.Errorf("after a bare 429 the next creation got %v", err)
	}
}

// OCS v1 keeps HTTP 200 for a rate-limited call and says 429 in meta only.
func TestShareRateLimitV1Envelope(t *testing.T) {
	env, err := parseOCS([]byte(`{"ocs":{"meta":{"status":"failure","statuscode":429,"message":""},"data":[]}}`))
	if err != nil || env.StatusCode != 429 {
		t.Fatalf("%+v %v", env, err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			fmt.Fprint(w, `{"ocs":{"meta":{"status":"ok","statuscode":100,"message":"OK"},"data":[]}}`)
			return
		}
		fmt.Fprint(w, `{"ocs":{"meta":{"status":"failure","statuscode":429,"message":""},"data":[]}}`)
	}))
	t.Cleanup(srv.Close)
	c, err := New(Options{URL: srv.URL, User: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Share(context.Background(), "x")
	wantKind(t, err, plugins.KindTransient)
	if statusOf(err) != http.StatusTooManyRequests {
		t.Errorf("error %q", err)
	}
}

func TestShareErrors(t *testing.T) {
	tests := []struct {
		name  string
		path  string
		fault nctest.Fault
		kind  plugins.Kind
		text  string
	}{
		{name: "missing path", path: "nope", kind: plugins.KindNotFound,
			text: "share on cloud failed: 404 Not Found: Wrong path, file/folder does not exist"},
		{name: "maintenance", path: "calc", fault: nctest.Fault{Status: 503}, kind: plugins.KindTransient,
			text: "share on cloud failed: 503 Service Unavailable"},
		{name: "refused login on create", path: "calc", fault: nctest.Fault{Method: http.MethodPost, Status: 401}, kind: plugins.KindAuth,
			text: "share on cloud failed: 401 Unauthorized"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := nctest.New(t)
			mkdirs(t, srv, "hpc_results/calc")
			if tc.fault.Status != 0 {
				srv.Inject(tc.fault)
			}
			_, err := newClient(t, srv, nil).Share(context.Background(), tc.path)
			wantKind(t, err, tc.kind)
			if !strings.HasPrefix(err.Error(), tc.text) {
				t.Errorf("error %q, want it to start with %q", err, tc.text)
			}
		})
	}
}

// An HTML page where an OCS reply belongs (a login page from a misconfigured
// proxy) is a permanent error that says so.
func TestShareNotOCS(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html><body>Login</body></html>")
	}))
	t.Cleanup(srv.Close)
	c, err := New(Options{URL: srv.URL, User: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Share(context.Background(), "x")
	wantKind(t, err, plugins.KindPermanent)
	if !strings.Contains(err.Error(), "not an OCS reply") {
		t.Errorf("error %q", err)
	}
}

func TestShareFolderLink(t *testing.T) {
	srv := nctest.New(t)
	mkdirs(t, srv, "hpc_results/u42/1700000000_42_water", "hpc_results/u42/other")
	if err := os.WriteFile(srv.Path("hpc_results/u42/1700000000_42_water/water.out"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, srv, nil)
	base, err := c.Share(context.Background(), "u42")
	if err != nil {
		t.Fatal(err)
	}
	link, err := ShareFolderLink(base, "1700000000_42_water")
	if err != nil {
		t.Fatal(err)
	}
	if want := base + "?path=%2F1700000000_42_water"; link != want {
		t.Errorf("link %q, want %q", link, want)
	}
	if code, body := get(t, link); code != 200 || strings.TrimSpace(body) != "water.out" {
		t.Errorf("sub folder page: %d %q", code, body)
	}
	missing, _ := ShareFolderLink(base, "gone")
	if code, _ := get(t, missing); code != http.StatusNotFound {
		t.Errorf("missing sub folder: %d", code)
	}

	for _, tc := range []struct{ base, sub, want string }{
		{"https://c.example/s/AbC", "/a b/c", "https://c.example/s/AbC?path=%2Fa+b%2Fc"},
		{"https://c.example/index.php/s/AbC", "../x", "https://c.example/index.php/s/AbC?path=%2Fx"},
		{"https://c.example/s/AbC?x=1", "d", "https://c.example/s/AbC?path=%2Fd&x=1"},
	} {
		got, err := ShareFolderLink(tc.base, tc.sub)
		if err != nil || got != tc.want {
			t.Errorf("ShareFolderLink(%q, %q) = %q, %v; want %q", tc.base, tc.sub, got, err, tc.want)
		}
	}
}
