package qc

import (
	"bytes"
	"testing"
)

// FuzzDigest: no input makes Parse panic, return a read error, or give a
// Digest that breaks its promises (checkSane: valid short texts, a plain
// geometry file name, a final energy only for a normal termination,
// numbers that are what their text says).
func FuzzDigest(f *testing.F) {
	for _, fx := range fixtures {
		out := readFixture(f, fx.files...)
		// the head and the tail of each output (the whole of the big ones
		// makes the fuzzer slow)
		f.Add(out[:min(len(out), 4096)], uint8(0))
		f.Add(out[max(0, len(out)-4096):], uint8(1+len(fx.name)%3))
	}
	f.Add([]byte("                                 * O   R   C   A *\nFINAL SINGLE POINT ENERGY      -1.5\n****ORCA TERMINATED NORMALLY****\n"), uint8(0))
	f.Add([]byte(" Entering Gaussian System\n -----\n #p opt\n -----\n Step number   1 out of\n Frequencies --  -1.0 2.0\n Normal termination of Gaussian\n"), uint8(0))
	f.Add([]byte("x T B\n[ERROR] Program stopped due to fatal error\n-1- \xff\x00\n####\n| TOTAL ENERGY -1.0 Eh |\n"), uint8(3))
	progs := []Program{Unknown, ORCA, Gaussian, XTB}
	f.Fuzz(func(t *testing.T, out []byte, prog uint8) {
		d, err := Parse(bytes.NewReader(out), progs[int(prog)%len(progs)])
		if err != nil {
			t.Fatal(err)
		}
		checkSane(t, d)
	})
}
