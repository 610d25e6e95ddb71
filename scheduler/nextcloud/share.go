package nextcloud

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"hpcbot/plugins"
)

const opShare = "share on cloud failed"

// Share types and permissions of the OCS share API (docs/FACTS.md#nextcloud-share-api).
const (
	shareTypeLink  = 3
	permRead       = 1
	permWriteMask  = 2 | 4 | 8 // update, create, delete
	sharesEndpoint = "/ocs/v2.php/apps/files_sharing/api/v1/shares"
)

// Share returns a public read-only link to BasePath/remotePath (a folder or a file).
//
// It first looks for a public link of that path created by this account that
// allows no writes and expires no sooner than a new one would (ShareExpireDays,
// less a day), and returns it: calling Share again
// (after a crash between creating the share and recording it) creates no second
// share. Otherwise it creates one (shareType 3, permissions 1, with the configured
// expiry and password). Creations go through the Client's limiter (Nextcloud allows
// 20 per 10 minutes per account and answers 429 beyond): a creation that would have
// to wait past ctx's deadline fails at once with a transient error, and
// RetryAfter(err) says when to come back. A 429 pauses the limiter and is
// transient too. Lookups are not rate limited by Nextcloud and do not queue.
func (c *Client) Share(ctx context.Context, remotePath string) (string, error) {
	p := "/" + c.remote(remotePath)
	if link, ok, err := c.findShare(ctx, p); err != nil {
		return "", err
	} else if ok {
		c.log.Debug("reusing public link", "path", p)
		return link, nil
	}
	if err := c.limiter.wait(ctx); err != nil {
		return "", &plugins.Error{Kind: plugins.KindTransient, Msg: opShare, Err: err}
	}
	form := url.Values{
		"path":        {p},
		"shareType":   {strconv.Itoa(shareTypeLink)},
		"permissions": {strconv.Itoa(permRead)},
	}
	if d := c.opts.ShareExpireDays; d > 0 {
		form.Set("expireDate", c.now().UTC().AddDate(0, 0, d).Format(time.DateOnly))
	}
	if c.opts.SharePassword != "" {
		form.Set("password", c.opts.SharePassword)
	}
	body := form.Encode()
	shares, err := c.ocs(ctx, request{
		method: http.MethodPost,
		url:    c.base + sharesEndpoint,
		header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
		body:   strings.NewReader(body),
		size:   int64(len(body)),
	}, p)
	if err != nil {
		return "", err
	}
	if len(shares) != 1 {
		//lint:ignore ST1005 the message starts with the product's name, which is capitalized
		return "", &plugins.Error{Kind: plugins.KindPermanent, Msg: opShare, Err: fmt.Errorf("Nextcloud answered %d shares to one creation", len(shares))}
	}
	link := shares[0].link(c.base)
	if link == "" {
		//lint:ignore ST1005 the message starts with the product's name, which is capitalized
		return "", &plugins.Error{Kind: plugins.KindPermanent, Msg: opShare, Err: errors.New("Nextcloud's answer has no share url or token")}
	}
	c.log.Info("created public link", "path", p, "share", shares[0].ID)
	return link, nil
}

// findShare looks for a reusable public link of p.
func (c *Client) findShare(ctx context.Context, p string) (string, bool, error) {
	q := url.Values{"path": {p}, "reshares": {"false"}, "subfiles": {"false"}}
	shares, err := c.ocs(ctx, request{method: http.MethodGet, url: c.base + sharesEndpoint + "?" + q.Encode()}, p)
	if err != nil {
		return "", false, err
	}
	// A link must live at least as long as a new one would (less the day that
	// may have passed since it was made): a per-user folder link made days ago
	// that expires tomorrow is not handed out again.
	minExpiry := c.now().UTC()
	if d := c.opts.ShareExpireDays; d > 1 {
		minExpiry = minExpiry.AddDate(0, 0, d-1)
	}
	oldest := minExpiry.Format(time.DateOnly)
	for _, s := range shares {
		if s.ShareType != shareTypeLink || s.Permissions&permRead == 0 || s.Permissions&permWriteMask != 0 {
			continue
		}
		if s.Owner != "" && s.Owner != c.opts.User {
			continue
		}
		if s.Path != "" && strings.TrimSuffix(s.Path, "/") != p {
			continue
		}
		// "expiration": "2026-12-01 00:00:00"; the link works through that day.
		if len(s.Expiration) >= 10 && s.Expiration[:10] < oldest {
			continue
		}
		if link := s.link(c.base); link != "" {
			return link, true, nil
		}
	}
	return "", false, nil
}

