package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"hpcbot/store"
)

// The control socket lets one-shot commands reach a running daemon, which holds
// the store's exclusive lock: `hpcbot backup` asks `hpcbot run` to write the copy,
// `hpcbot report` asks it for the figures, and `hpcbot migrate --orgs FILE`
// hands it organizations to import.
// It is a Unix socket beside the store file, mode 0600, so only the bot's own
// user (and root) can use it.

func controlSocket(storePath string) string { return storePath + ".sock" }

// serveControl serves the control socket until ctx ends.
func serveControl(ctx context.Context, st *store.Store, storePath string, log *slog.Logger) (func(), error) {
	sock := controlSocket(storePath)
	if c, err := net.DialTimeout("unix", sock, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s answers: another hpcbot is running on this store", sock)
	}
	os.Remove(sock) // a stale socket from a killed process
	old := syscallUmask(0o177)
	ln, err := net.Listen("unix", sock)
	syscallUmask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /backup", func(w http.ResponseWriter, r *http.Request) {
		file := r.URL.Query().Get("file")
		if !filepath.IsAbs(file) {
			http.Error(w, "file must be an absolute path", http.StatusBadRequest)
			return
		}
		if _, err := st.BackupFile(file); err != nil {
			log.Error("backup failed", "file", file, "err", err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		log.Info("backup written", "file", file)
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /report", func(w http.ResponseWriter, r *http.Request) { serveReport(w, r, st) })
	mux.HandleFunc("POST /orgs", func(w http.ResponseWriter, r *http.Request) {
		n, err := st.ImportOrganizationsCSV(http.MaxBytesReader(w, r.Body, maxOrgsCSV))
		if err != nil {
			log.Warn("organizations not imported", "err", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		log.Info("organizations imported", "count", n)
		fmt.Fprintln(w, n)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		os.Remove(sock)
	}
	return stop, nil
}

// maxOrgsCSV bounds an organizations file sent through the control socket.
const maxOrgsCSV = 16 << 20

// controlAnswers tells whether a running daemon answers on the store's control socket.
func controlAnswers(storePath string) bool {
	c, err := net.DialTimeout("unix", controlSocket(storePath), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// controlClient is an HTTP client that reaches the daemon on its control socket.
func controlClient(sock string, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}},
	}
}

// importOrgsRemote sends an organizations CSV to the running daemon, which
// imports it (all rows or, on any problem, none); it returns how many were written.
func importOrgsRemote(storePath string, csv io.Reader) (int, error) {
	sock := controlSocket(storePath)
	resp, err := controlClient(sock, 5*time.Minute).Post("http://hpcbot/orgs", "text/csv", csv)
	if err != nil {
		return 0, fmt.Errorf("ask the running hpcbot through %s: %w", sock, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return 0, errors.New(strings.TrimSpace(string(body)))
	}
	var n int
	if _, err := fmt.Sscan(string(body), &n); err != nil {
		return 0, fmt.Errorf("the running hpcbot answered %q", body)
	}
	return n, nil
}

// backupStore is the part of *store.Store that backup needs.
type backupStore interface {
	BackupFile(path string) (int64, error)
	Close() error
}

// openForBackup opens the store read-only, or, when a running daemon holds it,
// returns a handle that asks the daemon through its control socket.
func openForBackup(path string) (backupStore, error) {
	st, sock, err := openOrControl(path, "backup")
	if err != nil {
		return nil, err
	}
	if st != nil {
		return st, nil
	}
	return &remoteBackup{sock: sock}, nil
}

// openOrControl opens the store read-only; when a running daemon holds it, it
// returns the daemon's control socket instead (st nil), for what (a backup, a
// report) to be asked of the daemon.
func openOrControl(path, what string) (st *store.Store, sock string, err error) {
	if _, err := os.Stat(path); err != nil {
		return nil, "", fmt.Errorf("store %s: %w (run `hpcbot migrate` to create it)", path, err)
	}
	st, err = store.Open(path, store.Options{ReadOnly: true, LockTimeout: time.Second, AllowOldSchema: true})
	if err == nil {
		return st, "", nil
	}
	if !errors.Is(err, store.ErrLocked) {
		return nil, "", err
	}
	sock = controlSocket(path)
	if controlAnswers(path) {
		return nil, sock, nil
	}
	return nil, "", fmt.Errorf("%w; its control socket %s does not answer, so the %s cannot be taken through it either: stop the other process or try again", err, sock, what)
}

// remoteBackup asks a running daemon to write the backup.
type remoteBackup struct{ sock string }

func (r *remoteBackup) BackupFile(file string) (int64, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return 0, err
	}
	resp, err := controlClient(r.sock, 30*time.Minute).Post("http://hpcbot/backup?file="+url.QueryEscape(abs), "text/plain", nil)
	if err != nil {
		return 0, fmt.Errorf("ask the running hpcbot through %s: %w", r.sock, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("the running hpcbot could not write the backup: %s", strings.TrimSpace(string(body)))
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (r *remoteBackup) Close() error { return nil }
