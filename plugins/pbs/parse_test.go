package pbs

import (
	"strings"
	"testing"
)

func recordsByID(recs []record) map[string]record {
	m := make(map[string]record, len(recs))
	for _, r := range recs {
		m[r.ID] = r
	}
	return m
}

func TestParseTextFixtures(t *testing.T) {
	ichec := recordsByID(parseText(readTestdata(t, "torque/qstat-f-aiida-ichec-2015.txt")))
	if len(ichec) != 10 {
		t.Fatalf("ichec: %d jobs, want 10", len(ichec))
	}
	r := ichec["543984"]
	if r.State != "C" || r.Exit != "271" || r.UsedWall != "35:47:31" || r.ReqWall != "71:59:59" ||
		r.Start != "Wed Jun 17 10:48:24 2015" || r.Modified != "Thu Jun 18 22:36:12 2015" {
		t.Errorf("543984 = %+v", r)
	}
	// The attribute after the multi-line sched_hint is still found.
	if ichec["546437"].Exit != "271" || ichec["549159"].State != "H" || ichec["547637"].State != "Q" {
		t.Errorf("ichec states: %+v %+v %+v", ichec["546437"], ichec["549159"], ichec["547637"])
	}

	epfl := recordsByID(parseText(readTestdata(t, "pbspro/qstat-f-aiida-epfl-2013.txt")))
	if len(epfl) != 6 {
		t.Fatalf("epfl: %d jobs, want 6", len(epfl))
	}
	// A value folded with a tab is joined without the tab.
	if got, want := epfl["69301.mycluster"].Comment, "Job run at Sat Apr 20 at 01:36 on (b141:ncpus=16)+(b142:ncpus=16)+(b143:ncpus=16)+(b144:ncpus=16)"; got != want {
		t.Errorf("folded comment = %q, want %q", got, want)
	}
	// A value followed by an empty line is trimmed.
	if got, want := epfl["74164.mycluster"].Comment, "Job run at Mon Apr 22 at 07:17 on (b270:ncpus=16)+(b275:ncpus=16)"; got != want {
		t.Errorf("comment before blank line = %q, want %q", got, want)
	}
	if got := epfl["69302.mycluster"]; got.State != "H" || got.Substate != "22" || got.ReqWall != "72:00:00" {
		t.Errorf("69302 = %+v", got)
	}

	ml := parseText(readTestdata(t, "pbspro/qstat-f-aiida-multiline-func.txt"))
	if len(ml) != 1 || ml[0].State != "Q" || ml[0].Substate != "10" || ml[0].ReqWall != "10:00:00" || ml[0].Modified != "Wed Jun 17 04:50:46 2026" {
		t.Errorf("multiline func = %+v", ml)
	}
	k := parseText(readTestdata(t, "pbspro/qstat-xf-katana-finished.txt"))
	if len(k) != 1 || k[0].Exit != "0" || k[0].End != "Thu Aug 10 16:11:09 2023" || k[0].Substate != "92" ||
		k[0].Comment != "Job run at Thu Aug 10 at 16:10 on (k242:ncpus=1:mem=1048576kb:ngpus=0) and finished" {
		t.Errorf("katana = %+v", k)
	}
}

func TestParseTextOddInput(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		n        int
	}{
		{"empty", "", 0},
		{"banner only", "qstat: warning\n\n", 0},
		{"banner then job", "Warning: something\nJob Id: 1.s\n    job_state = R\n", 1},
		{"tab before any attribute", "Job Id: 1.s\n\tstray\n    job_state = Q\n", 1},
		{"crlf", "Job Id: 1.s\r\n    job_state = R\r\n", 1},
		{"no trailing newline", "Job Id: 1.s\n    job_state = E", 1},
	} {
		recs := parseText([]byte(tc.in))
		if len(recs) != tc.n {
			t.Errorf("%s: %d records, want %d", tc.name, len(recs), tc.n)
		}
		for _, r := range recs {
			if r.ID != "1.s" || r.State == "" {
				t.Errorf("%s: %+v", tc.name, r)
			}
		}
	}
}

