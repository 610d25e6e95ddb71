package cluster

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"hpcbot/plugins"
	"hpcbot/plugins/shellquote"
)

// LocalTransport is a Transport for this host: commands run through /bin/sh,
// files are copied with the os package. It needs no SSH, so the local
// scheduler plugin and tests of the generic code run anywhere.
//
// Commands (and so the calculations the local plugin starts) do not inherit the
// bot's environment, which may hold secrets (the token and passwords may be given
// as HPCBOT_* environment variables): they see a login-like environment made of
// LoginEnv's variables.
//
// With a run_as account (see NewLocalTransport) every command runs as that user,
// and so does every file operation in upload_path (through commands: tar, cat,
// find, rm), so the calculations and their files are the account's, and the
// account cannot read hpcbot's.
type LocalTransport struct {
	// Shell runs commands; empty means /bin/sh.
	Shell string
	// Env is the commands' environment; nil means LoginEnv(), with an account's
	// HOME, USER and LOGNAME instead of hpcbot's (and no TMPDIR or SHELL).
	Env []string
	as  *account // run_as; nil: hpcbot's own user
}

// loginVars are the variables a login shell would also have; nothing else of the
// bot's environment reaches a command.
var loginVars = []string{"HOME", "USER", "LOGNAME", "PATH", "SHELL", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE",
	"LC_NUMERIC", "LC_MESSAGES", "TZ", "TMPDIR"}

