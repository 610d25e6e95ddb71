//go:build !unix

package cluster

import "os/exec"

func setProcessGroup(*exec.Cmd) {}

const openNoBlockNoFollow = 0

func setCredential(*exec.Cmd, *account) {}

func setSudoGroup(*exec.Cmd) {}

const runAsSupported = false
