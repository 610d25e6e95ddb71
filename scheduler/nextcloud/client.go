package nextcloud

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/studio-b12/gowebdav"
)

// Defaults and Nextcloud's limits (docs/FACTS.md#nextcloud-chunked-upload).
const (
	DefaultChunkThreshold = 10 << 20 // files from this size on use chunked upload v2
	DefaultChunkSize      = 10 << 20 // the server's own default (files max_chunk_size)
	// MinChunkSize and MaxChunkSize bound every chunk but the last: 5 MB to 5 GB
	// (docs/FACTS.md#nextcloud-chunked-upload).
	MinChunkSize = 5 << 20
	MaxChunkSize = 5 << 30
	// MaxChunks is the highest chunk number Nextcloud accepts (names 1 to 10000).
	MaxChunks = 10000

	DefaultIdleTimeout     = 2 * time.Minute
	DefaultAssembleTimeout = 30 * time.Minute

	// Nextcloud allows 20 share creations per user in 10 minutes (server PR 50905).
	DefaultShareLimit  = 20
	DefaultSharePeriod = 10 * time.Minute
)

// Options configure a Client. The scheduler copies them from its [storage] config.
type Options struct {
	URL      string // https://cloud.example.org (a path prefix such as /nextcloud is kept)
	User     string // the account's login name (user id)
	Password string // an app password; never logged, never in an error
	BasePath string // folder below the account's root that receives results, e.g. "hpc_results"

	ChunkThreshold int64 // files of at least this size use chunked upload (default 10 MiB)
	ChunkSize      int64 // chunk size, 5 MiB to 5 GiB (default 10 MiB)

	// HTTPClient sends every request (default: a client with dial and TLS timeouts and
	// no overall timeout; a transfer is bounded by IdleTimeout and the caller's context).
	HTTPClient *http.Client
	// IdleTimeout abandons a request that made no progress (no body byte sent, no
	// answer) for this long (default 2 min). AssembleTimeout bounds the MOVE that
	// assembles a chunked upload, which can take long on big files (default 30 min).
	IdleTimeout     time.Duration
	AssembleTimeout time.Duration

	ShareExpireDays int    // expiry of new public links in days (0: none)
	SharePassword   string // password of new public links ("": none); never logged
	// ShareLimit share creations per SharePeriod (default 20 per 10 min, Nextcloud's own
	// limit); the Client queues creations beyond it.
	ShareLimit  int
	SharePeriod time.Duration

	Logger *slog.Logger
}

// String prints the options without their secrets.
func (o Options) String() string {
	return fmt.Sprintf("nextcloud %s as %s, base %q", o.URL, o.User, o.BasePath)
}

// GoString keeps the secrets out of %#v.
func (o Options) GoString() string { return "nextcloud.Options{" + o.String() + "}" }

// LogValue keeps the secrets out of slog.
func (o Options) LogValue() slog.Value {
	return slog.GroupValue(slog.String("url", o.URL), slog.String("user", o.User), slog.String("base_path", o.BasePath))
}

// Client uploads result folders to one Nextcloud account and shares them as public
// read-only links. It is safe for concurrent use; one Client per account, so that
// its share limiter sees every share creation of that account.
type Client struct {
	opts    Options
	base    string // scheme://host[:port][/prefix], no trailing slash, escaped
	hc      *http.Client
	log     *slog.Logger
	limiter *limiter
	now     func() time.Time
}

// New checks opts and returns a Client. It does not contact the server.
func New(opts Options) (*Client, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("nextcloud: %q is not an http(s) URL such as https://cloud.example.org", opts.URL)
	}
	if u.User != nil {
		return nil, errors.New("nextcloud: the URL must not carry a user or password; set them separately")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("nextcloud: the URL must not have a query or fragment")
	}
	if opts.User == "" {
		return nil, errors.New("nextcloud: no user")
	}
	if opts.Password == "" {
		return nil, errors.New("nextcloud: no password")
	}
	opts.BasePath = strings.Trim(path.Clean("/"+opts.BasePath), "/")
	if opts.ChunkThreshold <= 0 {
		opts.ChunkThreshold = DefaultChunkThreshold
	}
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = DefaultChunkSize
	}
	if opts.ChunkSize < MinChunkSize || opts.ChunkSize > MaxChunkSize {
		return nil, fmt.Errorf("nextcloud: chunk size %d is outside Nextcloud's 5 MiB to 5 GiB", opts.ChunkSize)
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.AssembleTimeout <= 0 {
		opts.AssembleTimeout = DefaultAssembleTimeout
	}
	if opts.ShareExpireDays < 0 {
		return nil, errors.New("nextcloud: share expiry must not be negative")
	}
	if opts.ShareLimit <= 0 {
		opts.ShareLimit = DefaultShareLimit
	}
	if opts.SharePeriod <= 0 {
		opts.SharePeriod = DefaultSharePeriod
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   30 * time.Second,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
			ForceAttemptHTTP2:     true,
		}}
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return &Client{
		opts:    opts,
		base:    u.String(),
		hc:      hc,
		log:     opts.Logger,
		limiter: newLimiter(opts.ShareLimit, opts.SharePeriod, time.Now),
		now:     time.Now,
	}, nil
}

// remote returns the path below the account's root for rel, a slash-separated
// path below BasePath: "hpc_results/1700000000_42_water/out.log".
func (c *Client) remote(rel string) string {
	return strings.TrimPrefix(path.Join(c.opts.BasePath, path.Clean("/"+rel)), "/")
}

