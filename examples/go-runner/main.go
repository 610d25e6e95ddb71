// Command hpcbot-runner-lines is an example drop-in runner plugin for hpcbot,
// built as a module of its own: it imports only hpcbot's plugin kit
// (hpcbot/plugins/kit) and nothing of the bot. Install the binary in hpcbot's
// plugin_dir as hpcbot-runner-lines and name it in a cluster's runner rules:
//
//	[[clusters.runners]]
//	runner = "lines"
//	program = "/opt/tools/count"
//	associations = [".txt"]
//
// A file "notes.txt" sent without a caption then runs "/opt/tools/count
// ./notes.txt". The caption may repeat the program's name and add arguments
// made of letters, digits and dashes. Check refuses an empty input; Digest
// reports the last line of the job's standard output as its termination line.
// See docs/plugins.md.
package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"hpcbot/plugins/kit"
)

const name, version = "lines", "0.1.0"

type runner struct {
	mu    sync.RWMutex
	rules []kit.RunnerRule
}

// PluginVersion is what `hpcbot check` shows for this plugin.
func (r *runner) PluginVersion() (string, string) { return name, version }

// Configure keeps this runner's rules; a rule it cannot use is a permanent
// error, so the operator learns it at start.
func (r *runner) Configure(_ context.Context, cluster string, rules []kit.RunnerRule) error {
	var mine []kit.RunnerRule
	for i, rule := range rules {
		if rule.Runner != name {
			continue
		}
		if rule.Program == "" {
			return kit.Errorf(kit.KindPermanent, "clusters[%s].runners[%d]: program is empty", cluster, i)
		}
		for _, a := range rule.Associations {
			if !strings.HasPrefix(a, ".") {
				return kit.Errorf(kit.KindPermanent, "clusters[%s].runners[%d]: association %q must start with a dot", cluster, i, a)
			}
		}
		mine = append(mine, rule)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rules = mine
	return nil
}

func (r *runner) Info(context.Context) (kit.RunnerInfo, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	info := kit.RunnerInfo{Name: name, Version: version}
	for _, rule := range r.rules {
		info.Programs = append(info.Programs, kit.ProgramInfo{
			Program: rule.Program, Description: rule.Description, Associations: rule.Associations, Launch: rule.Launch})
	}
	return info, nil
}

var argRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]*$`)

// Plan is pure: it reads nothing but the request and the rules.
func (r *runner) Plan(_ context.Context, req kit.PlanRequest) (kit.Plan, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if strings.ContainsAny(req.Caption, "\"'\\\x00\n\r") {
		return kit.Plan{}, &kit.Refusal{Code: kit.RefuseBadCaption, Detail: req.Caption}
	}
	words := strings.Fields(req.Caption)
	var rule *kit.RunnerRule
	if len(words) > 0 {
		for i := range r.rules {
			if words[0] == r.rules[i].Program || words[0] == path.Base(r.rules[i].Program) {
				rule = &r.rules[i]
			}
		}
		if rule == nil {
			return kit.Plan{}, &kit.Refusal{Code: kit.RefuseUnknownProgram, Detail: words[0]}
		}
		words = words[1:]
	} else {
		for i := range r.rules {
			if slices.Contains(r.rules[i].Associations, path.Ext(req.FileName)) {
				rule = &r.rules[i]
				break
			}
		}
		if rule == nil {
			return kit.Plan{}, &kit.Refusal{Code: kit.RefuseNoProgram, Detail: path.Ext(req.FileName)}
		}
	}
	argv := []string{rule.Program}
	input := false
	for _, w := range words {
		switch {
		case w == "{}":
			argv, input = append(argv, "./"+req.FileName), true
		case argRE.MatchString(w):
			argv = append(argv, w)
		default:
			return kit.Plan{}, &kit.Refusal{Code: kit.RefuseArgNotAllowed, Detail: w}
		}
	}
	if !input {
		argv = append(argv, "./"+req.FileName)
	}
	launch := rule.Launch
	if launch == "" {
		launch = kit.LaunchBatch
	}
	return kit.Plan{Program: rule.Program, Argv: argv, Launch: launch, Resources: rule.Resources}, nil
}

// Check (protocol 2) refuses an empty input before it is uploaded.
func (r *runner) Check(_ context.Context, req kit.CheckInputRequest) (kit.InputResources, error) {
	fi, err := os.Stat(req.Path)
	if err != nil {
		return kit.InputResources{}, kit.Errorf(kit.KindPermanent, "read the input: %w", err)
	}
	if fi.Size() == 0 {
		return kit.InputResources{}, &kit.Refusal{Code: kit.RefuseInputEmpty, Line: 1}
	}
	return kit.InputResources{}, nil
}

// Digest (protocol 2) reads the job's standard output line by line (never the
// whole file) and reports its last line; without one it has no summary.
func (r *runner) Digest(_ context.Context, req kit.DigestRequest) (kit.Digest, error) {
	none := kit.Digest{Termination: kit.TerminationNone}
	if req.Stdout == "" || !filepath.IsLocal(req.Stdout) {
		return none, nil
	}
	f, err := os.Open(filepath.Join(req.Dir, req.Stdout))
	if err != nil {
		return none, nil
	}
	defer f.Close()
	last := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			last = l
		}
	}
	if last == "" || req.ExitCode == nil {
		return none, nil
	}
	if len(last) > 256 {
		last = last[:256]
	}
	d := kit.Digest{Program: name, Termination: kit.TerminationNormal, TerminationLine: last}
	if *req.ExitCode != 0 {
		d.Termination = kit.TerminationFailed
	}
	return d, nil
}

func main() {
	if err := kit.ServeRunner(&runner{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
