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

// setCredential makes c run as the account (hpcbot is root).
func setCredential(c *exec.Cmd, a *account) {
	c.SysProcAttr.Credential = &syscall.Credential{Uid: a.uid, Gid: a.gid, Groups: a.groups}
}

// setSudoGroup starts sudo in a new process group; a cancelled context sends
// it SIGTERM, which sudo relays to the command (SIGKILL could not be relayed;
// WaitDelay kills sudo itself if the command ignores SIGTERM).
func setSudoGroup(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error {
		return syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
	}
}

// runAsSupported: run_as works here (setuid credentials, sudo).
const runAsSupported = true
