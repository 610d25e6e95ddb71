package command

import (
	"context"
	"errors"
	"maps"
	"path"
	"regexp"
	"strings"
	"sync"

	"hpcbot/plugins"
	"hpcbot/plugins/shellquote"
)

// Name is the runner's name in configuration (`runner = "command"`, the default).
const Name = "command"

// Version is reported by Info; raise it when the rules change.
const Version = "1.0.0"

// fileNameRe is what the bot accepts as an input file name; Plan checks it
// again. The first character is a letter, digit or underscore: never a dot
// (hidden files, "..") nor a dash (read as an option by the program).
var fileNameRe = regexp.MustCompile(`\A[A-Za-z0-9_][A-Za-z0-9._-]*\.[A-Za-z0-9]+\z`)

// InputArg is how the input file is written on the command line: "./NAME", a
// path that no program can mistake for an option, whatever the name.
func InputArg(fileName string) string { return "./" + fileName }

// Runner is the command runner for one cluster. The zero value is not
// configured; use New (or NewNamed), then Configure.
type Runner struct {
	name    string // the runner's name in configuration
	aliases bool   // a caption may name a program by the runner's name or the program's base name
	mu      sync.RWMutex
	cluster string
	rules   []compiled
	ready   bool
}

var _ plugins.Runner = (*Runner)(nil)

// New returns an unconfigured command runner.
func New() *Runner { return &Runner{name: Name} }

// NewNamed returns an unconfigured runner with the command runner's caption
// and allowed_args rules under another name, for runners built on it (xtb,
// orca, gaussian): it serves the rules whose runner is name, and a caption may
// name a program by its program value, by the runner's name or by the
// program's base name (`orca {}` for program = "/opt/orca/orca_submit").
func NewNamed(name string) *Runner { return &Runner{name: name, aliases: true} }

