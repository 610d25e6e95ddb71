package cluster

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"hpcbot/plugins"
	"hpcbot/plugins/shellquote"
)

// account is the run_as user of a LocalTransport.
type account struct {
	name     string
	uid, gid uint32
	groups   []uint32 // supplementary groups
	home     string
	sudo     bool // hpcbot is not root: switch through sudo -n -u name
}

// lookupAccount finds run_as (a name or a numeric id) and refuses root and
// hpcbot's own user, as whom calculations would gain nothing.
func lookupAccount(name string) (*account, error) {
	var u *user.User
	var err error
	if _, nerr := strconv.Atoi(name); nerr == nil {
		u, err = user.LookupId(name)
	} else {
		u, err = user.Lookup(name)
	}
	if err != nil {
		return nil, err
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %q: ids %s:%s are not numbers", name, u.Uid, u.Gid)
	}
	switch {
	case uid == 0:
		return nil, fmt.Errorf("user %q is root; name an unprivileged account", name)
	case int(uid) == os.Geteuid():
		return nil, fmt.Errorf("user %q is hpcbot's own user; name another account", name)
	}
	acc := &account{name: u.Username, uid: uint32(uid), gid: uint32(gid), home: u.HomeDir, sudo: os.Geteuid() != 0}
	ids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("user %q: groups: %w", name, err)
	}
	for _, g := range ids {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			acc.groups = append(acc.groups, uint32(n))
		}
	}
	return acc, nil
}

// env turns hpcbot's login variables into the account's: its HOME, USER and
// LOGNAME; hpcbot's TMPDIR and SHELL are dropped (they may be private to hpcbot).
func (a *account) env(login []string) []string {
	out := []string{"HOME=" + a.home, "USER=" + a.name, "LOGNAME=" + a.name}
	for _, kv := range login {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "HOME", "USER", "LOGNAME", "TMPDIR", "SHELL":
		default:
			out = append(out, kv)
		}
	}
	return out
}

// Exit codes of the scripts below, besides a tool's own failure.
const (
	exitNotFound   = 3
	exitNotRegular = 4
)

// asErr gives a command run as the account its Kind: exit 3 is KindNotFound,
// exit 4 ErrNotRegular, another failure permanent (sudo refusing, a full disk)
// with the command's stderr.
func (t *LocalTransport) asErr(what string, res RunResult, err error) error {
	msg := strings.TrimSpace(string(res.Stderr))
	switch {
	case err != nil:
		return fmt.Errorf("%s as %s: %w", what, t.as.name, err)
	case res.ExitCode == 0:
		return nil
	case res.ExitCode == exitNotFound:
		return &plugins.Error{Kind: plugins.KindNotFound, Msg: fmt.Sprintf("%s as %s: not found", what, t.as.name), Err: fs.ErrNotExist}
	case res.ExitCode == exitNotRegular:
		return &plugins.Error{Kind: plugins.KindPermanent, Msg: fmt.Sprintf("%s as %s: a link or a special file", what, t.as.name), Err: ErrNotRegular}
	}
	return plugins.Errorf(plugins.KindPermanent, "%s as %s: exit %d: %s", what, t.as.name, res.ExitCode, msg)
}

// putDirAs unpacks a tar stream of localDir's folders and regular files with
// tar run as the account, so what lands is the account's.
func (t *LocalTransport) putDirAs(ctx context.Context, localDir, remoteDir string) error {
	what := "put " + localDir
	if _, err := os.Stat(localDir); err != nil {
		return fsErr(what, err)
	}
	pr, pw := io.Pipe()
	werr := make(chan error, 1)
	go func() {
		err := writeTar(ctx, pw, localDir)
		pw.CloseWithError(err)
		werr <- err
	}()
	q := shellquote.Quote(remoteDir)
	res, err := t.exec(ctx, "mkdir -p -- "+q+" && tar -x -f - -C "+q, pr, nil)
	pr.Close() // tar stopped early: unblock the writer
	if e := <-werr; e != nil && !errors.Is(e, io.ErrClosedPipe) {
		return fsErr(what, e)
	}
	return t.asErr(what, res, err)
}

