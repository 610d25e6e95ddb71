package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"hpcbot/store"
)

// TestArchitectureStateTable keeps the state table in docs/ARCHITECTURE.md equal
// to the store's transition table, so that the documentation cannot drift from
// the code.
func TestArchitectureStateTable(t *testing.T) {
	data, err := os.ReadFile("docs/ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[store.State][]store.State{}
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "| From | To |"):
			in = true
			continue
		case !in:
			continue
		case !strings.HasPrefix(line, "|"):
			in = false
			continue
		case strings.HasPrefix(line, "|---"):
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), "|")
		if len(cells) != 2 {
			t.Fatalf("state table row %q: want two cells", line)
		}
		from := store.State(strings.TrimSpace(cells[0]))
		if _, dup := documented[from]; dup {
			t.Errorf("state table: %s listed twice", from)
		}
		tos := []store.State{}
		if to := strings.TrimSpace(cells[1]); to != "(none)" {
			for _, s := range strings.Split(to, ",") {
				tos = append(tos, store.State(strings.TrimSpace(s)))
			}
		}
		documented[from] = tos
	}
	if len(documented) == 0 {
		t.Fatal("docs/ARCHITECTURE.md has no state table (a \"| From | To |\" table)")
	}
	code := store.Transitions()
	for from, tos := range code {
		doc, ok := documented[from]
		if !ok {
			t.Errorf("state table: %s is missing", from)
			continue
		}
		want, got := slices.Clone(tos), slices.Clone(doc)
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(want, got) {
			t.Errorf("state table: %s → %v, the code allows %v", from, doc, tos)
		}
	}
	for from := range documented {
		if _, ok := code[from]; !ok {
			t.Errorf("state table: %s is not a state of the code", from)
		}
	}
}

// docLinkRE finds a link into the docs folder with an anchor, from code
// ("docs/FACTS.md#telegram-file-limits") or from a page beside it
// ("(FACTS.md#telegram-file-limits)").
var docLinkRE = regexp.MustCompile(`(?:docs/|\()((?:ARCHITECTURE|FACTS)\.md)#([A-Za-z0-9_-]+)`)

// TestDocAnchors checks that every link to a section of docs/ARCHITECTURE.md or
// docs/FACTS.md, in any Go or Markdown file, names a heading that exists.
func TestDocAnchors(t *testing.T) {
	anchors := map[string]map[string]bool{}
	for _, page := range []string{"ARCHITECTURE.md", "FACTS.md"} {
		data, err := os.ReadFile(filepath.Join("docs", page))
		if err != nil {
			t.Fatal(err)
		}
		anchors[page] = headingAnchors(string(data))
	}
	links := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != "." && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, ".md") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range docLinkRE.FindAllStringSubmatch(string(data), -1) {
			links++
			if !anchors[m[1]][m[2]] {
				t.Errorf("%s links to docs/%s#%s, which has no such heading", path, m[1], m[2])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if links == 0 {
		t.Fatal("no links to docs/ARCHITECTURE.md or docs/FACTS.md found: is the test running in the repository root?")
	}
}

// headingAnchors returns the anchors GitHub gives a page's headings: lower
// case, spaces as dashes, punctuation other than '-' and '_' dropped.
func headingAnchors(page string) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(page, "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(title) {
			switch {
			case r == ' ':
				b.WriteByte('-')
			case r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9'):
				b.WriteRune(r)
			}
		}
		out[b.String()] = true
	}
	return out
}