// LoginEnv returns the bot's values of the login variables (HOME, USER, PATH, LANG...).
func LoginEnv() []string {
	env := []string{}
	for _, k := range loginVars {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

var _ Transport = (*LocalTransport)(nil)

// NewLocalTransport returns a LocalTransport; it fits New's newTransport. With
// c.RunAs set it works as that account: directly when hpcbot runs as root, else
// through `sudo -n -u RUN_AS` (the operator allows hpcbot's user that in sudoers).
// The account must exist and be neither root nor hpcbot's own user.
func NewLocalTransport(c plugins.Cluster) (Transport, error) {
	if c.RunAs == "" {
		return &LocalTransport{}, nil
	}
	if !runAsSupported {
		return nil, plugins.Errorf(plugins.KindPermanent, "run_as is not supported on this system")
	}
	acc, err := lookupAccount(c.RunAs)
	if err != nil {
		return nil, plugins.Errorf(plugins.KindPermanent, "run_as: %w", err)
	}
	return &LocalTransport{as: acc}, nil
}

// Run runs cmd with sh -c in its own process group; when ctx ends the whole group
// is killed (processes that detached with setsid are not in it and survive).
func (t *LocalTransport) Run(ctx context.Context, cmd string) (RunResult, error) {
	return t.exec(ctx, cmd, nil, nil)
}

// exec runs script as Run does, with stdin (nil: none) and stdout streamed to a
// writer (nil: collected into the result).
func (t *LocalTransport) exec(ctx context.Context, script string, stdin io.Reader, stdout io.Writer) (RunResult, error) {
	sh := t.Shell
	if sh == "" {
		sh = "/bin/sh"
	}
	env := t.Env
	if env == nil {
		env = LoginEnv()
		if t.as != nil {
			env = t.as.env(env)
		}
	}
	var c *exec.Cmd
	switch {
	case t.as == nil:
		c = exec.CommandContext(ctx, sh, "-c", script)
		c.Env = env
		setProcessGroup(c)
	case t.as.sudo:
		// sudo resets the environment; env -i sets exactly ours.
		argv := append([]string{"-n", "-u", t.as.name, "--", "env", "-i"}, env...)
		c = exec.CommandContext(ctx, "sudo", append(argv, sh, "-c", script)...)
		c.Dir = "/"
		setSudoGroup(c)
	default:
		c = exec.CommandContext(ctx, sh, "-c", script)
		c.Env = env
		c.Dir = "/" // hpcbot's folder may be closed to the account
		setProcessGroup(c)
		setCredential(c, t.as)
	}
	var out, stderr bytes.Buffer
	c.Stdout, c.Stderr = &out, &stderr
	if stdout != nil {
		c.Stdout = stdout
	}
	c.Stdin = stdin
	// A background child that kept our pipes open must not hang Run.
	c.WaitDelay = 5 * time.Second
	err := c.Run()
	res := RunResult{Stdout: out.Bytes(), Stderr: stderr.Bytes()}
	if ctx.Err() != nil {
		return res, plugins.Errorf(plugins.KindTransient, "run: %w", ctx.Err())
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		res.ExitCode = ee.ExitCode()
	case errors.As(err, &ee):
		return res, plugins.Errorf(plugins.KindTransient, "run: shell killed: %w", err)
	case errors.Is(err, exec.ErrWaitDelay):
		// The command finished; a child it left behind still held the output open.
		res.ExitCode = c.ProcessState.ExitCode()
	default:
		return res, plugins.Errorf(plugins.KindPermanent, "run: %w", err)
	}
	return res, nil
}

// fsErr gives an os error its Kind: a missing path is KindNotFound, a refused
// one permanent, anything else (disk full, I/O) transient.
func fsErr(op string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &plugins.Error{Kind: plugins.KindNotFound, Msg: op, Err: err}
	case errors.Is(err, fs.ErrPermission):
		return &plugins.Error{Kind: plugins.KindPermanent, Msg: op, Err: err}
	}
	return &plugins.Error{Kind: plugins.KindTransient, Msg: op, Err: err}
}

// PutDir copies every regular file below localDir to remoteDir.
func (t *LocalTransport) PutDir(ctx context.Context, localDir, remoteDir string) error {
	if t.as != nil {
		return t.putDirAs(ctx, localDir, remoteDir)
	}
	err := filepath.WalkDir(localDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(localDir, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(remoteDir, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return copyFile(p, filepath.Join(remoteDir, rel), info.Mode().Perm())
	})
	if err != nil {
		return fsErr("put "+localDir, err)
	}
	return nil
}

// copyFile copies src to dst through a temp file in dst's folder, renamed into place.
func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeAtomic(dst, perm, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}

func writeAtomic(dst string, perm fs.FileMode, fill func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if err := fill(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// WriteFile writes data to remotePath atomically.
func (t *LocalTransport) WriteFile(ctx context.Context, remotePath string, data []byte, perm fs.FileMode) error {
	if err := ctx.Err(); err != nil {
		return plugins.Errorf(plugins.KindTransient, "write %s: %w", remotePath, err)
	}
	if t.as != nil {
		return t.writeFileAs(ctx, remotePath, data, perm)
	}
	err := writeAtomic(remotePath, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
	if err != nil {
		return fsErr("write "+remotePath, err)
	}
	return nil
}

// List returns every regular file below remoteDir, and the symbolic links and
// special files it meets (not followed).
func (t *LocalTransport) List(ctx context.Context, remoteDir string) ([]RemoteFile, error) {
	if t.as != nil {
		return t.listAs(ctx, remoteDir)
	}
	var files []RemoteFile
	err := filepath.WalkDir(remoteDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info() // an lstat: a link is reported as a link
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we listed
			}
			return err
		}
		rel, err := filepath.Rel(remoteDir, p)
		if err != nil {
			return err
		}
		files = append(files, RemoteFile{Path: filepath.ToSlash(rel), Size: info.Size(), Mode: info.Mode(), ModTime: info.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fsErr("list "+remoteDir, err)
	}
	return files, nil
}

// Get copies remoteDir/rel to localPath. It opens the file through an os.Root
// on remoteDir, so no link at or below remoteDir can lead outside it, refuses a
// link as rel itself, and checks the opened file is regular (O_NONBLOCK: a fifo
// swapped in cannot hang the open).
func (t *LocalTransport) Get(ctx context.Context, remoteDir, rel, localPath string, limit int64) (int64, error) {
	what := "get " + path.Join(remoteDir, rel)
	if err := ctx.Err(); err != nil {
		return 0, plugins.Errorf(plugins.KindTransient, "%s: %w", what, err)
	}
	if !filepath.IsLocal(filepath.FromSlash(rel)) {
		return 0, plugins.Errorf(plugins.KindPermanent, "%s: not a path inside the folder", what)
	}
	if t.as != nil {
		return t.getAs(ctx, what, remoteDir, rel, localPath, limit)
	}
	root, err := os.OpenRoot(remoteDir)
	if err != nil {
		return 0, fsErr(what, err)
	}
	defer root.Close()
	notRegular := func(m fs.FileMode) error {
		return &plugins.Error{Kind: plugins.KindPermanent, Msg: what + ": " + m.Type().String(), Err: ErrNotRegular}
	}
	// Each folder on the way and the file itself: no link.
	name := ""
	for _, el := range strings.Split(rel, "/") {
		name = filepath.Join(name, el)
		info, err := root.Lstat(name)
		if err != nil {
			return 0, rootErr(what, err)
		}
		if info.Mode()&fs.ModeSymlink != 0 || (name != filepath.FromSlash(rel) && !info.IsDir()) {
			return 0, notRegular(info.Mode())
		}
		if name == filepath.FromSlash(rel) && !info.Mode().IsRegular() {
			return 0, notRegular(info.Mode())
		}
	}
	in, err := root.OpenFile(name, os.O_RDONLY|openNoBlockNoFollow, 0)
	if err != nil {
		return 0, rootErr(what, err)
	}
	defer in.Close()
	if info, err := in.Stat(); err != nil {
		return 0, fsErr(what, err)
	} else if !info.Mode().IsRegular() {
		return 0, notRegular(info.Mode())
	}
	n, err := ReceiveFile(localPath, limit, func(w io.Writer) error {
		_, err := io.Copy(w, ctxReader{ctx, in})
		return err
	})
	switch {
	case errors.Is(err, ErrTooLarge):
		return n, &plugins.Error{Kind: plugins.KindPermanent, Msg: what, Err: err}
	case ctx.Err() != nil:
		return n, plugins.Errorf(plugins.KindTransient, "%s: %w", what, ctx.Err())
	case err != nil:
		return n, fsErr(what, err)
	}
	return n, nil
}

// rootErr classifies an error of an os.Root operation: a link swapped in after
// Get checked the path (os.Root refuses to leave the folder, and a link as the
// last element fails O_NOFOLLOW with ELOOP) is ErrNotRegular, like one seen
// before. os.Root's "path escapes from parent" error is not exported
// (src/os/file.go: errPathEscapes), so it is recognised by its text.
func rootErr(what string, err error) error {
	if errors.Is(err, syscall.ELOOP) || strings.Contains(err.Error(), "path escapes from parent") {
		return &plugins.Error{Kind: plugins.KindPermanent, Msg: what + ": a link", Err: errors.Join(ErrNotRegular, err)}
	}
	return fsErr(what, err)
}

// ctxReader stops a copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// RemoveAll removes remoteDir; a missing folder is not an error.
func (t *LocalTransport) RemoveAll(ctx context.Context, remoteDir string) error {
	if err := ctx.Err(); err != nil {
		return plugins.Errorf(plugins.KindTransient, "remove %s: %w", remoteDir, err)
	}
	if t.as != nil {
		res, err := t.exec(ctx, "rm -rf -- "+shellquote.Quote(remoteDir), nil, nil)
		return t.asErr("remove "+remoteDir, res, err)
	}
	if err := os.RemoveAll(remoteDir); err != nil {
		return fsErr("remove "+remoteDir, err)
	}
	return nil
}

// Close does nothing: LocalTransport holds no connection.
func (t *LocalTransport) Close() error { return nil }
