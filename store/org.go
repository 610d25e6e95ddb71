package store

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Organization is a research organization users belong to. Label is its key;
// Parent, when set, is the label of the organization it belongs to.
type Organization struct {
	Label  string `json:"label"`
	Name   string `json:"name"`
	Alias  string `json:"alias,omitempty"`
	Parent string `json:"parent,omitempty"`
}

// orgRow is an organization with the place it came from, for error messages.
type orgRow struct {
	Organization
	where string
	line  int // CSV line, 0 for UpsertOrganizations
}

// orgProblem is one bad row, kept with its line so problems print in file order.
type orgProblem struct {
	line int
	err  error
}

func joinProblems(ps []orgProblem) error {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].line < ps[j].line })
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p.err
	}
	return errors.Join(errs...)
}

// UpsertOrganizations creates or replaces organizations by label, all in one
// transaction. Each must have a label and a name; a parent must be in the batch
// or already stored, and parents must not form a cycle. On any problem nothing
// is written and the error (wrapping ErrInvalid) lists every problem.
func (s *Store) UpsertOrganizations(orgs []Organization) error {
	rows := make([]orgRow, len(orgs))
	for i, o := range orgs {
		rows[i] = orgRow{Organization: o, where: fmt.Sprintf("organization %d (%q)", i+1, o.Label)}
	}
	_, err := s.upsertOrgRows(rows)
	return err
}

func (s *Store) upsertOrgRows(rows []orgRow) (int, error) {
	n := 0
	err := s.update(func(t *Tx) error {
		b := t.bucket(bOrgs)
		stored := map[string]Organization{}
		err := b.ForEach(func(k, v []byte) error {
			var o Organization
			if _, err := getJSON(b, k, &o); err != nil {
				return err
			}
			stored[o.Label] = o
			return nil
		})
		if err != nil {
			return err
		}
		if ps := checkOrgs(stored, rows); len(ps) > 0 {
			return joinProblems(ps)
		}
		for _, r := range rows {
			if err := putJSON(b, []byte(r.Label), r.Organization); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// checkOrgs validates rows against each other and the stored organizations.
// It trims the fields in place and collects every problem.
func checkOrgs(stored map[string]Organization, rows []orgRow) []orgProblem {
	var ps []orgProblem
	bad := func(r orgRow, format string, args ...any) {
		ps = append(ps, orgProblem{r.line, invalidf("%s: %s", r.where, fmt.Sprintf(format, args...))})
	}
	merged := make(map[string]Organization, len(stored)+len(rows))
	for k, v := range stored {
		merged[k] = v
	}
	first := map[string]string{}
	for i := range rows {
		r := &rows[i]
		r.Label = strings.TrimSpace(r.Label)
		r.Name = strings.TrimSpace(r.Name)
		r.Alias = strings.TrimSpace(r.Alias)
		r.Parent = strings.TrimSpace(r.Parent)
		if r.Label == "" {
			bad(*r, "empty label")
		}
		if r.Name == "" {
			bad(*r, "empty name")
		}
		if r.Label == "" {
			continue
		}
		if w, dup := first[r.Label]; dup {
			bad(*r, "label %q already defined at %s", r.Label, w)
			continue
		}
		first[r.Label] = r.where
		merged[r.Label] = r.Organization
	}
	for _, r := range rows {
		if r.Label == "" || r.Parent == "" || first[r.Label] != r.where {
			continue
		}
		if _, ok := merged[r.Parent]; !ok {
			bad(r, "unknown parent %q (not in the file and not stored)", r.Parent)
			continue
		}
		// Walk up from r; coming back to r is a cycle through r.
		seen := map[string]bool{r.Label: true}
		chain := []string{r.Label}
		for p := r.Parent; p != ""; p = merged[p].Parent {
			chain = append(chain, p)
			if p == r.Label {
				bad(r, "parent cycle %s", strings.Join(chain, " -> "))
				break
			}
			if seen[p] {
				break // a cycle above r, reported on its own rows
			}
			seen[p] = true
		}
	}
	return ps
}

// ImportOrganizationsCSV reads organizations from CSV with the header
// label,name,alias,parent and upserts them by label. A parent may name a label
// defined earlier or later in the file, or one already stored. Every bad row
// (wrong number of fields, empty label or name, duplicate label, unknown
// parent, a parent cycle) is reported with its line number, and when there is
// any problem nothing from the file is written. It returns how many
// organizations were written.
func (s *Store) ImportOrganizationsCSV(r io.Reader) (int, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err == io.EOF {
		return 0, invalidf("organizations csv is empty: want the header label,name,alias,parent")
	}
	if err != nil {
		return 0, fmt.Errorf("organizations csv: %w", err)
	}
	want := []string{"label", "name", "alias", "parent"}
	for i := range header {
		header[i] = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(header[i], "\ufeff")))
	}
	if strings.Join(header, ",") != strings.Join(want, ",") {
		return 0, invalidf("organizations csv line 1: header is %q, want \"label,name,alias,parent\"", strings.Join(header, ","))
	}
	var rows []orgRow
	var ps []orgProblem
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			// A quoting error leaves the reader's position unreliable: stop here.
			// (csv.ParseError names the line.)
			line := 1 << 30
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.Line
			}
			ps = append(ps, orgProblem{line, fmt.Errorf("organizations csv: %w", err)})
			break
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != len(want) {
			ps = append(ps, orgProblem{line, invalidf("organizations csv line %d: %d fields, want 4 (label,name,alias,parent)", line, len(rec))})
			continue
		}
		rows = append(rows, orgRow{
			Organization: Organization{Label: rec[0], Name: rec[1], Alias: rec[2], Parent: rec[3]},
			where:        fmt.Sprintf("organizations csv line %d", line),
			line:         line,
		})
	}
	if len(ps) > 0 {
		// Check the good rows too, so the operator sees every problem at once.
		err := s.view(func(t *Tx) error {
			ps = append(ps, checkOrgs(storedOrgs(t), rows)...)
			return nil
		})
		if err != nil {
			return 0, err
		}
		return 0, joinProblems(ps)
	}
	return s.upsertOrgRows(rows)
}

