// Uploads over SFTP: a whole folder (PutDir) and one file written atomically
// (WriteFile).

package sshc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

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
