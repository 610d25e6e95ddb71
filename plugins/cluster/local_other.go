//go:build !unix

package cluster

import "os/exec"

func setProcessGroup(*exec.Cmd) {}

const openNoBlockNoFollow = 0
