package qcrun

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseMemory reads a max_memory value, "64GB", "64G", "8000MB", "1TB"
// (binary units: 1 GB = 1024 MB, as Slurm counts), and returns MiB.
func ParseMemory(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	num := strings.TrimRight(t, "BKMGT ")
	unit := strings.TrimSpace(t[len(num):])
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a size: write a whole number and a unit, like \"64GB\" or \"8000MB\"", s)
	}
	var mul int64
	switch unit {
	case "M", "MB":
		mul = 1
	case "G", "GB":
		mul = 1 << 10
	case "T", "TB":
		mul = 1 << 20
	default:
		return 0, fmt.Errorf("%q has no unit hpcbot knows: use MB, GB or TB, like \"64GB\"", s)
	}
	if n > math.MaxInt64/mul {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * mul, nil
}

// gaussianMemoryMB reads the value of a Gaussian %mem line ("16GB",
// "2000MW", "100000000": words) and returns MiB, rounded up.
func gaussianMemoryMB(v string) (int64, bool) {
	t := strings.ToUpper(strings.TrimSpace(v))
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	// bytes per unit; Gaussian's words are 8 bytes and a bare number is words.
	var per float64
	switch strings.TrimSpace(t[i:]) {
	case "", "W":
		per = 8
	case "KB":
		per = 1 << 10
	case "MB":
		per = 1 << 20
	case "GB":
		per = 1 << 30
	case "TB":
		per = 1 << 40
	case "KW":
		per = 8 << 10
	case "MW":
		per = 8 << 20
	case "GW":
		per = 8 << 30
	case "TW":
		per = 8 << 40
	default:
		return 0, false
	}
	mb := math.Ceil(float64(n) * per / (1 << 20))
	if mb > math.MaxInt64/2 {
		return 0, false
	}
	return int64(mb), true
}
