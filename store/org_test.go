package store

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestImportOrganizationsCSV(t *testing.T) {
	tests := []struct {
		name    string
		stored  []Organization // before the import
		csv     string
		wantN   int
		wantErr []string // substrings; nil = success
	}{
		{
			name:  "parent defined later",
			csv:   "label,name,alias,parent\nchem,Chemistry Dept,CD,uni\nuni,Some University,SU,\n",
			wantN: 2,
		},
		{
			name:   "parent already stored",
			stored: []Organization{{Label: "uni", Name: "Uni"}},
			csv:    "label,name,alias,parent\nchem,Chemistry,,uni\n",
			wantN:  1,
		},
		{
			name:  "BOM, spaces, upper-case header, quoted comma",
			csv:   "\ufeffLabel, Name ,alias,PARENT\nx, \"Inst, of X\",,\n",
			wantN: 1,
		},
		{
			name:    "unknown parent",
			csv:     "label,name,alias,parent\na,A,,zz\nb,B,,\n",
			wantErr: []string{`line 2: unknown parent "zz"`},
		},
		{
			name:    "cycle",
			csv:     "label,name,alias,parent\na,A,,b\nb,B,,c\nc,C,,a\nd,D,,\n",
			wantErr: []string{"line 2: parent cycle a -> b -> c -> a", "line 3: parent cycle", "line 4: parent cycle"},
		},
		{
			name:    "self parent",
			csv:     "label,name,alias,parent\na,A,,a\n",
			wantErr: []string{"line 2: parent cycle a -> a"},
		},
		{
			name:    "cycle through a stored organization",
			stored:  []Organization{{Label: "a", Name: "A"}, {Label: "b", Name: "B", Parent: "a"}},
			csv:     "label,name,alias,parent\na,A,,b\n",
			wantErr: []string{"line 2: parent cycle a -> b -> a"},
		},
		{
			name:    "bad field count and empty fields, all reported",
			csv:     "label,name,alias,parent\na,A,,\nb,B\n,C,,\nd,,,\ne,E,,,\n",
			wantErr: []string{"line 3: 2 fields", "line 4: empty label", "line 5: empty name", "line 6: 5 fields"},
		},
		{
			name:    "duplicate label",
			csv:     "label,name,alias,parent\na,A,,\nb,B,,\na,A2,,\n",
			wantErr: []string{`line 4: label "a" already defined at organizations csv line 2`},
		},
		{
			name:    "wrong header",
			csv:     "label,name,parent\na,A,\n",
			wantErr: []string{"line 1: header"},
		},
		{
			name:    "empty file",
			csv:     "",
			wantErr: []string{"empty"},
		},
		{
			name:    "broken quoting",
			csv:     "label,name,alias,parent\na,\"A,,\n",
			wantErr: []string{"organizations csv"},
		},
		{
			name:    "multi-line quoted field keeps line numbers right",
			csv:     "label,name,alias,parent\na,\"A\nB\",,\nb,B,,nope\n",
			wantErr: []string{`line 4: unknown parent "nope"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTest(t)
			if len(tt.stored) > 0 {
				if err := s.UpsertOrganizations(tt.stored); err != nil {
					t.Fatal(err)
				}
			}
			before, _ := s.Organizations()
			n, err := s.ImportOrganizationsCSV(strings.NewReader(tt.csv))
			if tt.wantErr == nil {
				if err != nil || n != tt.wantN {
					t.Fatalf("import = %d, %v; want %d, nil", n, err, tt.wantN)
				}
				return
			}
			if err == nil {
				t.Fatalf("import = %d, nil; want errors %q", n, tt.wantErr)
			}
			// Every problem, in line order.
			at := 0
			for _, w := range tt.wantErr {
				i := strings.Index(err.Error()[at:], w)
				if i < 0 {
					t.Errorf("error %q\ndoes not contain %q after position %d", err, w, at)
					continue
				}
				at += i + len(w)
			}
			if !errors.Is(err, ErrInvalid) && tt.name != "broken quoting" {
				t.Errorf("error %v does not match ErrInvalid", err)
			}
			after, _ := s.Organizations()
			if n != 0 || fmt.Sprint(before) != fmt.Sprint(after) {
				t.Errorf("a bad file wrote something: n=%d, before %v, after %v", n, before, after)
			}
		})
	}
}

func TestImportOrganizationsUpserts(t *testing.T) {
	s, _ := openTest(t)
	if _, err := s.ImportOrganizationsCSV(strings.NewReader("label,name,alias,parent\nuni,University,U,\nchem,Chemistry,,uni\n")); err != nil {
		t.Fatal(err)
	}
	n, err := s.ImportOrganizationsCSV(strings.NewReader("label,name,alias,parent\nchem,Chemistry Institute,CI,\nphys,Physics,,uni\n"))
	if err != nil || n != 2 {
		t.Fatalf("re-import = %d, %v", n, err)
	}
	all, _ := s.Organizations()
	want := "[{chem Chemistry Institute CI } {phys Physics  uni} {uni University U }]"
	if fmt.Sprint(all) != want {
		t.Fatalf("after re-import %v\nwant %s", all, want)
	}
	if o, err := s.Organization("chem"); err != nil || o.Name != "Chemistry Institute" {
		t.Fatalf("Organization(chem) = %+v, %v", o, err)
	}
	if _, err := s.Organization("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Organization(nope) = %v", err)
	}
}

func TestUpsertOrganizationsValidates(t *testing.T) {
	s, _ := openTest(t)
	err := s.UpsertOrganizations([]Organization{{Label: "a", Name: "A", Parent: "b"}, {Label: "b", Name: "B", Parent: "a"}})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "parent cycle") {
		t.Fatalf("cycle = %v", err)
	}
	if all, _ := s.Organizations(); len(all) != 0 {
		t.Fatalf("a refused batch wrote %v", all)
	}
}

func TestFindOrganizations(t *testing.T) {
	s, _ := openTest(t)
	err := s.UpsertOrganizations([]Organization{
		{Label: "ioc", Name: "Institute of Organic Chemistry", Alias: "ИОХ"},
		{Label: "ipc", Name: "Institute of Physical Chemistry", Alias: "IPC RAS"},
		{Label: "chem", Name: "Chem"},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		q    string
		want []string
	}{
		{"chem", []string{"chem", "ioc", "ipc"}}, // exact first
		{"иох", []string{"ioc"}},                 // alias, any case, Cyrillic
		{"ipc ras", []string{"ipc"}},
		{"  IPC  ", []string{"ipc"}},
		{"institute", []string{"ioc", "ipc"}},
		{"zzz", nil},
		{"", nil},
	}
	for _, tt := range tests {
		got, err := s.FindOrganizations(tt.q)
		if err != nil {
			t.Fatal(err)
		}
		var labels []string
		for _, o := range got {
			labels = append(labels, o.Label)
		}
		if fmt.Sprint(labels) != fmt.Sprint(tt.want) {
			t.Errorf("FindOrganizations(%q) = %v, want %v", tt.q, labels, tt.want)
		}
	}
}

func FuzzImportOrganizationsCSV(f *testing.F) {
	f.Add("label,name,alias,parent\na,A,,b\nb,B,,\n")
	f.Add("label,name,alias,parent\na,A,,a\n")
	f.Add("label,name,alias,parent\n\"a\nb\",\"\"\"\",,\n")
	s, _ := openTest(f)
	f.Fuzz(func(t *testing.T, data string) {
		before, _ := s.Organizations()
		n, err := s.ImportOrganizationsCSV(strings.NewReader(data))
		after, _ := s.Organizations()
		if err != nil && fmt.Sprint(before) != fmt.Sprint(after) {
			t.Fatalf("failed import changed the store: %v", err)
		}
		if err == nil && n > 0 {
			// Whatever was accepted has no cycle and no unknown parent.
			if e := checkOrgs(map[string]Organization{}, asRows(after)); len(e) > 0 {
				t.Fatalf("accepted organizations are inconsistent: %v", e)
			}
		}
	})
}

func asRows(orgs []Organization) []orgRow {
	rows := make([]orgRow, len(orgs))
	for i, o := range orgs {
		rows[i] = orgRow{Organization: o, where: fmt.Sprint(i)}
	}
	return rows
}
