package sshc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/sync/errgroup"

	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
)

// sftpSession is the one SFTP session of a connection.
type sftpSession struct {
	cl          *sftp.Client
	home        string // login folder, for "~/"
	posixRename bool   // server has posix-rename@openssh.com
	done        chan struct{}
}

// sftpAttempt is one try at opening the SFTP session; s and err are set
// before ready is closed and never change afterwards.
type sftpAttempt struct {
	ready chan struct{}
	s     *sftpSession
	err   error
}

// usable reports whether a is in progress or produced a live session.
func (a *sftpAttempt) usable() bool {
	select {
	case <-a.ready:
	default:
		return true
	}
	if a.err != nil {
		return false
	}
	select {
	case <-a.s.done:
		return false
	default:
		return true
	}
}

// sftpFor returns the connection and its SFTP session, opening it on first
// use (and again after it ended while the connection stayed up).
func (c *Client) sftpFor(ctx context.Context) (*conn, *sftpSession, error) {
	cn, err := c.connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	cn.sftpMu.Lock()
	a := cn.sftp
	if a == nil || !a.usable() {
		a = &sftpAttempt{ready: make(chan struct{})}
		cn.sftp = a
		go c.openSFTP(cn, a)
	}
	cn.sftpMu.Unlock()
	select {
	case <-a.ready:
	case <-ctx.Done():
		return nil, nil, ctxError("open sftp on "+c.name, ctx.Err())
	case <-cn.done:
		return nil, nil, cn.err
	}
	if a.err != nil {
		return nil, nil, a.err
	}
	return cn, a.s, nil
}

// openSFTP opens the SFTP session in the background: it holds one channel slot
// for as long as it lives, and callers waiting for it each keep their own deadline.
func (c *Client) openSFTP(cn *conn, a *sftpAttempt) {
	defer close(a.ready)
	s, closeSession, err := c.openSession(c.ctx, cn)
	if err != nil {
		a.err = err
		return
	}
	fail := func(what string, err error) {
		closeSession()
		if !cn.alive() {
			a.err = cn.err
			return
		}
		a.err = plugins.Errorf(plugins.KindTransient, "%s on %s: %w", what, c.name, err)
	}
	w, err := s.StdinPipe()
	if err != nil {
		fail("sftp stdin", err)
		return
	}
	r, err := s.StdoutPipe()
	if err != nil {
		fail("sftp stdout", err)
		return
	}
	if err := s.RequestSubsystem("sftp"); err != nil {
		fail("start the sftp subsystem", err)
		if cn.alive() {
			// Some login nodes disable SFTP; asking again will not help.
			a.err = plugins.Errorf(plugins.KindPermanent,
				"%s refused the sftp subsystem, which file transfers need (ask its admins to enable it): %w", c.name, err)
		}
		return
	}
	// A server that accepts the subsystem and never answers would hang the
	// version exchange: closing the session ends it.
	guard := time.AfterFunc(c.opts.DialTimeout, closeSession)
	cl, err := sftp.NewClientPipe(r, &packetCounter{WriteCloser: w, n: &c.stats.sftpRequests},
		sftp.UseConcurrentReads(true),
		sftp.MaxConcurrentRequestsPerFile(64))
	if err != nil {
		guard.Stop()
		fail("sftp handshake", err)
		return
	}
	home, err := cl.Getwd()
	if !guard.Stop() {
		err = errors.New("timed out")
	}
	if err != nil {
		_ = cl.Close()
		fail("sftp getwd", err)
		return
	}
	_, posix := cl.HasExtension("posix-rename@openssh.com")
	ss := &sftpSession{cl: cl, home: home, posixRename: posix, done: make(chan struct{})}
	go func() {
		_ = cl.Wait()
		close(ss.done)
		closeSession()
	}()
	a.s = ss
}

// packetCounter counts the SFTP packets written through it. Each packet starts
// with its length, a 4-byte big-endian number
// (https://datatracker.ietf.org/doc/html/draft-ietf-secsh-filexfer-02#section-3);
// pkg/sftp writes one packet at a time, so Write is never called concurrently.
type packetCounter struct {
	io.WriteCloser
	n     *atomic.Int64
	hdr   [4]byte
	inHdr int    // length bytes seen of the next packet
	left  uint32 // bytes left of the current packet
}

func (p *packetCounter) Write(b []byte) (int, error) {
	n, err := p.WriteCloser.Write(b)
	for rest := b[:n]; len(rest) > 0; {
		if p.left > 0 {
			k := min(uint32(len(rest)), p.left)
			p.left -= k
			rest = rest[k:]
			continue
		}
		p.hdr[p.inHdr] = rest[0]
		p.inHdr++
		rest = rest[1:]
		if p.inHdr == len(p.hdr) {
			p.left, p.inHdr = binary.BigEndian.Uint32(p.hdr[:]), 0
			p.n.Add(1)
		}
	}
	return n, err
}

