package nctest

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
)

// do sends one request as the account (or with the given credentials).
func do(t *testing.T, s *Server, method, p string, body []byte, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL+p, r)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(s.User, s.Password)
	for k, v := range hdr {
		if k == "Authorization" {
			req.Header.Del(k)
			if v == "" {
				continue
			}
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestFilesWebDAV(t *testing.T) {
	s := New(t)
	files := "/remote.php/dav/files/" + s.User
	if resp, _ := do(t, s, "MKCOL", files+"/a", nil, nil); resp.StatusCode != 201 {
		t.Fatalf("MKCOL: %d", resp.StatusCode)
	}
	if resp, _ := do(t, s, "MKCOL", files+"/a", nil, nil); resp.StatusCode != 405 {
		t.Errorf("MKCOL of an existing folder: %d, want 405", resp.StatusCode)
	}
	if resp, _ := do(t, s, "MKCOL", files+"/x/y", nil, nil); resp.StatusCode != 409 {
		t.Errorf("MKCOL without parent: %d, want 409", resp.StatusCode)
	}
	resp, _ := do(t, s, "PUT", files+"/a/f.txt", []byte("hello"), map[string]string{"X-OC-Mtime": "1700000000"})
	if resp.StatusCode != 201 || resp.Header.Get("X-OC-MTime") != "accepted" {
		t.Fatalf("PUT: %d %q", resp.StatusCode, resp.Header.Get("X-OC-MTime"))
	}
	if st, err := os.Stat(s.Path("a/f.txt")); err != nil || st.ModTime().Unix() != 1700000000 {
		t.Errorf("mtime: %v %v", st, err)
	}
	if resp, _ := do(t, s, "PUT", files+"/a/f.txt", []byte("hello again"), nil); resp.StatusCode != 204 {
		t.Errorf("PUT over a file: %d, want 204", resp.StatusCode)
	}
	resp, body := do(t, s, "PROPFIND", files+"/a/", nil, map[string]string{"Depth": "1"})
	if resp.StatusCode != 207 || !strings.Contains(body, "f.txt") {
		t.Errorf("PROPFIND: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(t, s, "GET", files+"/a/f.txt", nil, nil); resp.StatusCode != 200 || body != "hello again" {
		t.Errorf("GET: %d %q", resp.StatusCode, body)
	}
	if resp, _ := do(t, s, "PROPFIND", files+"/", nil, map[string]string{"Authorization": ""}); resp.StatusCode != 401 {
		t.Errorf("no credentials: %d", resp.StatusCode)
	}
	if s.AuthFailures() != 1 {
		t.Errorf("auth failures %d", s.AuthFailures())
	}
}

func TestPutNeedsContentLength(t *testing.T) {
	s := New(t)
	req, _ := http.NewRequest("PUT", s.URL+"/remote.php/dav/files/"+s.User+"/f", io.NopCloser(strings.NewReader("streamed")))
	req.SetBasicAuth(s.User, s.Password)
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusLengthRequired {
		t.Errorf("PUT with chunked transfer encoding: %d, want 411", resp.StatusCode)
	}
}

func TestChunkedUploadRules(t *testing.T) {
	s := New(t)
	s.SetMinChunkSize(4)
	up := "/remote.php/dav/uploads/" + s.User + "/u1"
	dest := map[string]string{"Destination": s.URL + "/remote.php/dav/files/" + s.User + "/big.bin"}
	if resp, _ := do(t, s, "MKCOL", up, nil, nil); resp.StatusCode != 400 {
		t.Errorf("MKCOL without Destination: %d, want 400", resp.StatusCode)
	}
	if resp, _ := do(t, s, "PUT", up+"/00001", []byte("aaaa"), dest); resp.StatusCode != 404 {
		t.Errorf("PUT before MKCOL: %d, want 404", resp.StatusCode)
	}
	if resp, _ := do(t, s, "MKCOL", up, nil, dest); resp.StatusCode != 201 {
		t.Fatalf("MKCOL: %d", resp.StatusCode)
	}
	if resp, _ := do(t, s, "PUT", up+"/10001", []byte("x"), dest); resp.StatusCode != 400 {
		t.Errorf("chunk 10001: %d, want 400", resp.StatusCode)
	}
	for name, body := range map[string]string{"00002": "bb", "00001": "aaa"} {
		if resp, _ := do(t, s, "PUT", up+"/"+name, []byte(body), dest); resp.StatusCode != 201 {
			t.Fatalf("PUT %s: %d", name, resp.StatusCode)
		}
	}
	if resp, _ := do(t, s, "GET", up+"/00001", nil, nil); resp.StatusCode != 403 {
		t.Errorf("chunk download: %d, want 403", resp.StatusCode)
	}
	// Chunk 1 holds 3 bytes, less than the minimum of 4: refused.
	if resp, body := do(t, s, "MOVE", up+"/.file", nil, dest); resp.StatusCode != 400 || !strings.Contains(body, "minimum") {
		t.Errorf("MOVE with a small chunk: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, s, "PUT", up+"/00001", []byte("aaaa"), dest); resp.StatusCode != 201 {
		t.Fatal(resp.StatusCode)
	}
	resp, body := do(t, s, "PROPFIND", up, nil, map[string]string{"Depth": "1"})
	if resp.StatusCode != 207 || !strings.Contains(body, "00001") || !strings.Contains(body, "00002") {
		t.Errorf("PROPFIND: %d %s", resp.StatusCode, body)
	}
	wrong := map[string]string{"Destination": dest["Destination"], "OC-Total-Length": "7"}
	if resp, _ := do(t, s, "MOVE", up+"/.file", nil, wrong); resp.StatusCode != 400 {
		t.Errorf("MOVE with a wrong total: %d, want 400", resp.StatusCode)
	}
	ok := map[string]string{"Destination": dest["Destination"], "OC-Total-Length": "6", "X-OC-Mtime": "1700000000"}
	if resp, _ := do(t, s, "MOVE", up+"/.file", nil, ok); resp.StatusCode != 201 {
		t.Fatalf("MOVE: %d", resp.StatusCode)
	}
	if b, _ := s.ReadFile("big.bin"); string(b) != "aaaabb" {
		t.Errorf("assembled %q", b)
	}
	if len(s.UploadFolders()) != 0 {
		t.Errorf("upload folder left: %v", s.UploadFolders())
	}
}

func TestQuota(t *testing.T) {
	s := New(t)
	s.SetQuota(10)
	resp, body := do(t, s, "PUT", "/remote.php/dav/files/"+s.User+"/f", []byte("more than ten bytes"), nil)
	if resp.StatusCode != 507 || !strings.Contains(body, "InsufficientStorage") {
		t.Errorf("over quota: %d %s", resp.StatusCode, body)
	}
}

func TestOCSFormatsAndVersions(t *testing.T) {
	s := New(t)
	if err := os.MkdirAll(s.Path("r/calc"), 0o755); err != nil {
		t.Fatal(err)
	}
	form := url.Values{"path": {"/r/calc"}, "shareType": {"3"}, "permissions": {"1"}}.Encode()
	ct := map[string]string{"OCS-APIRequest": "true", "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}

	if resp, _ := do(t, s, "POST", "/ocs/v2.php/apps/files_sharing/api/v1/shares", []byte(form),
		map[string]string{"Content-Type": ct["Content-Type"]}); resp.StatusCode != 412 {
		t.Errorf("without OCS-APIRequest: %d, want 412", resp.StatusCode)
	}
	resp, body := do(t, s, "POST", "/ocs/v2.php/apps/files_sharing/api/v1/shares", []byte(form), ct)
	var v2 struct {
		OCS struct {
			Meta struct{ StatusCode int }
			Data struct{ ID, Token, URL string }
		}
	}
	if err := json.Unmarshal([]byte(body), &v2); err != nil || resp.StatusCode != 200 || v2.OCS.Meta.StatusCode != 200 {
		t.Fatalf("v2 JSON create: %d %s %v", resp.StatusCode, body, err)
	}
	if v2.OCS.Data.URL != s.URL+"/s/"+v2.OCS.Data.Token || len(v2.OCS.Data.Token) != 15 {
		t.Errorf("share url %q token %q", v2.OCS.Data.URL, v2.OCS.Data.Token)
	}

	// v1, XML (no Accept): statuscode 100, a list in <element>s.
	resp, body = do(t, s, "GET", "/ocs/v1.php/apps/files_sharing/api/v1/shares?path=%2Fr%2Fcalc", nil, map[string]string{"OCS-APIRequest": "true"})
	var v1 struct {
		Meta struct {
			StatusCode int `xml:"statuscode"`
		} `xml:"meta"`
		Data struct {
			Elements []struct {
				ID  string `xml:"id"`
				URL string `xml:"url"`
			} `xml:"element"`
		} `xml:"data"`
	}
	if err := xml.Unmarshal([]byte(body), &v1); err != nil || resp.StatusCode != 200 || v1.Meta.StatusCode != 100 {
		t.Fatalf("v1 XML list: %d %s %v", resp.StatusCode, body, err)
	}
	if len(v1.Data.Elements) != 1 || v1.Data.Elements[0].ID != v2.OCS.Data.ID || v1.Data.Elements[0].URL != v2.OCS.Data.URL {
		t.Errorf("v1 list %+v", v1.Data.Elements)
	}

	// Failures: v2 mirrors them in HTTP, v1 keeps 200.
	missing := url.Values{"path": {"/nope"}, "shareType": {"3"}}.Encode()
	if resp, _ := do(t, s, "POST", "/ocs/v2.php/apps/files_sharing/api/v1/shares", []byte(missing), ct); resp.StatusCode != 404 {
		t.Errorf("v2 missing path: %d", resp.StatusCode)
	}
	resp, body = do(t, s, "POST", "/ocs/v1.php/apps/files_sharing/api/v1/shares?format=json", []byte(missing),
		map[string]string{"OCS-APIRequest": "true", "Content-Type": ct["Content-Type"]})
	if resp.StatusCode != 200 || !strings.Contains(body, `"statuscode":404`) {
		t.Errorf("v1 missing path: %d %s", resp.StatusCode, body)
	}
	resp, _ = do(t, s, "GET", "/ocs/v1.php/apps/files_sharing/api/v1/shares", nil, map[string]string{"OCS-APIRequest": "true", "Authorization": ""})
	if resp.StatusCode != 401 {
		t.Errorf("v1 without credentials: %d, want 401", resp.StatusCode)
	}
}

func TestShareRateLimit(t *testing.T) {
	s := New(t)
	s.SetShareLimit(2, 600e9)
	if err := os.MkdirAll(s.Path("r"), 0o755); err != nil {
		t.Fatal(err)
	}
	form := []byte(url.Values{"path": {"/r"}, "shareType": {"3"}}.Encode())
	hdr := map[string]string{"OCS-APIRequest": "true", "Content-Type": "application/x-www-form-urlencoded"}
	for i, want := range []int{200, 200, 429, 429} {
		if resp, _ := do(t, s, "POST", "/ocs/v2.php/apps/files_sharing/api/v1/shares", form, hdr); resp.StatusCode != want {
			t.Errorf("creation %d: %d, want %d", i+1, resp.StatusCode, want)
		}
	}
	if n := len(s.Shares()); n != 2 {
		t.Errorf("%d shares", n)
	}
}

func TestFaults(t *testing.T) {
	s := New(t)
	s.Inject(Fault{Method: "PROPFIND", Skip: 1, Times: 2, Status: 503, RetryAfter: "7"})
	files := "/remote.php/dav/files/" + s.User + "/"
	var got []int
	for range 4 {
		resp, _ := do(t, s, "PROPFIND", files, nil, map[string]string{"Depth": "0"})
		got = append(got, resp.StatusCode)
		if resp.StatusCode == 503 && resp.Header.Get("Retry-After") != "7" {
			t.Error("no Retry-After")
		}
	}
	if want := []int{207, 503, 503, 207}; !slices.Equal(got, want) {
		t.Errorf("statuses %v, want %v", got, want)
	}
	if n := s.Count("PROPFIND", files); n != 4 {
		t.Errorf("count %d", n)
	}

	s.HangNext(1)
	done := make(chan int)
	go func() {
		req, _ := http.NewRequest("PUT", s.URL+files+"f", strings.NewReader("12345"))
		req.SetBasicAuth(s.User, s.Password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	if h := <-s.Hung(); h != "PUT "+files+"f" {
		t.Errorf("hung %q", h)
	}
	s.ReleaseAll()
	if code := <-done; code != 201 {
		t.Errorf("released PUT: %d", code)
	}
	if s.MaxBody() != 5 {
		t.Errorf("max body %d", s.MaxBody())
	}
}
