package pbs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
)

// jsonPoll10k builds a `qstat -x -f -F json` document of n jobs from the
// recorded 19.0.0 record (the benchmark's input is generated, its record is real).
func jsonPoll10k(b *testing.B, n int) ([]byte, []plugins.JobRef) {
	var src struct {
		Jobs map[string]json.RawMessage `json:"Jobs"`
	}
	if err := json.Unmarshal(readTestdata(b, "pbspro/qstat-xf-json-19.0.0-running.json"), &src); err != nil {
		b.Fatal(err)
	}
	var tmpl json.RawMessage
	for _, v := range src.Jobs {
		tmpl = v
	}
	var buf bytes.Buffer
	buf.WriteString("{\n    \"timestamp\":1664911414,\n    \"pbs_version\":\"19.0.0\",\n    \"pbs_server\":\"pbs01\",\n    \"Jobs\":{\n")
	jobs := make([]plugins.JobRef, n)
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("%d.pbs01.cluster.example.org", 1000000+i)
		jobs[i] = plugins.JobRef{CalcID: uint64(i + 1), JobID: id}
		fmt.Fprintf(&buf, "        %q:", id)
		buf.Write(tmpl)
		if i < n-1 {
			buf.WriteByte(',')
		}
		buf.WriteByte('\n')
	}
	buf.WriteString("    }\n}\n")
	return buf.Bytes(), jobs
}

// BenchmarkParsePollJSON10k: ParsePoll on one qstat JSON answer for 10,000 jobs.
func BenchmarkParsePollJSON10k(b *testing.B) {
	out, jobs := jsonPoll10k(b, 10000)
	d := mustNew(b, "pro")
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := d.ParsePoll(cluster.RunResult{Stdout: out}, jobs)
		if err != nil || len(got) != len(jobs) {
			b.Fatalf("%d statuses, %v", len(got), err)
		}
	}
}

// BenchmarkParsePollJSONScanner10k: the same input through the line scanner,
// the path taken when qstat's JSON is invalid.
func BenchmarkParsePollJSONScanner10k(b *testing.B) {
	out, _ := jsonPoll10k(b, 10000)
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		recs, ok := scanJSONLines(out)
		if !ok || len(recs) != 10000 {
			b.Fatalf("%d records", len(recs))
		}
	}
}

// BenchmarkParsePollText10k: ParsePoll on a Torque qstat -f answer for 10,000
// jobs generated from the recorded ICHEC record of job 546437.
func BenchmarkParsePollText10k(b *testing.B) {
	recs := bytes.Split(readTestdata(b, "torque/qstat-f-aiida-ichec-2015.txt"), []byte("\n\nJob Id: "))
	var tmpl []byte
	for _, r := range recs {
		if bytes.HasPrefix(r, []byte("546437\n")) {
			tmpl = r[len("546437\n"):]
		}
	}
	if tmpl == nil {
		b.Fatal("template record not found")
	}
	var buf bytes.Buffer
	jobs := make([]plugins.JobRef, 10000)
	for i := range jobs {
		id := fmt.Sprintf("%d.torque01", 2000000+i)
		jobs[i] = plugins.JobRef{JobID: id}
		fmt.Fprintf(&buf, "Job Id: %s\n", id)
		buf.Write(tmpl)
		buf.WriteString("\n\n")
	}
	out := buf.Bytes()
	d := mustNew(b, "torque")
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := d.ParsePoll(cluster.RunResult{Stdout: out}, jobs)
		if err != nil || len(got) != len(jobs) {
			b.Fatalf("%d statuses, %v", len(got), err)
		}
	}
}