// ShareFolderLink returns a link into subpath of the folder shared as baseLink
// (share = "per_user": one public link per user's folder, and per-calculation
// links into it). Nextcloud's public share page opens the sub folder named by its
// path query parameter (/s/<token>?path=%2Fsub); the whole share stays visible
// from there. Behind a share password, some versions drop the parameter on the
// way through the password page, so the user lands in the share's root and opens
// the folder by name.
func ShareFolderLink(baseLink, subpath string) (string, error) {
	u, err := url.Parse(baseLink)
	if err != nil {
		return "", fmt.Errorf("share link: %w", err)
	}
	q := u.Query()
	q.Set("path", path.Clean("/"+subpath))
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// share is the part of an OCS share we use.
type share struct {
	ID          string
	ShareType   int
	Permissions int
	Owner       string
	Path        string
	Token       string
	URL         string
	Expiration  string
}

func (s share) link(base string) string {
	if s.URL != "" {
		return s.URL
	}
	if s.Token != "" {
		return base + "/s/" + url.PathEscape(s.Token)
	}
	return ""
}

// ocs sends an OCS request (OCS-APIRequest: true, JSON asked for) and returns the
// shares in its data. It accepts both envelopes, JSON and XML (a server or proxy
// may ignore Accept), and both status conventions: OCS v1 answers statuscode 100
// on success and HTTP 200 even for most failures, v2 answers 200 and mirrors
// failures in the HTTP status (docs/FACTS.md#nextcloud-share-api).
func (c *Client) ocs(ctx context.Context, r request, p string) ([]share, error) {
	if r.header == nil {
		r.header = http.Header{}
	}
	r.header.Set("OCS-APIRequest", "true")
	r.header.Set("Accept", "application/json")
	op := opShare
	resp, err := c.do(ctx, op, r)
	if err != nil {
		return nil, err
	}
	defer drain(resp)
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, transportError(ctx, op, err)
	}
	se := &StatusError{Method: r.method, Path: p, Status: resp.StatusCode,
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), c.now())}
	env, perr := parseOCS(body)
	if perr == nil && env.Message != "" {
		se.OCSMessage = env.Message
	}
	if resp.StatusCode == http.StatusTooManyRequests || (perr == nil && env.StatusCode == http.StatusTooManyRequests) {
		se.Status = http.StatusTooManyRequests
		c.limiter.pause(rateLimitPause(se.RetryAfter, c.opts))
		return nil, classify(op, se)
	}
	if resp.StatusCode/100 != 2 {
		return nil, classify(op, se)
	}
	if perr != nil {
		return nil, &plugins.Error{Kind: plugins.KindPermanent, Msg: op,
			//lint:ignore ST1005 the message starts with the product's name, which is capitalized
			Err: fmt.Errorf("Nextcloud's answer to %s is not an OCS reply (HTTP %d, %s): %w", r.method, resp.StatusCode, resp.Header.Get("Content-Type"), perr)}
	}
	switch env.StatusCode {
	case 100, 200:
		return env.Shares, nil
	case 997: // OCS "unauthorised"
		se.Status = http.StatusUnauthorized
	case 996: // OCS "server error"
		se.Status = http.StatusInternalServerError
	case 998: // OCS "not found"
		se.Status = http.StatusNotFound
	default:
		se.Status = env.StatusCode
	}
	return nil, classify(op, se)
}

// rateLimitPause is how long the limiter rests after a 429: what the server asked
// for, else two of the limiter's intervals (Nextcloud sends no Retry-After; its
// window slides, so a slot frees up when the oldest creation leaves it).
func rateLimitPause(retryAfter time.Duration, o Options) time.Duration {
	if retryAfter > 0 {
		return retryAfter
	}
	return 2 * o.SharePeriod / time.Duration(o.ShareLimit)
}

// envelope is an OCS reply, whichever format it came in.
type envelope struct {
	Status     string
	StatusCode int
	Message    string
	Shares     []share
}

// parseOCS reads an OCS reply in JSON or XML. data may be one share, a list, or empty.
func parseOCS(body []byte) (envelope, error) {
	b := bytes.TrimSpace(body)
	if len(b) == 0 {
		return envelope{}, errors.New("empty body")
	}
	if b[0] == '<' {
		return parseOCSXML(b)
	}
	return parseOCSJSON(b)
}

// flex accepts a JSON string, number, bool or null as text (Nextcloud versions
// differ: "id": "42" or 42; "expiration": null).
type flex string

func (f *flex) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*f = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flex(s)
	case len(b) > 0 && (b[0] == '{' || b[0] == '['):
		return fmt.Errorf("unexpected JSON %.20s where a value belongs", b)
	default:
		*f = flex(b)
	}
	return nil
}

