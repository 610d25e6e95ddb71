//go:build unix

package cluster

import (
	"os/exec"
	"syscall"
)

// setProcessGroup starts the shell in a new process group and makes a cancelled
// context kill that whole group, not only the shell.
func setProcessGroup(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error {
		return syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
	}
}

// openNoBlockNoFollow: a fifo does not block the open, a link is not followed.
const openNoBlockNoFollow = syscall.O_NONBLOCK | syscall.O_NOFOLLOW
