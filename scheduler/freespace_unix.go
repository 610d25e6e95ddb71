//go:build unix

package scheduler

import (
	"errors"
	"fmt"
	"syscall"
)

// freeSpace is the space an unprivileged process may still write below dir.
func freeSpace(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// diskFull reports whether err says a local disk is full (or a quota reached).
func diskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
