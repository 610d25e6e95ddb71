// Package testbed gives integration tests the real services that scripts/testbed.sh
// starts on 127.0.0.1: an OpenSSH server with a test user and key, and a single-node
// Slurm (with slurmdbd accounting when started with --accounting).
//
// The script exports its services as environment variables:
//
//	sudo scripts/testbed.sh start            # once; idempotent
//	eval "$(scripts/testbed.sh env)"
//	go test ./plugins/...
//
// A test asks for what it needs and gets the coordinates back:
//
//	env := testbed.Slurm(t)       // sshd + Slurm, or skip
//	client := env.Dial(t)         // *ssh.Client as hpctest, host key checked
//
// When a service is absent the test is skipped with a hint how to start the bed, except
// under CI=true, where an absent service fails the test: CI must never go green by
// skipping everything.
//
// Tests that take a login node down use their own sshd ([OwnSSHD]) and stop and start
// that one, so that the packages testing concurrently against the shared sshd keep it.
// [SSHDStop] and [SSHDStart] act on the shared sshd and are meant for a test that runs
// alone.
package testbed
