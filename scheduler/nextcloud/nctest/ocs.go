package nctest

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/webdav"
)

// share is one public link share.
type share struct {
	ID          int
	Path        string // "/hpc_results/x", relative to the account's root
	Token       string
	Permissions int
	Expiration  string // "YYYY-MM-DD" or ""
	Password    string
	Folder      bool
	STime       int64
}

// Shares returns the paths of the public link shares that exist, in creation order.
func (s *Server) Shares() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, sh := range s.shares {
		out = append(out, sh.Path)
	}
	return out
}

// serveOCS is the OCS share API (docs/FACTS.md#nextcloud-share-api) for public
// links: GET /shares (with path, reshares, subfiles), POST /shares, GET and
// DELETE /shares/<id>. Requests need OCS-APIRequest: true and Basic auth. The
// answer is JSON when Accept asks for application/json or format=json, XML
// otherwise; OCS v1 answers statuscode 100 and HTTP 200 (401 for a refused login),
// v2 statuscode 200 and the HTTP status mirrors failures.
// Share creation is rate limited to 20 per 10 minutes per user and answers 429
// beyond (#[UserRateLimit(limit: 20, period: 600)], nextcloud/server PR 50905),
// with no Retry-After unless SetRetryAfter says otherwise.
func (s *Server) serveOCS(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("OCS-APIRequest") != "true" {
		// Without the header the CSRF check fails for every non-browser client.
		s.writeOCS(w, r, http.StatusPreconditionFailed, 412, "CSRF check failed", nil)
		return
	}
	if !s.auth(w, r, true) {
		return
	}
	rest := strings.Trim(r.URL.Path[strings.Index(r.URL.Path, "/shares")+len("/shares"):], "/")
	switch {
	case rest == "" && r.Method == http.MethodGet:
		s.listShares(w, r)
	case rest == "" && r.Method == http.MethodPost:
		s.createShare(w, r)
	case rest != "" && (r.Method == http.MethodGet || r.Method == http.MethodDelete):
		s.oneShare(w, r, rest)
	default:
		s.writeOCS(w, r, http.StatusMethodNotAllowed, 405, "method not allowed", nil)
	}
}

func (s *Server) listShares(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := q.Get("path")
	subfiles := q.Get("subfiles") == "true"
	if p != "" {
		p = path.Clean("/" + p)
		st, err := os.Stat(s.Path(p))
		if err != nil {
			s.writeOCS(w, r, http.StatusNotFound, 404, "Wrong path, file/folder does not exist", nil)
			return
		}
		if subfiles && !st.IsDir() {
			s.writeOCS(w, r, http.StatusBadRequest, 400, "Not a directory", nil)
			return
		}
	}
	s.mu.Lock()
	var list []map[string]any
	for _, sh := range s.shares {
		switch {
		case p == "":
		case subfiles && path.Dir(sh.Path) == p:
		case !subfiles && sh.Path == p:
		default:
			continue
		}
		list = append(list, s.shareData(sh))
	}
	s.mu.Unlock()
	if list == nil {
		list = []map[string]any{}
	}
	s.writeOCS(w, r, http.StatusOK, 100, "OK", list)
}

var dateOnly = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

func (s *Server) createShare(w http.ResponseWriter, r *http.Request) {
	// The rate limit middleware runs before the controller: every attempt counts.
	s.mu.Lock()
	now := time.Now()
	kept := s.shareTimes[:0]
	for _, t := range s.shareTimes {
		if now.Sub(t) < s.sharePeriod {
			kept = append(kept, t)
		}
	}
	s.shareTimes = kept
	limited := len(s.shareTimes) >= s.shareLimit
	if !limited {
		s.shareTimes = append(s.shareTimes, now)
	}
	retryAfter := s.retryAfter
	s.mu.Unlock()
	if limited {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		s.writeOCS(w, r, http.StatusTooManyRequests, 429, "", []any{})
		return
	}
	if err := r.ParseForm(); err != nil {
		s.writeOCS(w, r, http.StatusBadRequest, 400, "bad form", nil)
		return
	}
	p := r.PostForm.Get("path")
	if p == "" {
		s.writeOCS(w, r, http.StatusNotFound, 404, "Please specify a file or folder path", nil)
		return
	}
	p = path.Clean("/" + p)
	st, err := os.Stat(s.Path(p))
	if err != nil {
		s.writeOCS(w, r, http.StatusNotFound, 404, "Wrong path, file/folder does not exist", nil)
		return
	}
	if t := r.PostForm.Get("shareType"); t != "3" {
		s.writeOCS(w, r, http.StatusBadRequest, 400, "hpcbot fake: only public links (shareType 3) are implemented, not "+strconv.Quote(t), nil)
		return
	}
	perms := 1
	if v := r.PostForm.Get("permissions"); v != "" {
		perms, err = strconv.Atoi(v)
		if err != nil || perms < 0 || perms > 31 {
			s.writeOCS(w, r, http.StatusNotFound, 404, "invalid permissions", nil)
			return
		}
	}
	perms |= 1 // shares always have read permission
	exp := r.PostForm.Get("expireDate")
	if exp != "" {
		if _, err := time.Parse(time.DateOnly, exp); err != nil || !dateOnly.MatchString(exp) {
			s.writeOCS(w, r, http.StatusNotFound, 404, "Invalid date, date format must be YYYY-MM-DD", nil)
			return
		}
		if exp <= time.Now().UTC().Format(time.DateOnly) {
			s.writeOCS(w, r, http.StatusNotFound, 404, "Expiration date is in the past", nil)
			return
		}
	}
	s.mu.Lock()
	sh := &share{
		ID:          s.nextShareID,
		Path:        p,
		Token:       token(),
		Permissions: perms,
		Expiration:  exp,
		Password:    r.PostForm.Get("password"),
		Folder:      st.IsDir(),
		STime:       now.Unix(),
	}
	s.nextShareID++
	s.shares = append(s.shares, sh)
	data := s.shareData(sh)
	s.mu.Unlock()
	s.writeOCS(w, r, http.StatusOK, 100, "OK", data)
}

