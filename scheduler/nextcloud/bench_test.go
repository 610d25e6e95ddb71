package nextcloud

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"hpcbot/scheduler/nextcloud/nctest"
)

// BenchmarkUpload64MiB compares one PUT with chunked upload v2 (10 MiB chunks and
// the assembling MOVE) for a 64 MiB file against the fake server on loopback, so
// it measures the client's and the protocol's overhead, not a network.
func BenchmarkUpload64MiB(b *testing.B) {
	const size = 64 * mib
	local := filepath.Join(b.TempDir(), "big.chk")
	writeFile(b, local, size, 1)
	for _, bc := range []struct {
		name      string
		threshold int64
	}{
		{"single", 1 << 62},
		{"chunked", DefaultChunkThreshold},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv := nctest.New(b)
			if err := os.MkdirAll(srv.Path("hpc_results"), 0o755); err != nil {
				b.Fatal(err)
			}
			c := newClient(b, srv, func(o *Options) { o.ChunkThreshold = bc.threshold })
			b.SetBytes(size)
			for b.Loop() {
				var p Progress
				if err := c.UploadFile(context.Background(), local, "big.chk", &p, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