// writeTar writes dir's folders and regular files (links and special files are
// skipped, as PutDir does) as a tar stream with relative names.
func writeTar(ctx context.Context, w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: filepath.ToSlash(rel), Mode: int64(info.Mode().Perm()), ModTime: info.ModTime(), Format: tar.FormatPAX}
		if d.IsDir() {
			hdr.Typeflag, hdr.Name = tar.TypeDir, hdr.Name+"/"
			return tw.WriteHeader(hdr)
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		hdr.Typeflag, hdr.Size = tar.TypeReg, info.Size()
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err = io.CopyN(tw, f, info.Size())
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// writeFileAs writes data through a temp file beside remotePath, renamed into place.
func (t *LocalTransport) writeFileAs(ctx context.Context, remotePath string, data []byte, perm fs.FileMode) error {
	script := "p=" + shellquote.Quote(remotePath) + `; d=$(dirname -- "$p") && mkdir -p -- "$d" && tmp=$(mktemp "$d/.hpcbot-write.XXXXXX") || exit 1
if cat >"$tmp" && chmod ` + fmt.Sprintf("%o", perm.Perm()) + ` "$tmp" && mv -f -- "$tmp" "$p"; then exit 0; fi
rm -f -- "$tmp"; exit 1`
	res, err := t.exec(ctx, script, bytes.NewReader(data), nil)
	return t.asErr("write "+remotePath, res, err)
}

// listAs lists remoteDir with find as the account: "TYPE SIZE MODE MTIME PATH\0".
func (t *LocalTransport) listAs(ctx context.Context, remoteDir string) ([]RemoteFile, error) {
	what := "list " + remoteDir
	q := shellquote.Quote(remoteDir)
	script := "[ -e " + q + " ] || exit 3; cd -- " + q + " || exit 1; find . -mindepth 1 ! -type d -printf '%y %s %m %T@ %P\\0'"
	res, err := t.exec(ctx, script, nil, nil)
	if err := t.asErr(what, res, err); err != nil {
		return nil, err
	}
	var files []RemoteFile
	for _, rec := range strings.Split(string(res.Stdout), "\x00") {
		if rec == "" {
			continue
		}
		f := strings.SplitN(rec, " ", 5)
		if len(f) != 5 {
			return nil, plugins.Errorf(plugins.KindPermanent, "%s: unexpected find output %q", what, rec)
		}
		size, err1 := strconv.ParseInt(f[1], 10, 64)
		perm, err2 := strconv.ParseUint(f[2], 8, 32)
		mtime, err3 := strconv.ParseFloat(f[3], 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, plugins.Errorf(plugins.KindPermanent, "%s: unexpected find output %q", what, rec)
		}
		mode := fs.FileMode(perm) & fs.ModePerm
		switch f[0] {
		case "f":
		case "l":
			mode |= fs.ModeSymlink
		case "p":
			mode |= fs.ModeNamedPipe
		case "s":
			mode |= fs.ModeSocket
		case "c":
			mode |= fs.ModeDevice | fs.ModeCharDevice
		case "b":
			mode |= fs.ModeDevice
		default:
			mode |= fs.ModeIrregular
		}
		sec := int64(mtime)
		files = append(files, RemoteFile{Path: f[4], Size: size, Mode: mode,
			ModTime: time.Unix(sec, int64((mtime-float64(sec))*1e9))})
	}
	return files, nil
}

// getAs streams remoteDir/rel through cat run as the account, after the shell
// checked that neither rel nor a folder on its way is a link and that rel is a
// regular file. What the account can read is all it can reach.
func (t *LocalTransport) getAs(ctx context.Context, what, remoteDir, rel, localPath string, limit int64) (int64, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "cd -- %s 2>/dev/null || exit %d\n", shellquote.Quote(remoteDir), exitNotFound)
	for p := path.Dir(rel); p != "."; p = path.Dir(p) {
		fmt.Fprintf(&b, "[ -L %s ] && exit %d\n", shellquote.Quote(p), exitNotRegular)
	}
	q := shellquote.Quote(rel)
	fmt.Fprintf(&b, "[ -L %s ] && exit %d\n[ -e %s ] || exit %d\n[ -f %s ] || exit %d\nexec cat -- %s\n",
		q, exitNotRegular, q, exitNotFound, q, exitNotRegular, q)
	var res RunResult
	var runErr, writeErr error
	n, err := ReceiveFile(localPath, limit, func(w io.Writer) error {
		sink := writerFunc(func(p []byte) (int, error) {
			n, err := w.Write(p)
			if err != nil && writeErr == nil {
				writeErr = err
			}
			return n, err
		})
		res, runErr = t.exec(ctx, b.String(), nil, sink)
		if writeErr != nil {
			return writeErr
		}
		return t.asErr(what, res, runErr)
	})
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, ErrTooLarge):
		return n, &plugins.Error{Kind: plugins.KindPermanent, Msg: what, Err: err}
	case writeErr != nil:
		return n, fsErr(what, err) // this host's disk
	case runErr != nil || res.ExitCode != 0:
		return n, err
	}
	return n, fsErr(what, err)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
