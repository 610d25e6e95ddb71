package slurm

import (
	"bytes"
	"strconv"
	"testing"

	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
)

// squeue10k is 10,000 squeue lines made from the real capture's lines, with ids 1..10000.
func squeue10k(b *testing.B) ([]plugins.JobRef, cluster.RunResult) {
	b.Helper()
	real := readCapture(b, "squeue_mixed").R.Stdout
	lines := bytes.Split(bytes.TrimSpace(real), []byte("\n"))
	var out bytes.Buffer
	jobs := make([]plugins.JobRef, 0, 10000)
	for i := 1; i <= 10000; i++ {
		l := lines[i%len(lines)]
		_, rest, _ := bytes.Cut(l, []byte(sep))
		id := strconv.Itoa(i)
		out.WriteString(id + sep)
		out.Write(rest)
		out.WriteByte('\n')
		jobs = append(jobs, plugins.JobRef{JobID: id, Folder: "f" + id})
	}
	return jobs, cluster.RunResult{Stdout: out.Bytes()}
}

func BenchmarkParsePoll10k(b *testing.B) {
	jobs, r := squeue10k(b)
	d := NewDialect()
	b.ReportAllocs()
	b.SetBytes(int64(len(r.Stdout)))
	for b.Loop() {
		m, err := d.ParsePoll(r, jobs)
		if err != nil || len(m) != 10000 {
			b.Fatalf("%d statuses, %v", len(m), err)
		}
	}
}

func BenchmarkPollCommand10k(b *testing.B) {
	jobs, _ := squeue10k(b)
	d := NewDialect()
	b.ReportAllocs()
	for b.Loop() {
		if cmd := d.PollCommand(jobs, nil); len(cmd) < 10000 {
			b.Fatal("short command")
		}
	}
}

func BenchmarkFinishedCommand10k(b *testing.B) {
	jobs, _ := squeue10k(b)
	d := NewDialect()
	b.ReportAllocs()
	for b.Loop() {
		if cmd := d.FinishedCommand(jobs); len(cmd) < 10000 {
			b.Fatal("short command")
		}
	}
}