// abs expands a leading "~/" (or a lone "~") with the login folder; other
// paths are used as given, relative ones against the login folder.
func (s *sftpSession) abs(p string) string {
	switch {
	case p == "~":
		return s.home
	case strings.HasPrefix(p, "~/"):
		return path.Join(s.home, p[2:])
	}
	return p
}

// do runs op on the SFTP session and returns when op ends, ctx ends or the
// connection is lost, whichever comes first. op gets ctx and must stop soon
// after it ends (transfers check it at every packet); an op abandoned on a
// dead link ends when the keepalive closes the connection.
func (c *Client) do(ctx context.Context, what string, op func(ctx context.Context, s *sftpSession) error) error {
	cn, s, err := c.sftpFor(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	errc := make(chan error, 1)
	go func() { errc <- op(ctx, s) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
		return ctxError(what, ctx.Err())
	case <-cn.done:
		return fmt.Errorf("%s: %w", what, cn.err)
	}
	return classify(what, err, cn, s)
}

// classify gives an SFTP error its kind.
func classify(what string, err error, cn *conn, s *sftpSession) error {
	var pe *plugins.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pe):
		return fmt.Errorf("%s: %w", what, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return ctxError(what, err)
	case !cn.alive():
		return fmt.Errorf("%s: %w", what, cn.err)
	case errors.Is(err, fs.ErrNotExist):
		return plugins.Errorf(plugins.KindNotFound, "%s: %w", what, err)
	case errors.Is(err, fs.ErrPermission):
		return plugins.Errorf(plugins.KindPermanent, "%s: %w", what, err)
	}
	select {
	case <-s.done:
		return plugins.Errorf(plugins.KindTransient, "%s: sftp session ended: %w", what, err)
	default:
	}
	var se *sftp.StatusError
	var errno syscall.Errno // MkdirAll's "not a directory"
	if errors.As(err, &se) || errors.As(err, &errno) {
		// Quota, read-only file system, a file where a folder should be:
		// the server's answer will be the same next time.
		return plugins.Errorf(plugins.KindPermanent, "%s: %w", what, err)
	}
	return plugins.Errorf(plugins.KindTransient, "%s: %w", what, err)
}

// localError marks a failure on this host's side of a transfer.
func localError(err error) error {
	return &plugins.Error{Kind: plugins.KindPermanent, Msg: "local", Err: err}
}

type localFile struct {
	rel  string // slash-separated, relative to the folder
	path string
	mode fs.FileMode
}

// scanLocal lists the folders and regular files below dir. Symbolic links and
// other special files are skipped.
func scanLocal(dir string) (dirs []string, files []localFile, err error) {
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			if rel != "." {
				dirs = append(dirs, rel)
			}
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			files = append(files, localFile{rel: rel, path: p, mode: info.Mode()})
		}
		return nil
	})
	if err != nil {
		return nil, nil, localError(err)
	}
	return dirs, files, nil
}

// PutDir copies every regular file below localDir to remoteDir, creating
// remoteDir, its parents and every folder below it. Existing files are
// overwritten in place and keep the local permission bits. Symbolic links and
// special files below localDir are skipped. Options.TransferWorkers files go at
// once, each pipelined (many SFTP write requests in flight), over the one SFTP
// session. On error some files may be copied and the last one partly: PutDir
// is meant to be repeated whole.
func (c *Client) PutDir(ctx context.Context, localDir, remoteDir string) error {
	what := fmt.Sprintf("put %s to %s:%s", localDir, c.name, remoteDir)
	dirs, files, err := scanLocal(localDir)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return c.do(ctx, what, func(ctx context.Context, s *sftpSession) error {
		root := s.abs(remoteDir)
		if err := s.mkdir(root); err != nil {
			return fmt.Errorf("create %s: %w", root, err)
		}
		for _, d := range dirs { // parents come before children
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := s.mkdir(path.Join(root, d)); err != nil {
				return fmt.Errorf("create %s: %w", path.Join(root, d), err)
			}
		}
		return parallel(ctx, c.opts.TransferWorkers, len(files), func(ctx context.Context, i int) error {
			f := files[i]
			return s.upload(ctx, f.path, path.Join(root, f.rel), f.mode.Perm())
		})
	})
}