func (f flex) int() int {
	n, _ := strconv.Atoi(strings.TrimSpace(string(f)))
	return n
}

type jsonShare struct {
	ID          flex `json:"id"`
	ShareType   flex `json:"share_type"`
	Permissions flex `json:"permissions"`
	Owner       flex `json:"uid_owner"`
	Path        flex `json:"path"`
	Token       flex `json:"token"`
	URL         flex `json:"url"`
	Expiration  flex `json:"expiration"`
}

func (j jsonShare) share() share {
	return share{ID: string(j.ID), ShareType: j.ShareType.int(), Permissions: j.Permissions.int(),
		Owner: string(j.Owner), Path: string(j.Path), Token: string(j.Token), URL: string(j.URL), Expiration: string(j.Expiration)}
}

func parseOCSJSON(b []byte) (envelope, error) {
	var v struct {
		OCS *struct {
			Meta struct {
				Status     flex `json:"status"`
				StatusCode flex `json:"statuscode"`
				Message    flex `json:"message"`
			} `json:"meta"`
			Data json.RawMessage `json:"data"`
		} `json:"ocs"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return envelope{}, fmt.Errorf("bad OCS JSON: %w", err)
	}
	if v.OCS == nil {
		return envelope{}, errors.New("bad OCS JSON: no ocs object")
	}
	env := envelope{Status: string(v.OCS.Meta.Status), StatusCode: v.OCS.Meta.StatusCode.int(), Message: string(v.OCS.Meta.Message)}
	if env.StatusCode == 0 {
		return envelope{}, errors.New("bad OCS JSON: no meta.statuscode")
	}
	data := bytes.TrimSpace(v.OCS.Data)
	switch {
	case len(data) == 0 || bytes.Equal(data, []byte("null")):
	case data[0] == '[':
		var list []jsonShare
		if err := json.Unmarshal(data, &list); err != nil {
			if env.StatusCode == 100 || env.StatusCode == 200 {
				return envelope{}, fmt.Errorf("bad OCS JSON data: %w", err)
			}
			break // failures may carry any data
		}
		for _, j := range list {
			env.Shares = append(env.Shares, j.share())
		}
	case data[0] == '{':
		var j jsonShare
		if err := json.Unmarshal(data, &j); err != nil {
			if env.StatusCode == 100 || env.StatusCode == 200 {
				return envelope{}, fmt.Errorf("bad OCS JSON data: %w", err)
			}
			break
		}
		if j.ID != "" || j.Token != "" || j.URL != "" {
			env.Shares = append(env.Shares, j.share())
		}
	}
	return env, nil
}

type xmlShare struct {
	ID          string `xml:"id"`
	ShareType   string `xml:"share_type"`
	Permissions string `xml:"permissions"`
	Owner       string `xml:"uid_owner"`
	Path        string `xml:"path"`
	Token       string `xml:"token"`
	URL         string `xml:"url"`
	Expiration  string `xml:"expiration"`
}

func (x xmlShare) share() share {
	return share{ID: strings.TrimSpace(x.ID), ShareType: flex(x.ShareType).int(), Permissions: flex(x.Permissions).int(),
		Owner: strings.TrimSpace(x.Owner), Path: strings.TrimSpace(x.Path), Token: strings.TrimSpace(x.Token),
		URL: strings.TrimSpace(x.URL), Expiration: strings.TrimSpace(x.Expiration)}
}

func parseOCSXML(b []byte) (envelope, error) {
	var v struct {
		XMLName xml.Name `xml:"ocs"`
		Meta    struct {
			Status     string `xml:"status"`
			StatusCode string `xml:"statuscode"`
			Message    string `xml:"message"`
		} `xml:"meta"`
		Data struct {
			xmlShare
			Elements []xmlShare `xml:"element"`
		} `xml:"data"`
	}
	if err := xml.Unmarshal(b, &v); err != nil {
		return envelope{}, fmt.Errorf("bad OCS XML: %w", err)
	}
	env := envelope{Status: strings.TrimSpace(v.Meta.Status), StatusCode: flex(v.Meta.StatusCode).int(), Message: strings.TrimSpace(v.Meta.Message)}
	if env.StatusCode == 0 {
		return envelope{}, errors.New("bad OCS XML: no meta/statuscode")
	}
	for _, e := range v.Data.Elements {
		env.Shares = append(env.Shares, e.share())
	}
	if s := v.Data.xmlShare.share(); s.ID != "" || s.Token != "" || s.URL != "" {
		env.Shares = append(env.Shares, s)
	}
	return env, nil
}
