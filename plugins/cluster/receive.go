package cluster

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Errors a Transport's Get reports for a file that changed since List saw it;
// Fetch skips such a file and says why (SkipNotRegular, SkipGrew).
var (
	// ErrNotRegular: the path is now a symbolic link, a folder or a special file.
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge: the file holds more bytes than the limit Get was given.
	ErrTooLarge = errors.New("larger than the size limit")
)

// Modes of what Fetch creates on this host: results are the user's data and
// nobody else's business on the bot's machine, whatever mode they had remotely.
const (
	LocalFileMode fs.FileMode = 0o600
	LocalDirMode  fs.FileMode = 0o700
)

// ReceiveFile writes localPath with what fill writes to its writer: into a
// temporary file beside it (parents created LocalDirMode), made LocalFileMode and
// renamed into place, so localPath is either absent, the old file or the whole new
// one. With limit >= 0 the writer refuses the byte past limit (so 0 allows an
// empty file only; NoLimit, negative, none): fill then fails
// with an error wrapping ErrTooLarge, and nothing is left behind. It returns the
// bytes written. Errors other than fill's are this host's (disk full, permissions).
func ReceiveFile(localPath string, limit int64, fill func(io.Writer) error) (int64, error) {
	dir := filepath.Dir(localPath)
	if err := os.MkdirAll(dir, LocalDirMode); err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(localPath)+".part-*")
	if err != nil {
		return 0, err
	}
	done := false
	defer func() {
		if !done {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	w := &limitWriter{w: tmp, limit: limit}
	if err := fill(w); err != nil {
		return w.n, err
	}
	if err := tmp.Chmod(LocalFileMode); err != nil {
		return w.n, err
	}
	if err := tmp.Sync(); err != nil {
		return w.n, err
	}
	if err := tmp.Close(); err != nil {
		return w.n, err
	}
	if err := os.Rename(tmp.Name(), localPath); err != nil {
		return w.n, err
	}
	done = true
	return w.n, nil
}

// NoLimit is the limit of a copy that may be of any size. Zero is not "no
// limit": it is a limit that lets nothing through.
const NoLimit int64 = -1

// limitWriter counts what it writes and refuses to go past limit (>= 0).
type limitWriter struct {
	w        io.Writer
	n, limit int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.limit >= 0 && l.n+int64(len(p)) > l.limit {
		room := l.limit - l.n
		n, err := l.w.Write(p[:room])
		l.n += int64(n)
		if err != nil {
			return n, err
		}
		return n, fmt.Errorf("%w (%d bytes)", ErrTooLarge, l.limit)
	}
	n, err := l.w.Write(p)
	l.n += int64(n)
	return n, err
}