func (s *Server) oneShare(w http.ResponseWriter, r *http.Request, idText string) {
	id, _ := strconv.Atoi(idText)
	s.mu.Lock()
	for i, sh := range s.shares {
		if sh.ID != id {
			continue
		}
		if r.Method == http.MethodDelete {
			s.shares = append(s.shares[:i], s.shares[i+1:]...)
			s.mu.Unlock()
			s.writeOCS(w, r, http.StatusOK, 100, "OK", []any{})
			return
		}
		data := []map[string]any{s.shareData(sh)}
		s.mu.Unlock()
		s.writeOCS(w, r, http.StatusOK, 100, "OK", data)
		return
	}
	s.mu.Unlock()
	s.writeOCS(w, r, http.StatusNotFound, 404, "Wrong share ID, share does not exist", nil)
}

// shareData formats a share as ShareAPIController::formatShare does; the caller holds mu.
func (s *Server) shareData(sh *share) map[string]any {
	var exp any
	if sh.Expiration != "" {
		exp = sh.Expiration + " 00:00:00"
	}
	itemType, mime := "file", "application/octet-stream"
	if sh.Folder {
		itemType, mime = "folder", "httpd/unix-directory"
	}
	var shareWith any
	if sh.Password != "" {
		shareWith = "***redacted***" // Nextcloud returns the password hash here
	}
	return map[string]any{
		"id":                     strconv.Itoa(sh.ID),
		"share_type":             3,
		"uid_owner":              s.User,
		"displayname_owner":      s.User,
		"permissions":            sh.Permissions,
		"stime":                  sh.STime,
		"parent":                 nil,
		"expiration":             exp,
		"token":                  sh.Token,
		"uid_file_owner":         s.User,
		"displayname_file_owner": s.User,
		"path":                   sh.Path,
		"item_type":              itemType,
		"mimetype":               mime,
		"file_target":            "/" + path.Base(sh.Path),
		"share_with":             shareWith,
		"share_with_displayname": shareWith,
		"url":                    s.URL + "/s/" + sh.Token,
		"mail_send":              0,
	}
}

// token makes a share token like Nextcloud's: 15 characters without look-alikes.
func token() string {
	const alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 15)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// writeOCS writes an OCS envelope in the format and version the request asked for.