// mkdir creates the folder p and, when needed, its parents. A calculation's
// folder is new and its parents exist, so it tries a bare mkdir first: one
// round trip, where MkdirAll's stat of p, stat of its parent and mkdir take
// three. Only when that fails (p exists, a parent is missing) does MkdirAll
// find out why, and create what is missing.
func (s *sftpSession) mkdir(p string) error {
	if s.cl.Mkdir(p) == nil {
		return nil
	}
	return s.cl.MkdirAll(p)
}

// upload writes the local file to remote, truncating it first. Its permission
// bits are set (by path, on the file just opened) while the data is written,
// so that a small file costs three round trips: open, write and chmod at once,
// close.
func (s *sftpSession) upload(ctx context.Context, local, remote string, perm fs.FileMode) error {
	f, err := os.Open(local)
	if err != nil {
		return localError(err)
	}
	defer f.Close()
	rf, err := s.cl.OpenFile(remote, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return fmt.Errorf("create %s: %w", remote, err)
	}
	chmodded := make(chan error, 1)
	go func() { chmodded <- s.cl.Chmod(remote, perm) }()
	_, err = rf.ReadFromWithConcurrency(ctxReader{ctx, f}, 0)
	if cerr := <-chmodded; err == nil {
		err = cerr
	}
	if cerr := rf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("upload %s: %w", remote, err)
	}
	return nil
}

// WriteFile writes data to remotePath atomically: to a temporary file beside
// it, then renamed over it (posix-rename@openssh.com; on a server without it,
// the old file is removed first, which leaves a short window without one).
// Parents are created. perm 0 means 0644.
func (c *Client) WriteFile(ctx context.Context, remotePath string, data []byte, perm fs.FileMode) error {
	if perm == 0 {
		perm = 0o644
	}
	what := fmt.Sprintf("write %s:%s", c.name, remotePath)
	return c.do(ctx, what, func(ctx context.Context, s *sftpSession) error {
		p := s.abs(remotePath)
		dir := path.Dir(p)
		if err := s.cl.MkdirAll(dir); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
		tmp := path.Join(dir, "."+path.Base(p)+".tmp-"+randomSuffix())
		rf, err := s.cl.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
		if err != nil {
			return fmt.Errorf("create %s: %w", tmp, err)
		}
		_, err = rf.ReadFromWithConcurrency(ctxReader{ctx, bytes.NewReader(data)}, 0)
		if err == nil {
			err = rf.Chmod(perm.Perm())
		}
		if cerr := rf.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = s.rename(tmp, p)
		}
		if err != nil {
			_ = s.cl.Remove(tmp)
			return err
		}
		return nil
	})
}

