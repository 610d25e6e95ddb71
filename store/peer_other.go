//go:build !linux

package store

import "net"

// samePeerUser: without SO_PEERCRED the socket's 0600 mode is the only guard.
func samePeerUser(net.Conn) bool { return true }
