package sshc

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh/knownhosts"

	"hpcbot/plugins/cluster"
)

// The benchmarks compare this client with OpenSSH's own tools on the same
// sshd, key and known_hosts, side by side in one run:
//
//	go test -run '^$' -bench . -benchtime 5x ./plugins/sshc/

const benchSize = 64 << 20

// benchSetup makes a client, a local folder holding one 64 MiB file and a
// remote folder, removed at the end.
func benchSetup(b *testing.B) (bd bed, c *Client, local, remote string) {
	bd = sshBed(b)
	c = newClient(b, bd.conn(), Options{})
	local = b.TempDir()
	writeTree(b, local, map[string]int{"data.bin": benchSize})
	remote = "sshc-bench-" + randomSuffix()
	b.Cleanup(func() { _ = c.RemoveAll(context.Background(), remote) })
	ctx := ctxFor(b, time.Minute)
	if err := c.PutDir(ctx, local, remote); err != nil { // also warms the connection
		b.Fatal(err)
	}
	return bd, c, local, remote
}

// sshArgs are the options that make ssh and scp authenticate the way the client does.
func (bd bed) sshArgs() []string {
	return []string{"-F", "/dev/null", "-i", bd.KeyPath, "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
		"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + bd.KnownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"}
}

func (bd bed) scp(b *testing.B, from, to string) {
	args := append(bd.sshArgs(), "-q", "-P", strconv.Itoa(bd.Port), from, to)
	if out, err := exec.Command("scp", args...).CombinedOutput(); err != nil {
		b.Fatalf("scp %s %s: %v\n%s", from, to, err, out)
	}
}

func BenchmarkUpload64MiB(b *testing.B) {
	_, c, local, remote := benchSetup(b)
	ctx := ctxFor(b, 10*time.Minute)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		if err := c.PutDir(ctx, local, remote); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUpload64MiBScp(b *testing.B) {
	bd, _, local, remote := benchSetup(b)
	dst := bd.User + "@" + bd.Host + ":" + remote + "/data.bin"
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		bd.scp(b, filepath.Join(local, "data.bin"), dst)
	}
}

func BenchmarkDownload64MiB(b *testing.B) {
	_, c, _, remote := benchSetup(b)
	ctx := ctxFor(b, 10*time.Minute)
	out := filepath.Join(b.TempDir(), "data.bin")
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Get(ctx, remote, "data.bin", out, cluster.NoLimit); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDownload64MiBScp(b *testing.B) {
	bd, _, _, remote := benchSetup(b)
	src := bd.User + "@" + bd.Host + ":" + remote + "/data.bin"
	out := filepath.Join(b.TempDir(), "data.bin")
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		bd.scp(b, src, out)
	}
	if st, err := os.Stat(out); err != nil || st.Size() != benchSize {
		b.Fatalf("scp fetched %v, %v", st, err)
	}
}

// BenchmarkRunWarm is one command on the open connection; BenchmarkRunSSH is
// the same command through a fresh `ssh` process (a new connection each time).
func BenchmarkRunWarm(b *testing.B) {
	bd := sshBed(b)
	c := newClient(b, bd.conn(), Options{})
	ctx := ctxFor(b, 10*time.Minute)
	if _, err := c.Run(ctx, "true"); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if r, err := c.Run(ctx, "echo ok"); err != nil || strings.TrimSpace(string(r.Stdout)) != "ok" {
			b.Fatalf("%q %v", r.Stdout, err)
		}
	}
}

func BenchmarkRunSSH(b *testing.B) {
	bd := sshBed(b)
	args := append(bd.sshArgs(), "-p", strconv.Itoa(bd.Port), bd.User+"@"+bd.Host, "echo ok")
	for b.Loop() {
		if out, err := exec.Command("ssh", args...).Output(); err != nil || strings.TrimSpace(string(out)) != "ok" {
			b.Fatalf("%q %v", out, err)
		}
	}
}

// BenchmarkUploadRTT10ms shows why transfers are pipelined: through a proxy
// that adds 5 ms each way (a login node in another city), 16 MiB pipelined,
// sequential (one 32 KB write per round trip: io.Copy into an sftp.File), and scp.
func BenchmarkUploadRTT10ms(b *testing.B) {
	bd := sshBed(b)
	p := startProxy(b, net.JoinHostPort(bd.Host, strconv.Itoa(bd.Port)))
	p.delay = 5 * time.Millisecond
	const size = 16 << 20
	local := b.TempDir()
	writeTree(b, local, map[string]int{"data.bin": size})
	c := newClient(b, bd.pinned(b, p.port()), Options{})
	remote := "sshc-bench-rtt-" + randomSuffix()
	b.Cleanup(func() { _ = c.RemoveAll(context.Background(), remote) })
	ctx := ctxFor(b, 30*time.Minute)
	if err := c.PutDir(ctx, local, remote); err != nil {
		b.Fatal(err)
	}
	b.Run("pipelined", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if err := c.PutDir(ctx, local, remote); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sequential", func(b *testing.B) {
		_, s, err := c.sftpFor(ctx)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(size)
		for b.Loop() {
			uploadSequential(b, s, filepath.Join(local, "data.bin"), remote+"/data.bin")
		}
	})
	b.Run("scp", func(b *testing.B) {
		args := append(bd.sshArgs(), "-o", "HostKeyAlias="+knownhosts.Normalize(net.JoinHostPort(bd.Host, strconv.Itoa(bd.Port))),
			"-q", "-P", strconv.Itoa(p.port()), filepath.Join(local, "data.bin"), bd.User+"@"+bd.Host+":"+remote+"/data.bin")
		b.SetBytes(size)
		for b.Loop() {
			if out, err := exec.Command("scp", args...).CombinedOutput(); err != nil {
				b.Fatalf("scp: %v\n%s", err, out)
			}
		}
	})
}

// uploadSequential writes local to remote one 32 KB packet per round trip.
func uploadSequential(b *testing.B, s *sftpSession, local, remote string) {
	f, err := os.Open(local)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rf, err := s.cl.Create(remote)
	if err != nil {
		b.Fatal(err)
	}
	defer rf.Close()
	buf := make([]byte, 32<<10)
	for {
		n, rerr := f.Read(buf)
		if n > 0 {
			if _, err := rf.Write(buf[:n]); err != nil {
				b.Fatal(err)
			}
		}
		if rerr != nil {
			return
		}
	}
}