func (s *sftpSession) rename(from, to string) error {
	if s.posixRename {
		return s.cl.PosixRename(from, to)
	}
	if err := s.cl.Remove(to); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return s.cl.Rename(from, to)
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// List returns every regular file below remoteDir, recursively, sorted by
// path. remoteDir itself may be a symbolic link to a folder; links below it are
// neither followed nor listed, so nothing outside the folder is reached.
// A missing remoteDir is plugins.KindNotFound.
func (c *Client) List(ctx context.Context, remoteDir string) ([]cluster.RemoteFile, error) {
	what := fmt.Sprintf("list %s:%s", c.name, remoteDir)
	var out []cluster.RemoteFile
	err := c.do(ctx, what, func(ctx context.Context, s *sftpSession) error {
		root := s.abs(remoteDir)
		st, err := s.cl.Stat(root)
		if err != nil {
			return err
		}
		if !st.IsDir() {
			return plugins.Errorf(plugins.KindPermanent, "%s is not a folder", root)
		}
		var walk func(dir, rel string) error
		walk = func(dir, rel string) error {
			entries, err := s.cl.ReadDirContext(ctx, dir)
			if err != nil {
				return err
			}
			for _, e := range entries {
				name := e.Name()
				if name == "." || name == ".." {
					continue
				}
				r := path.Join(rel, name)
				if e.IsDir() {
					if err := walk(path.Join(dir, name), r); err != nil {
						return err
					}
					continue
				}
				// Regular files, and links and special files for Fetch to skip and report.
				out = append(out, cluster.RemoteFile{Path: r, Size: e.Size(), Mode: e.Mode(), ModTime: e.ModTime()})
			}
			return nil
		}
		return walk(root, "")
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// Get copies remoteDir/rel to localPath (see cluster.Transport). The download is
// pipelined (many SFTP read requests in flight). rel and each folder on its way
// below remoteDir are checked with lstat: a link there is refused, never
// followed; the opened handle must be a regular file of the size lstat saw, or
// at least not above limit. (SFTP has no open-without-following, so a link
// swapped in between lstat and open can still be read, up to limit bytes, by the
// cluster account that could read it anyway.) A missing remote file is
// plugins.KindNotFound.
func (c *Client) Get(ctx context.Context, remoteDir, rel, localPath string, limit int64) (int64, error) {
	what := fmt.Sprintf("get %s:%s", c.name, path.Join(remoteDir, rel))
	var n int64
	err := c.do(ctx, what, func(ctx context.Context, s *sftpSession) error {
		if !filepath.IsLocal(filepath.FromSlash(rel)) {
			return plugins.Errorf(plugins.KindPermanent, "not a path inside the folder")
		}
		p := s.abs(remoteDir)
		var st fs.FileInfo
		for _, el := range strings.Split(rel, "/") {
			p = path.Join(p, el)
			var err error
			if st, err = s.cl.Lstat(p); err != nil {
				return err
			}
			if st.Mode()&fs.ModeSymlink != 0 {
				return &plugins.Error{Kind: plugins.KindPermanent, Msg: p + " is a symbolic link", Err: cluster.ErrNotRegular}
			}
		}
		if !st.Mode().IsRegular() {
			return &plugins.Error{Kind: plugins.KindPermanent, Msg: p + " is " + st.Mode().Type().String(), Err: cluster.ErrNotRegular}
		}
		rf, err := s.cl.Open(p)
		if err != nil {
			return err
		}
		defer rf.Close()
		if hst, err := rf.Stat(); err != nil {
			return err
		} else if !hst.Mode().IsRegular() {
			return &plugins.Error{Kind: plugins.KindPermanent, Msg: p + " is " + hst.Mode().Type().String(), Err: cluster.ErrNotRegular}
		}
		var copyErr error // the transfer's (remote, or ctxWriter's local) error
		n, err = cluster.ReceiveFile(localPath, limit, func(w io.Writer) error {
			_, copyErr = rf.WriteTo(ctxWriter{ctx, w})
			return copyErr
		})
		switch {
		case errors.Is(err, cluster.ErrTooLarge):
			return &plugins.Error{Kind: plugins.KindPermanent, Msg: p, Err: err}
		case err != nil && copyErr == nil:
			return localError(err) // MkdirAll, CreateTemp, Rename on this host
		}
		return err
	})
	return n, err
}

// RemoveAll removes remoteDir and everything below it, without following
// symbolic links; a missing remoteDir is not an error. As a guard against a
// wrong path it refuses "/", ".", "~" and the login folder itself.
func (c *Client) RemoveAll(ctx context.Context, remoteDir string) error {
	what := fmt.Sprintf("remove %s:%s", c.name, remoteDir)
	return c.do(ctx, what, func(ctx context.Context, s *sftpSession) error {
		root := s.abs(remoteDir)
		clean := path.Clean(root)
		if root == "" || clean == "/" || clean == "." || clean == ".." || clean == path.Clean(s.home) {
			return plugins.Errorf(plugins.KindPermanent, "refusing to remove %q: it is the root or the login folder", remoteDir)
		}
		st, err := s.cl.Lstat(root)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !st.IsDir() {
			return ignoreNotExist(s.cl.Remove(root))
		}
		return s.removeTree(ctx, root, c.opts.TransferWorkers)
	})
}

func (s *sftpSession) removeTree(ctx context.Context, dir string, workers int) error {
	entries, err := s.cl.ReadDirContext(ctx, dir)
	if err != nil {
		return ignoreNotExist(err)
	}
	var files []string
	for _, e := range entries {
		name := e.Name()
		if name == "." || name == ".." {
			continue
		}
		p := path.Join(dir, name)
		if e.IsDir() {
			if err := s.removeTree(ctx, p, workers); err != nil {
				return err
			}
			continue
		}
		files = append(files, p)
	}
	err = parallel(ctx, workers, len(files), func(_ context.Context, i int) error {
		return ignoreNotExist(s.cl.Remove(files[i]))
	})
	if err != nil {
		return err
	}
	return ignoreNotExist(s.cl.RemoveDirectory(dir))
}

func ignoreNotExist(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// parallel calls fn(ctx, i) for i in [0, n) on up to workers goroutines and
// returns the first error; after an error no new calls start and the ctx
// given to running ones is cancelled.
func parallel(ctx context.Context, workers, n int, fn func(ctx context.Context, i int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(workers, 1))
	for i := range n {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if gctx.Err() != nil { // an earlier call failed while this one waited for a worker
				return nil
			}
			return fn(gctx, i)
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// ctxReader stops a pipelined upload when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = localError(err)
	}
	return n, err
}

// ctxWriter stops a pipelined download when ctx ends; write errors are local.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (w ctxWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := w.w.Write(p)
	if err != nil {
		err = localError(err)
	}
	return n, err
}
