package main

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// forbidden lists, for each folder, the hpcbot packages its code must not import,
// so that dependencies point one way (docs/ARCHITECTURE.md#layering): store knows
// nothing of the rest; the scheduler never reaches the bot (only through its
// Notifier interface); plugins and runners know nothing of the bot, the store or
// the scheduler; internal (backoff, the test bed) is below them all.
var forbidden = map[string][]string{
	"store":     {"hpcbot/bot", "hpcbot/scheduler", "hpcbot/plugins", "hpcbot/runners"},
	"scheduler": {"hpcbot/bot", "hpcbot/runners"},
	"bot":       {"hpcbot/runners"},
	"plugins":   {"hpcbot/bot", "hpcbot/store", "hpcbot/scheduler", "hpcbot/runners"},
	"runners":   {"hpcbot/bot", "hpcbot/store", "hpcbot/scheduler"},
	"internal":  {"hpcbot/bot", "hpcbot/store", "hpcbot/scheduler", "hpcbot/plugins", "hpcbot/runners"},
}

// TestKitStandsAlone checks what a plugin links when it imports the kit
// (plugins/kit): of hpcbot, only the kit, the generated protocol and their
// internal helpers; never the host (package plugins) nor anything above it.
func TestKitStandsAlone(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./plugins/kit").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := map[string]bool{"hpcbot/plugins/kit": true, "hpcbot/plugins/proto": true}
	n := 0
	for p := range strings.FieldsSeq(string(out)) {
		if p != "hpcbot" && !strings.HasPrefix(p, "hpcbot/") {
			continue
		}
		n++
		if !allowed[p] && !strings.HasPrefix(p, "hpcbot/plugins/internal/") {
			t.Errorf("plugins/kit depends on %s: a plugin must link only the kit and the protocol", p)
		}
	}
	if n == 0 {
		t.Fatal("go list named no hpcbot package: is the test running in the repository root?")
	}
}

// TestLayering reads every import of the shipped code so that the layering cannot rot silently.
func TestLayering(t *testing.T) {
	checked := 0
	for dir, bad := range forbidden {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			// Tests may wire real neighbours in process (a scheduler test with the
			// command runner); the rules are about the code that ships.
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
			if err != nil {
				return err
			}
			checked++
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				for _, b := range bad {
					if p == b || strings.HasPrefix(p, b+"/") {
						t.Errorf("%s imports %s: %s must not depend on it (docs/ARCHITECTURE.md#layering)", path, p, dir)
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if checked == 0 {
		t.Fatal("no Go files found: is the test running in the repository root?")
	}
}
