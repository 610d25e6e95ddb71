package scheduler

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
)

func TestRoute(t *testing.T) {
	orca := []plugins.RunnerRule{{Runner: "command", Program: "orca", AllowedArgs: []string{"{}", "-v"}, Associations: []string{".inp"}}}
	b := newBed(t, func(b *bed) {
		b.addLocal("a", 1)
		b.addLocalRules("b", 1, orca)
	})
	s, err := New(b.cfg, b.st, b.scheds, b.runners, b.notes, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file, caption string
		cluster       string
		argv          []string
		refusal       string
	}{
		{"x.sh", "", "a", []string{"sh", "./x.sh"}, ""},
		{"x.inp", "", "b", []string{"orca", "./x.inp"}, ""},
		{"x.inp", "orca x.inp -v", "b", []string{"orca", "./x.inp", "-v"}, ""},
		{"x.inp", "gaussian x.inp", "", nil, plugins.RefuseUnknownProgram},
		{"x.inp", "orca x.inp --evil", "", nil, plugins.RefuseArgNotAllowed},
		{"x.xyz", "", "", nil, plugins.RefuseNoProgram},
		{"x.sh", "sh 'x.sh", "", nil, plugins.RefuseBadCaption},
	}
	for _, tt := range tests {
		r, err := s.Route(context.Background(), tt.file, tt.caption)
		var ref *plugins.Refusal
		switch {
		case tt.refusal != "":
			if !errors.As(err, &ref) || ref.Code != tt.refusal {
				t.Errorf("Route(%q, %q) = %+v, %v; want refusal %s", tt.file, tt.caption, r, err, tt.refusal)
			}
		case err != nil || r.Cluster != tt.cluster || !slices.Equal(r.Plan.Argv, tt.argv) || r.Runner != "command":
			t.Errorf("Route(%q, %q) = %+v, %v; want %s %v", tt.file, tt.caption, r, err, tt.cluster, tt.argv)
		}
	}
	info := s.Clusters()
	if len(info) != 2 || info[0].Label != "a" || info[1].Programs[0].Program != "orca" || !info[0].Usable {
		t.Fatalf("clusters %+v", info)
	}
}

func TestFolderName(t *testing.T) {
	at := time.Unix(1732640000, 0)
	for _, tt := range []struct{ in, want string }{
		{"h2o.inp", "1732640000_7_901_h2o"},
		{"my file.inp", "1732640000_7_901_my_file"},
		{"a.b.c.inp", "1732640000_7_901_a.b.c"},
		{".inp", "1732640000_7_901_input"},
		{"../../etc/passwd", "1732640000_7_901_passwd"},
		{"вода.inp", "1732640000_7_901_____"}, // one _ per letter
	} {
		if got := FolderName(7, 901, tt.in, at); got != tt.want {
			t.Errorf("FolderName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	// Two files of the same name from one user in the same second are two
	// submissions, two folders; one submission handled again, one folder.
	if a, b := FolderName(7, 901, "h2o.inp", at), FolderName(7, 902, "h2o.inp", at); a == b {
		t.Errorf("two submissions share the folder %q", a)
	}
	if a, b := FolderName(7, 901, "h2o.inp", at), FolderName(7, 901, "h2o.inp", at.Add(500*time.Millisecond)); a != b {
		t.Errorf("one submission, two folders: %q, %q", a, b)
	}
}

// Whatever the user calls the file, the folder is one safe path element that
// every plugin accepts.
func FuzzFolderName(f *testing.F) {
	for _, s := range []string{"h2o.inp", "", ".", "..", "a/b", "-rf.inp", "x\x00y", "$(reboot).sh", strings.Repeat("a", 500)} {
		f.Add(s, uint64(7), int64(901))
	}
	f.Add("h2o.inp", uint64(1<<64-1), int64(-1<<63))
	f.Fuzz(func(t *testing.T, in string, user uint64, submission int64) {
		name := FolderName(user, submission, in, time.Unix(1732640000, 0))
		if err := cluster.CheckFolder(name); err != nil {
			t.Fatalf("FolderName(%q) = %q: %v", in, name, err)
		}
	})
}