func storedOrgs(t *Tx) map[string]Organization {
	m := map[string]Organization{}
	b := t.bucket(bOrgs)
	_ = b.ForEach(func(k, v []byte) error {
		var o Organization
		if _, err := getJSON(b, k, &o); err == nil {
			m[o.Label] = o
		}
		return nil
	})
	return m
}

// Organization returns the organization with this label.
func (s *Store) Organization(label string) (Organization, error) {
	var o Organization
	err := s.view(func(t *Tx) error {
		ok, err := getJSON(t.bucket(bOrgs), []byte(label), &o)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("organization %q: %w", label, ErrNotFound)
		}
		return nil
	})
	return o, err
}

// Organizations returns every organization, ordered by label.
func (s *Store) Organizations() ([]Organization, error) {
	var out []Organization
	err := s.view(func(t *Tx) error {
		b := t.bucket(bOrgs)
		return b.ForEach(func(k, v []byte) error {
			var o Organization
			if _, err := getJSON(b, k, &o); err != nil {
				return err
			}
			out = append(out, o)
			return nil
		})
	})
	return out, err
}

// FindOrganizations returns the organizations whose label, name or alias
// matches query case-insensitively: exact matches first, then those that
// contain the query, each group ordered by label. An empty query matches nothing.
func (s *Store) FindOrganizations(query string) ([]Organization, error) {
	q := strings.ToLower(strings.TrimSpace(query))
	if q == "" {
		return nil, nil
	}
	all, err := s.Organizations()
	if err != nil {
		return nil, err
	}
	var exact, partial []Organization
	for _, o := range all {
		fields := []string{strings.ToLower(o.Label), strings.ToLower(o.Name), strings.ToLower(o.Alias)}
		switch {
		case fields[0] == q || fields[1] == q || (fields[2] != "" && fields[2] == q):
			exact = append(exact, o)
		case strings.Contains(fields[0], q) || strings.Contains(fields[1], q) || strings.Contains(fields[2], q):
			partial = append(partial, o)
		}
	}
	return append(exact, partial...), nil
}