func TestParseJSONFixtures(t *testing.T) {
	running := readTestdata(t, "pbspro/qstat-xf-json-19.0.0-running.json")
	strict, err := decodeJSON(running)
	if err != nil || len(strict) != 1 {
		t.Fatalf("decode: %v, %v", strict, err)
	}
	scanned, ok := scanJSONLines(running)
	if !ok || len(scanned) != 1 || scanned[0] != strict[0] {
		t.Errorf("the line scanner disagrees with the decoder:\n%+v\n%+v", scanned, strict)
	}
	want := record{ID: "12860476.meta-pbs.metacentrum.cz", State: "R", Substate: "41",
		Comment: "Job run at Tue Oct 04 at 21:23 on (charon24:ncpus=2:mem=4194304kb)+(charon21:ncpus=2:mem=4194304kb)",
		Start:   "Tue Oct  4 21:23:33 2022", Modified: "Tue Oct  4 21:23:33 2022", ReqWall: "00:01:00", ExecHost: "charon24/0*2+charon21/0*2"}
	if strict[0] != want {
		t.Errorf("record = %+v\nwant     %+v", strict[0], want)
	}

	// Both readers agree on every recorded and synthetic valid document.
	for _, f := range []string{"pbspro/qstat-f-json-2022.1.1-queued-held.json", "pbspro/synthetic-qstat-xf-json-finished.json"} {
		doc := readTestdata(t, f)
		a, err := decodeJSON(doc)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		b, ok := scanJSONLines(doc)
		if !ok || len(a) != len(b) {
			t.Fatalf("%s: decoder %d jobs, scanner %d", f, len(a), len(b))
		}
		am, bm := recordsByID(a), recordsByID(b)
		for id, r := range am {
			if bm[id] != r {
				t.Errorf("%s %s:\ndecoder %+v\nscanner %+v", f, id, r, bm[id])
			}
		}
	}
	held := recordsByID(mustParseJSON(t, "pbspro/qstat-f-json-2022.1.1-queued-held.json"))["412020.polaris-pbs-01.hsn.cm.polaris.alcf.anl.gov"]
	if held.State != "H" || held.Exit != "-3" || held.End != "Fri Feb 10 17:02:59 2023" || held.UsedWall != "" || held.ReqWall != "08:00:00" {
		t.Errorf("held = %+v", held)
	}

	// openpbs#1255: strict decoding fails, the scanner recovers the job.
	bad := readTestdata(t, "pbspro/synthetic-qstat-xf-json-issue1255.json")
	if _, err := decodeJSON(bad); err == nil {
		t.Fatal("the #1255 document should not decode")
	}
	recs, err := parseJSON(bad)
	if err != nil || len(recs) != 1 || recs[0] != want {
		t.Errorf("#1255: %+v, %v", recs, err)
	}

	// Two documents back to back.
	two := append(append([]byte{}, running...), readTestdata(t, "pbspro/qstat-f-json-2022.1.1-queued-held.json")...)
	if recs, err := parseJSON(two); err != nil || len(recs) != 3 {
		t.Errorf("two documents: %d records, %v", len(recs), err)
	}
	if recs, err := parseJSON([]byte(" \n")); err != nil || len(recs) != 0 {
		t.Errorf("blank: %v, %v", recs, err)
	}
}

func mustParseJSON(t *testing.T, name string) []record {
	t.Helper()
	recs, err := parseJSON(readTestdata(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestRawString(t *testing.T) {
	for in, want := range map[string]string{
		`"R"`: "R", `41`: "41", `-3`: "-3", `null`: "", ``: "", `"a\"b"`: `a"b`, `{"x":1}`: "", `true`: "true", `"\/x"`: "/x",
	} {
		if got := rawString([]byte(in)); got != want {
			t.Errorf("rawString(%s) = %q, want %q", in, got, want)
		}
	}
	if got := scanValue(`"it\'s"`); !strings.Contains(got, "it") {
		t.Errorf("scanValue lenient = %q", got)
	}
}
