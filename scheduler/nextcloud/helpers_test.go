package nextcloud

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hpcbot/plugins"
	"hpcbot/scheduler/nextcloud/nctest"
)

const mib = 1 << 20

// newClient returns a Client for srv with base path "hpc_results"; edit may change the options.
func newClient(t testing.TB, srv *nctest.Server, edit func(*Options)) *Client {
	t.Helper()
	o := Options{URL: srv.URL, User: srv.User, Password: srv.Password, BasePath: "hpc_results"}
	if edit != nil {
		edit(&o)
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// writeFile writes size pseudo-random bytes (seeded, so reproducible) with an mtime
// in the past, and returns the content.
func writeFile(t testing.TB, p string, size int, seed uint64) []byte {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, size)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	_, _ = r.Read(b)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	mt := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	if err := os.Chtimes(p, mt, mt); err != nil {
		t.Fatal(err)
	}
	return b
}

// sameContent fails the test unless the server holds want at remote.
func sameContent(t testing.TB, srv *nctest.Server, remote string, want []byte) {
	t.Helper()
	got, err := srv.ReadFile(remote)
	if err != nil {
		t.Fatalf("read %s on the server: %v", remote, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s on the server: %d bytes differ from the %d sent", remote, len(got), len(want))
	}
}

// wantKind fails the test unless err has kind k.
func wantKind(t testing.TB, err error, k plugins.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want kind %v", k)
	}
	if got := plugins.KindOf(err); got != k {
		t.Fatalf("error %q has kind %v, want %v", err, got, k)
	}
	var pe *plugins.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %q is not a *plugins.Error", err)
	}
}

// noSecret fails the test if s contains the password.
func noSecret(t testing.TB, s, secret string) {
	t.Helper()
	if strings.Contains(s, secret) {
		t.Fatalf("the password leaked: %q", s)
	}
}

// isZeros reports whether the file holds size zero bytes.
func isZeros(t testing.TB, p string, size int64) bool {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, mib)
	var n int64
	for {
		k, err := f.Read(buf)
		for _, b := range buf[:k] {
			if b != 0 {
				return false
			}
		}
		n += int64(k)
		if err == io.EOF {
			return n == size
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
