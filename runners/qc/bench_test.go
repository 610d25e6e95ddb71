package qc

import (
	"bytes"
	"runtime"
	"sync"
	"testing"
	"time"
)

// BenchmarkParseLargest: the largest fixture (ORCA dvb_gopt.out, 460 kB).
func BenchmarkParseLargest(b *testing.B) {
	out := readFixture(b, "orca6.0/dvb_gopt.out")
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	for b.Loop() {
		d, err := Parse(bytes.NewReader(out), Unknown)
		if err != nil || d.FinalEnergy == nil {
			b.Fatal(err, d)
		}
	}
}

// BenchmarkParse1GB: a 1 GB ORCA output made on the fly (a real
// optimization cycle repeated: SCF iterations, energies, gradients,
// convergence tables), never held whole. Reports the peak heap in use
// while it is read (sampled every 10 ms) and the bytes allocated per run.
// Run with -benchtime=1x.
func BenchmarkParse1GB(b *testing.B) {
	gopt := readFixture(b, "orca6.0/dvb_gopt.out")
	i := bytes.Index(gopt, []byte("GEOMETRY OPTIMIZATION CYCLE   2"))
	j := bytes.Index(gopt, []byte("GEOMETRY OPTIMIZATION CYCLE   3"))
	body := gopt[bytes.LastIndexByte(gopt[:i], '\n')+1 : bytes.LastIndexByte(gopt[:j], '\n')+1]
	const size = 1 << 30
	b.SetBytes(size)
	var peak uint64
	for b.Loop() {
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			var m runtime.MemStats
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
					runtime.ReadMemStats(&m)
					peak = max(peak, m.HeapInuse)
				}
			}
		}()
		d, err := Parse(newSynthetic(b, size, body), Unknown)
		close(done)
		wg.Wait()
		if err != nil || d.Termination != Normal || d.Opt == nil {
			b.Fatal(err, d)
		}
		b.ReportMetric(float64(base.HeapInuse)/(1<<20), "base-heap-MiB")
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}
