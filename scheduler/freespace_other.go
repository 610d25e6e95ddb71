//go:build !unix

package scheduler

import (
	"errors"
	"syscall"
)

// freeSpace cannot measure free space here: fetching has no total cap.
func freeSpace(string) (int64, error) { return 0, errors.New("free space unknown on this system") }

// diskFull reports whether err says a local disk is full.
func diskFull(err error) bool { return errors.Is(err, syscall.ENOSPC) }
