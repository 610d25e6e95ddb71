package bot

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	tele "gopkg.in/telebot.v3"
)

// download against a Bot API server that answers getFile with file_path and
// file_size as given, and serves body on the download path.
func downloadWith(t *testing.T, filePath string, size int64, body string, limit int64) (string, error) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/getFile"):
			fmt.Fprintf(w, `{"ok":true,"result":{"file_id":"F","file_unique_id":"U","file_size":%d,"file_path":%q}}`, size, filePath)
		case strings.HasPrefix(r.URL.Path, "/file/bot1:secret/") && !strings.Contains(r.URL.Path, "missing"):
			fmt.Fprint(w, body)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	b, _, _ := offlineBot(t, "info", func(o *Options) { o.Bot.APIURL = srv.URL })
	b.api = NewClient(srv.URL, "1:secret", nil)
	dir := filepath.Join(t.TempDir(), "calc")
	err := b.download(context.Background(), &tele.File{FileID: "F"}, dir, "in.sh", limit)
	data, _ := os.ReadFile(filepath.Join(dir, "in.sh"))
	if err == nil {
		if left, _ := filepath.Glob(filepath.Join(dir, ".download-*")); len(left) != 0 {
			t.Errorf("temporary files left: %v", left)
		}
	}
	return string(data), err
}

func TestDownload(t *testing.T) {
	got, err := downloadWith(t, "documents/file_1.sh", 5, "hello", 100)
	if err != nil || got != "hello" {
		t.Errorf("download: %q %v", got, err)
	}
	// A local Bot API server (--local) gives an absolute path on this host.
	local := filepath.Join(t.TempDir(), "local.sh")
	if err := os.WriteFile(local, []byte("from disk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := downloadWith(t, local, 9, "", 100); err != nil || got != "from disk" {
		t.Errorf("local server: %q %v", got, err)
	}
	// Larger than announced, or announced too large: refused, nothing left behind.
	if got, err := downloadWith(t, "documents/f.sh", 5, strings.Repeat("x", 200), 100); err == nil || got != "" {
		t.Errorf("oversize body: %q %v", got, err)
	}
	if got, err := downloadWith(t, "documents/f.sh", 500, "x", 100); err == nil || got != "" {
		t.Errorf("oversize announced: %q %v", got, err)
	}
	// The download path answers 404: an error without the token.
	_, err = downloadWith(t, "documents/missing.sh", 1, "", 100)
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("404: %v", err)
	}
}
