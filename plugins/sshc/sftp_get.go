// The remote folder over SFTP: listing it (List), downloading from it (Get) and
// removing it (RemoveAll).

package sshc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
)

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
