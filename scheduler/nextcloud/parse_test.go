package nextcloud

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestParseOCS(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		code   int
		shares []share
	}{
		{name: "v2 json one share", code: 200,
			body:   `{"ocs":{"meta":{"status":"ok","statuscode":200,"message":"OK"},"data":{"id":"36","share_type":3,"uid_owner":"bot","permissions":1,"expiration":null,"token":"Abc","url":"https://c/s/Abc","path":"/r/x"}}}`,
			shares: []share{{ID: "36", ShareType: 3, Owner: "bot", Permissions: 1, Token: "Abc", URL: "https://c/s/Abc", Path: "/r/x"}}},
		{name: "v1 json list, numeric id, string numbers", code: 100,
			body:   `{"ocs":{"meta":{"status":"ok","statuscode":100,"message":"OK"},"data":[{"id":7,"share_type":"3","permissions":"17","token":"T","expiration":"2026-12-01 00:00:00"}]}}`,
			shares: []share{{ID: "7", ShareType: 3, Permissions: 17, Token: "T", Expiration: "2026-12-01 00:00:00"}}},
		{name: "json failure with empty data", code: 404,
			body: `{"ocs":{"meta":{"status":"failure","statuscode":404,"message":"Wrong path"},"data":[]}}`},
		{name: "xml one share", code: 100,
			body: "<?xml version=\"1.0\"?>\n<ocs><meta><status>ok</status><statuscode>100</statuscode><message>OK</message></meta>" +
				"<data><id>9</id><share_type>3</share_type><permissions>1</permissions><token>X</token><url>https://c/s/X</url><path>/a</path></data></ocs>",
			shares: []share{{ID: "9", ShareType: 3, Permissions: 1, Token: "X", URL: "https://c/s/X", Path: "/a"}}},
		{name: "xml list", code: 200,
			body: "<ocs><meta><statuscode>200</statuscode></meta><data><element><id>1</id><share_type>3</share_type><token>A</token></element>" +
				"<element><id>2</id><share_type>0</share_type></element></data></ocs>",
			shares: []share{{ID: "1", ShareType: 3, Token: "A"}, {ID: "2"}}},
		{name: "xml empty data", code: 997,
			body: "<ocs><meta><status>failure</status><statuscode>997</statuscode><message>Current user is not logged in</message></meta><data/></ocs>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env, err := parseOCS([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if env.StatusCode != tc.code {
				t.Errorf("statuscode %d, want %d", env.StatusCode, tc.code)
			}
			if fmt.Sprint(env.Shares) != fmt.Sprint(tc.shares) {
				t.Errorf("shares %+v, want %+v", env.Shares, tc.shares)
			}
		})
	}
	for _, bad := range []string{"", "<html>login</html>", `{"foo":1}`, `{"ocs":{"meta":{}}}`, "not json"} {
		if _, err := parseOCS([]byte(bad)); err == nil {
			t.Errorf("parseOCS(%q) accepted it", bad)
		}
	}
}

// FuzzParseOCS: whatever a server sends, parsing neither panics nor invents a
// success without a status code.
func FuzzParseOCS(f *testing.F) {
	f.Add([]byte(`{"ocs":{"meta":{"status":"ok","statuscode":200,"message":"OK"},"data":{"id":"36","token":"Abc","url":"u"}}}`))
	f.Add([]byte(`{"ocs":{"meta":{"statuscode":100},"data":[{"id":1},{"id":"2","share_type":3}]}}`))
	f.Add([]byte(`<ocs><meta><statuscode>100</statuscode></meta><data><element><id>1</id></element></data></ocs>`))
	f.Add([]byte(`{"ocs":{"meta":{"statuscode":"x"},"data":{"id":{}}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := parseOCS(b)
		if err == nil && env.StatusCode == 0 {
			t.Fatalf("accepted a reply without a status code: %q", b)
		}
	})
}

func TestParseMultistatus(t *testing.T) {
	body := `<?xml version="1.0"?>
<d:multistatus xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns" xmlns:oc="http://owncloud.org/ns">
 <d:response><d:href>/remote.php/dav/files/bot/r/calc%201/</d:href>
  <d:propstat><d:prop><d:resourcetype><d:collection/></d:resourcetype><d:getlastmodified>Fri, 20 Nov 2026 12:00:00 GMT</d:getlastmodified></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>
  <d:propstat><d:prop><d:getcontentlength/></d:prop><d:status>HTTP/1.1 404 Not Found</d:status></d:propstat>
 </d:response>
 <d:response><d:href>/remote.php/dav/files/bot/r/calc%201/water.out</d:href>
  <d:propstat><d:prop><d:resourcetype/><d:getcontentlength>4096</d:getcontentlength><d:getlastmodified>Fri, 20 Nov 2026 12:00:00 GMT</d:getlastmodified></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>
 </d:response>
 <d:response><d:href>https://cloud.example/remote.php/dav/files/bot/r/calc%201/sub/</d:href>
  <d:propstat><d:prop><d:resourcetype><d:collection/></d:resourcetype></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>
 </d:response>
</d:multistatus>`
	mt := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	got, err := parseMultistatus(strings.NewReader(body), "/remote.php/dav/files/bot/r/calc 1", false)
	if err != nil {
		t.Fatal(err)
	}
	want := []entry{{Name: "water.out", Size: 4096, ModTime: mt}, {Name: "sub", Dir: true}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	self, err := parseMultistatus(strings.NewReader(body), "/remote.php/dav/files/bot/r/calc 1/", true)
	if err != nil || len(self) != 1 || !self[0].Dir || !self[0].ModTime.Equal(mt) {
		t.Errorf("self: %+v %v", self, err)
	}
}

func TestNewValidates(t *testing.T) {
	ok := Options{URL: "https://cloud.example.org/nc/", User: "u", Password: "p"}
	for _, tc := range []struct {
		name string
		edit func(*Options)
	}{
		{"no scheme", func(o *Options) { o.URL = "cloud.example.org" }},
		{"ftp", func(o *Options) { o.URL = "ftp://cloud.example.org" }},
		{"credentials in URL", func(o *Options) { o.URL = "https://u:secretpw@cloud.example.org" }},
		{"query", func(o *Options) { o.URL = "https://cloud.example.org/?a=b" }},
		{"no user", func(o *Options) { o.User = "" }},
		{"no password", func(o *Options) { o.Password = "" }},
		{"tiny chunks", func(o *Options) { o.ChunkSize = 1 << 20 }},
		{"negative expiry", func(o *Options) { o.ShareExpireDays = -1 }},
	} {
		o := ok
		tc.edit(&o)
		_, err := New(o)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		noSecret(t, err.Error(), "secretpw")
	}
	c, err := New(ok)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.filesURL(c.remote("a b/ü")); got != "https://cloud.example.org/nc/remote.php/dav/files/u/a%20b/%C3%BC" {
		t.Errorf("filesURL = %q", got)
	}
	if got := c.remote("../../etc"); got != "etc" {
		t.Errorf("remote escapes the base: %q", got)
	}
}

func TestOptionsNeverPrintSecrets(t *testing.T) {
	o := Options{URL: "https://c", User: "u", Password: "pw-1234567", SharePassword: "share-987654"}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "opts", o)
	for _, s := range []string{fmt.Sprint(o), fmt.Sprintf("%+v", o), fmt.Sprintf("%v", &o), fmt.Sprintf("%#v", o), buf.String()} {
		noSecret(t, s, o.Password)
		noSecret(t, s, o.SharePassword)
	}
}