func (s *Server) writeOCS(w http.ResponseWriter, r *http.Request, httpStatus, code int, msg string, data any) {
	v1 := strings.HasPrefix(r.URL.Path, "/ocs/v1.php/")
	status := "ok"
	if code != 100 {
		status = "failure"
	}
	switch {
	case v1 && code == 100:
	case v1 && code == 997:
		httpStatus = http.StatusUnauthorized
	case v1:
		httpStatus = http.StatusOK // v1 reports failures in meta only
	case code == 100:
		code = 200
	}
	if data == nil {
		data = []any{}
	}
	if r.URL.Query().Get("format") == "json" || strings.Contains(r.Header.Get("Accept"), "application/json") {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(httpStatus)
		_ = json.NewEncoder(w).Encode(map[string]any{"ocs": map[string]any{
			"meta": map[string]any{"status": status, "statuscode": code, "message": msg, "totalitems": "", "itemsperpage": ""},
			"data": data,
		}})
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=UTF-8")
	w.WriteHeader(httpStatus)
	var b strings.Builder
	b.WriteString("<?xml version=\"1.0\"?>\n<ocs>\n <meta>\n")
	fmt.Fprintf(&b, "  <status>%s</status>\n  <statuscode>%d</statuscode>\n  <message>%s</message>\n  <totalitems></totalitems>\n  <itemsperpage></itemsperpage>\n", status, code, xmlEscape(msg))
	b.WriteString(" </meta>\n <data>")
	writeXMLValue(&b, data)
	b.WriteString("</data>\n</ocs>\n")
	_, _ = w.Write([]byte(b.String()))
}

// writeXMLValue renders data as Nextcloud's OCS XML does: maps as elements named
// by their keys, lists as <element> children, null as an empty element.
func writeXMLValue(b *strings.Builder, v any) {
	switch x := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(x) {
			fmt.Fprintf(b, "<%s>", k)
			writeXMLValue(b, x[k])
			fmt.Fprintf(b, "</%s>", k)
		}
	case []map[string]any:
		for _, e := range x {
			b.WriteString("<element>")
			writeXMLValue(b, e)
			b.WriteString("</element>")
		}
	case []any:
		for _, e := range x {
			b.WriteString("<element>")
			writeXMLValue(b, e)
			b.WriteString("</element>")
		}
	case nil:
	default:
		b.WriteString(xmlEscape(fmt.Sprint(x)))
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func xmlEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '"':
			b.WriteString("&quot;")
		case '\'':
			b.WriteString("&apos;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// shareByToken finds a share; it returns a copy.
func (s *Server) shareByToken(tok string) (share, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sh := range s.shares {
		if sh.Token == tok {
			return *sh, true
		}
	}
	return share{}, false
}

// serveSharePage is the public share page /s/<token>. For a folder share it lists
// the folder, or the sub folder named by ?path= (how Nextcloud's page opens a sub
// folder), one name a line; a missing path is 404. A password-protected share
// answers 401 here (Nextcloud shows its password form).
func (s *Server) serveSharePage(w http.ResponseWriter, r *http.Request) {
	tok := strings.Trim(strings.TrimPrefix(r.URL.Path, "/s/"), "/")
	sh, ok := s.shareByToken(tok)
	if !ok || (sh.Expiration != "" && sh.Expiration < time.Now().UTC().Format(time.DateOnly)) {
		http.Error(w, "Share not found", http.StatusNotFound)
		return
	}
	if sh.Password != "" {
		http.Error(w, "This share is password-protected", http.StatusUnauthorized)
		return
	}
	target := s.Path(sh.Path)
	if sh.Folder {
		target = s.Path(path.Join(sh.Path, path.Clean("/"+r.URL.Query().Get("path"))))
	}
	st, err := os.Stat(target)
	if err != nil {
		http.Error(w, "Not found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !st.IsDir() {
		fmt.Fprintln(w, st.Name())
		return
	}
	entries, _ := os.ReadDir(target)
	for _, e := range entries {
		fmt.Fprintln(w, e.Name())
	}
}

// servePublicDAV is read-only WebDAV on a share, /public.php/dav/files/<token>/
// (Nextcloud 29 and later); a password-protected share wants the user
// "anonymous" with the share password (docs/FACTS.md#nextcloud-webdav-paths).
func (s *Server) servePublicDAV(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/public.php/dav/files/")
	tok, _, _ := strings.Cut(rest, "/")
	sh, ok := s.shareByToken(tok)
	if !ok {
		sabreError(w, http.StatusNotFound, "Sabre\\DAV\\Exception\\NotFound", "share not found")
		return
	}
	if sh.Password != "" {
		u, p, ok := r.BasicAuth()
		if !ok || u != "anonymous" || p != sh.Password {
			w.Header().Set("WWW-Authenticate", `Basic realm="Nextcloud", charset="UTF-8"`)
			sabreError(w, http.StatusUnauthorized, "Sabre\\DAV\\Exception\\NotAuthenticated", "share password required")
			return
		}
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, "PROPFIND", http.MethodOptions:
	default:
		sabreError(w, http.StatusForbidden, "Sabre\\DAV\\Exception\\Forbidden", "read-only share")
		return
	}
	if !sh.Folder { // the token is the file itself
		if strings.Trim(strings.TrimPrefix(rest, tok), "/") != "" {
			sabreError(w, http.StatusNotFound, "Sabre\\DAV\\Exception\\NotFound", "not in this share")
			return
		}
		f, err := os.Open(s.Path(sh.Path))
		if err != nil {
			sabreError(w, http.StatusNotFound, "Sabre\\DAV\\Exception\\NotFound", "file is gone")
			return
		}
		defer f.Close()
		st, _ := f.Stat()
		http.ServeContent(w, r, path.Base(sh.Path), st.ModTime(), f)
		return
	}
	root := s.Path(sh.Path)
	h := &webdav.Handler{Prefix: "/public.php/dav/files/" + tok, FileSystem: webdav.Dir(root), LockSystem: webdav.NewMemLS()}
	h.ServeHTTP(w, r)
}