// Configure validates and installs the cluster's runner rules; rules naming
// another runner are skipped (but count for unique associations). A rule set
// that does not validate leaves the runner as it was and returns a permanent
// error listing every problem.
func (r *Runner) Configure(_ context.Context, cluster string, rules []plugins.RunnerRule) error {
	compiled, err := compileRules("clusters["+cluster+"].runners", r.name, rules, true)
	if err != nil {
		return plugins.Errorf(plugins.KindPermanent, "configure %s runner: %w", r.name, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cluster, r.rules, r.ready = cluster, compiled, true
	return nil
}

// Info lists the configured programs in configuration order, with the
// effective default_args and launch mode.
func (r *Runner) Info(_ context.Context) (plugins.RunnerInfo, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	info := plugins.RunnerInfo{Name: r.name, Version: Version}
	for _, c := range r.rules {
		info.Programs = append(info.Programs, plugins.ProgramInfo{
			Program:      c.Program,
			Description:  c.Description,
			AllowedArgs:  append([]string(nil), c.AllowedArgs...),
			DefaultArgs:  append([]string(nil), c.DefaultArgs...),
			Associations: append([]string(nil), c.Associations...),
			Launch:       c.Launch,
		})
	}
	return info, nil
}

// errNotConfigured is returned by Plan before Configure succeeded.
var errNotConfigured = errors.New("runner not configured")

// Plan decides how to run req (see the package comment for the rules). It
// returns a *plugins.Refusal, with the offending word in Detail, when the
// file or caption is not acceptable:
//
//   - RefuseBadCaption: the caption cannot be split (Detail: why);
//   - RefuseNoProgram: no caption and no program for the extension, or a caption
//     of options only and no program for the extension (Detail: the extension);
//   - RefuseUnknownProgram: the caption's first word is no configured program (Detail: it);
//   - RefuseArgNotAllowed: a word matches none of allowed_args (Detail: the word);
//   - RefuseNoInput: the program takes "{}" but the caption never mentions the
//     input (Detail: the program).
//
// A file name the bot should never have accepted is a permanent error, not a refusal.
func (r *Runner) Plan(_ context.Context, req plugins.PlanRequest) (plugins.Plan, error) {
	p, _, err := r.plan(req)
	return p, err
}

// PlanRule is Plan that also returns the rule that made the plan, as
// configured: a runner built on this one reads its own settings from it.
func (r *Runner) PlanRule(_ context.Context, req plugins.PlanRequest) (plugins.Plan, plugins.RunnerRule, error) {
	p, c, err := r.plan(req)
	if err != nil {
		return p, plugins.RunnerRule{}, err
	}
	return p, c.RunnerRule, nil
}

func (r *Runner) plan(req plugins.PlanRequest) (plugins.Plan, *compiled, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if !r.ready {
		return plugins.Plan{}, nil, plugins.Errorf(plugins.KindPermanent, "plan %s: %w", req.FileName, errNotConfigured)
	}
	if !fileNameRe.MatchString(req.FileName) {
		return plugins.Plan{}, nil, plugins.Errorf(plugins.KindPermanent, "plan: input file name %q is not acceptable", req.FileName)
	}
	words, err := shellquote.Split(req.Caption)
	if err != nil {
		return plugins.Plan{}, nil, &plugins.Refusal{Code: plugins.RefuseBadCaption, Detail: err.Error()}
	}
	ext := strings.ToLower(path.Ext(req.FileName))

	// No caption, or only options: the program associated with the extension.
	if len(words) == 0 || strings.HasPrefix(words[0], "-") {
		c := r.byExtension(ext)
		if c == nil {
			return plugins.Plan{}, nil, &plugins.Refusal{Code: plugins.RefuseNoProgram, Detail: ext}
		}
		if len(words) == 0 {
			return c.plan(req.FileName, c.DefaultArgs), c, nil
		}
		args, refusal := c.check(req.FileName, words)
		if refusal != nil {
			return plugins.Plan{}, nil, refusal
		}
		if c.takesInput && !mentions(args) {
			args = append([]string{Input}, args...)
		}
		return c.plan(req.FileName, args), c, nil
	}

	// "program args...": the entries for that program, the one for this
	// extension first; the first accepting every word wins.
	candidates := r.byProgram(words[0], ext)
	if len(candidates) == 0 {
		return plugins.Plan{}, nil, &plugins.Refusal{Code: plugins.RefuseUnknownProgram, Detail: words[0]}
	}
	if len(words) == 1 {
		return candidates[0].plan(req.FileName, candidates[0].DefaultArgs), candidates[0], nil
	}
	var first *plugins.Refusal
	for _, c := range candidates {
		args, refusal := c.check(req.FileName, words[1:])
		if refusal == nil && c.takesInput && !mentions(args) {
			refusal = &plugins.Refusal{Code: plugins.RefuseNoInput, Detail: c.Program}
		}
		if refusal == nil {
			return c.plan(req.FileName, args), c, nil
		}
		if first == nil {
			first = refusal
		}
	}
	return plugins.Plan{}, nil, first
}

// byExtension returns the rule associated with ext (lower case, with the dot), or nil.
func (r *Runner) byExtension(ext string) *compiled {
	for i := range r.rules {
		for _, a := range r.rules[i].Associations {
			if strings.ToLower(a) == ext {
				return &r.rules[i]
			}
		}
	}
	return nil
}

// byProgram returns the rules for program, the one associated with ext first.
// A runner made by NewNamed also takes its own name and a program's base name.
func (r *Runner) byProgram(program, ext string) []*compiled {
	var out []*compiled
	for i := range r.rules {
		c := &r.rules[i]
		if c.Program != program && !(r.aliases && (program == r.name || program == path.Base(c.Program))) {
			continue
		}
		if c == r.byExtension(ext) {
			out = append([]*compiled{c}, out...)
			continue
		}
		out = append(out, c)
	}
	return out
}

// check validates the caption's argument words and returns them with the
// input written as Input.
func (c *compiled) check(fileName string, words []string) ([]string, *plugins.Refusal) {
	args := make([]string, len(words))
	for i, w := range words {
		if c.takesInput && (w == Input || w == fileName || w == InputArg(fileName)) {
			args[i] = Input
			continue
		}
		if w == Input || !c.allows(w) {
			return nil, &plugins.Refusal{Code: plugins.RefuseArgNotAllowed, Detail: w}
		}
		args[i] = w
	}
	return args, nil
}

func mentions(args []string) bool {
	for _, a := range args {
		if a == Input {
			return true
		}
	}
	return false
}

// plan builds the Plan for validated args, Input replaced by InputArg(fileName).
func (c *compiled) plan(fileName string, args []string) plugins.Plan {
	argv := make([]string, 0, len(args)+1)
	argv = append(argv, c.Program)
	for _, a := range args {
		if a == Input {
			a = InputArg(fileName)
		}
		argv = append(argv, a)
	}
	p := plugins.Plan{
		Program:   c.Program,
		Argv:      argv,
		Launch:    c.Launch,
		Resources: maps.Clone(c.Resources),
		Failover:  c.Failover == nil || *c.Failover,
	}
	for _, res := range c.Results {
		if strings.HasPrefix(res, ".") {
			p.Extensions = append(p.Extensions, res)
		} else {
			p.Files = append(p.Files, res)
		}
	}
	return p
}
