// Package cluster implements plugins.Scheduler once, generically, on top of two
// small pieces: a Transport (how commands and files reach the cluster: SSH/SFTP, or
// this host) and a Dialect (which scheduler commands to build and how to parse their
// output: slurm, pbs, detached processes). Dialects are pure functions with no I/O.
package cluster

import (
	"context"
	"io/fs"
	"time"
)

// RunResult is what a remote command printed and how it exited.
type RunResult struct {
	Stdout   []byte
	Stderr   []byte
	ExitCode int
}

// RemoteFile is one file found by List, Path relative to the listed folder. Mode
// tells a regular file from a symbolic link or a special file.
type RemoteFile struct {
	Path    string
	Size    int64
	Mode    fs.FileMode
	ModTime time.Time
}

// Transport runs commands and moves files on one cluster.
//
// Errors carry a plugins.Kind: transient for connection trouble (the caller retries
// later), KindAuth for refused credentials or host keys, KindNotFound for a missing
// remote path. A command that runs and exits non-zero is NOT an error: Run returns
// its exit code. Every method honours ctx's deadline. Implementations are safe for
// concurrent use and limit their own concurrency (at most 8 channels per SSH connection).
type Transport interface {
	// Run runs cmd with /bin/sh -c semantics. cmd must already be quoted (see shellquote).
	Run(ctx context.Context, cmd string) (RunResult, error)
	// PutDir copies every regular file below localDir to remoteDir, creating folders
	// (remoteDir's parents too). Existing files are overwritten.
	PutDir(ctx context.Context, localDir, remoteDir string) error
	// WriteFile writes data to a remote file atomically (temp file + rename), creating parents.
	WriteFile(ctx context.Context, remotePath string, data []byte, perm fs.FileMode) error
	// List returns every regular file below remoteDir, recursively, and the
	// symbolic links and special files it meets (Mode says which; links are not
	// followed, so Fetch can tell the user it skipped them). remoteDir itself may
	// be a link to a folder.
	List(ctx context.Context, remoteDir string) ([]RemoteFile, error)
	// Get copies the regular file rel (slash-separated, below remoteDir) to
	// localPath through ReceiveFile: LocalFileMode, parents LocalDirMode, written
	// to a temp name and renamed, so a crash leaves no half file under the final
	// name. It never follows a symbolic link at or below remoteDir: a link or a
	// special file there is an error wrapping ErrNotRegular. With limit >= 0 a
	// file of more than limit bytes is an error wrapping ErrTooLarge; NoLimit
	// (negative) copies whatever there is. It returns the
	// bytes copied.
	Get(ctx context.Context, remoteDir, rel, localPath string, limit int64) (int64, error)
	// RemoveAll removes remoteDir and everything below it; a missing folder is not an error.
	RemoveAll(ctx context.Context, remoteDir string) error
	// Close releases connections.
	Close() error
}