// escapePath escapes every segment of a slash-separated path.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// filesURL is the WebDAV URL of a path below the account's root.
func (c *Client) filesURL(remote string) string {
	return c.base + "/remote.php/dav/files/" + url.PathEscape(c.opts.User) + "/" + escapePath(remote)
}

// uploadsURL is the URL of a chunked-upload folder, or of a name inside it.
func (c *Client) uploadsURL(id string, name ...string) string {
	u := c.base + "/remote.php/dav/uploads/" + url.PathEscape(c.opts.User) + "/" + url.PathEscape(id)
	for _, n := range name {
		u += "/" + url.PathEscape(n)
	}
	return u
}

// request is one HTTP exchange through do.
type request struct {
	method string
	url    string
	header http.Header
	body   io.Reader // nil for none
	size   int64     // Content-Length of body; always sent (docs/FACTS.md#nextcloud-put-without-length)
	// timeout is how long the request may go without progress (default IdleTimeout).
	timeout time.Duration
}

// do sends r with Basic auth under a watchdog that cancels it when it makes no
// progress for r.timeout. The caller closes the response body. Transport failures
// come back as transient *plugins.Error; a response of any status is returned.
func (c *Client) do(ctx context.Context, op string, r request) (*http.Response, error) {
	if r.timeout <= 0 {
		r.timeout = c.opts.IdleTimeout
	}
	wctx, w := watch(ctx, r.timeout)
	var body io.Reader = http.NoBody
	if r.body != nil && r.size > 0 {
		body = w.reader(r.body)
	}
	req, err := http.NewRequestWithContext(wctx, r.method, r.url, body)
	if err != nil {
		w.stop()
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if body != http.NoBody {
		req.ContentLength = r.size
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	req.SetBasicAuth(c.opts.User, c.opts.Password)
	resp, err := c.hc.Do(req)
	if err != nil {
		w.stop()
		return nil, transportError(wctx, op, err)
	}
	resp.Body = &watchedBody{ReadCloser: resp.Body, w: w}
	return resp, nil
}

// statusError builds the classified error of a non-success response and drains it.
func (c *Client) statusError(op, method, remote string, resp *http.Response) error {
	drain(resp)
	return classify(op, &StatusError{
		Method:     method,
		Path:       remote,
		Status:     resp.StatusCode,
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), c.now()),
	})
}

// drain reads a little of the body so the connection can be reused, and closes it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

// dav returns a gowebdav client rooted at the account's files whose requests run
// under ctx. gowebdav takes no context, so each call gets its own light client
// whose transport binds ctx; authentication is preemptive Basic, because
// gowebdav's default (NewAutoAuth) first sends every request without credentials
// and, for a body that cannot seek, keeps a copy of the whole body in memory to
// resend it after the 401.
func (c *Client) dav(ctx context.Context) *gowebdav.Client {
	root := c.base + "/remote.php/dav/files/" + c.opts.User + "/"
	if u, err := url.Parse(c.base); err == nil {
		// gowebdav escapes every segment itself: give it the unescaped form.
		root = u.Scheme + "://" + u.Host + u.Path + "/remote.php/dav/files/" + c.opts.User + "/"
	}
	d := gowebdav.NewAuthClient(root, gowebdav.NewPreemptiveAuth(&basicAuth{user: c.opts.User, password: c.opts.Password}))
	base := c.hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	d.SetTransport(ctxTransport{ctx: ctx, base: base})
	if c.hc.Jar != nil {
		d.SetJar(c.hc.Jar)
	}
	return d
}

// ctxTransport runs every request under ctx (gowebdav builds requests without one).
type ctxTransport struct {
	ctx  context.Context
	base http.RoundTripper
}

func (t ctxTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return t.base.RoundTrip(r.WithContext(t.ctx))
}

// basicAuth is a gowebdav.Authenticator that sends Basic credentials with every
// request and never asks for a second try: a 401 ends the call (brute-force
// protection, docs/FACTS.md#nextcloud-brute-force-protection). It prints
// without its password.
type basicAuth struct{ user, password string }

var _ gowebdav.Authenticator = (*basicAuth)(nil)

func (b *basicAuth) Authorize(_ *http.Client, rq *http.Request, _ string) error {
	rq.SetBasicAuth(b.user, b.password)
	return nil
}

func (b *basicAuth) Verify(*http.Client, *http.Response, string) (bool, error) { return false, nil }
func (b *basicAuth) Clone() gowebdav.Authenticator                             { return b }
func (b *basicAuth) Close() error                                              { return nil }
func (b *basicAuth) String() string                                            { return "basic " + b.user }

// watchdog cancels a request that makes no progress for d: every body read and
// the start of the answer reset it.
type watchdog struct {
	t      *time.Timer
	d      time.Duration
	cancel context.CancelCauseFunc
}

func watch(ctx context.Context, d time.Duration) (context.Context, *watchdog) {
	wctx, cancel := context.WithCancelCause(ctx)
	w := &watchdog{d: d, cancel: cancel}
	w.t = time.AfterFunc(d, func() { cancel(fmt.Errorf("%w for %v", errStalled, d)) })
	return wctx, w
}

func (w *watchdog) kick() { w.t.Reset(w.d) }

func (w *watchdog) stop() {
	w.t.Stop()
	w.cancel(nil)
}

func (w *watchdog) reader(r io.Reader) io.Reader { return &watchedReader{r: r, w: w} }

type watchedReader struct {
	r io.Reader
	w *watchdog
}

func (r *watchedReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.w.kick()
	return n, err
}

type watchedBody struct {
	io.ReadCloser
	w *watchdog
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.w.kick()
	return n, err
}

func (b *watchedBody) Close() error {
	err := b.ReadCloser.Close()
	b.w.stop()
	return err
}
