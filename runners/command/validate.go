package command

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"hpcbot/plugins"
)

// Input is the allowed_args and default_args entry that stands for the input file.
const Input = "{}"

var (
	// programRe is one command word: a name on PATH or a path, nothing a shell
	// would read as an option, a job spec, an assignment or an expansion.
	programRe = regexp.MustCompile(`\A[A-Za-z0-9_./+][A-Za-z0-9_./+-]*\z`)
	// extRe is an association or result extension: a dot and what the bot accepts
	// as an input file's extension ([A-Za-z0-9]+).
	extRe = regexp.MustCompile(`\A\.[A-Za-z0-9]+\z`)
	// resultFileRe is an exact result file name (no folders).
	resultFileRe = regexp.MustCompile(`\A[A-Za-z0-9._-]+\z`)
)

// compiled is a validated rule ready for Plan.
type compiled struct {
	plugins.RunnerRule                  // DefaultArgs filled in, Launch defaulted
	patterns           []*regexp.Regexp // one per allowed_args entry; nil for Input
	takesInput         bool             // allowed_args contains Input
}

// ours reports whether rule belongs to the runner called name.
func ours(rule plugins.RunnerRule, name string) bool {
	return rule.Runner == name || (rule.Runner == "" && name == Name)
}

// compilePattern compiles an allowed_args entry with full-match semantics.
// The pattern is compiled alone first, so that an unbalanced ")" cannot
// escape the anchors.
func compilePattern(p string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(p); err != nil {
		return nil, err
	}
	return regexp.Compile(`\A(?:` + p + `)\z`)
}

// Validate checks a cluster's runner rules the way the original bot did, and
// more: every allowed_args entry compiles, default_args are allowed,
// associations are well formed and unique, program and launch are valid.
// It returns every problem at once (errors.Join), each naming its key as
// prefix[i].field[j], e.g. "clusters[lomonosov].runners[0].allowed_args[1]",
// with prefix "clusters[lomonosov].runners".
//
// rules may hold the cluster's rules for other runners too: those count for
// the uniqueness of associations and are otherwise left to their runner.
func Validate(prefix string, rules []plugins.RunnerRule) error {
	_, err := compileRules(prefix, Name, rules, true)
	return err
}

// ValidateNamed checks the rules of the runner called name (one made by
// NewNamed) as Validate checks the command runner's, except the uniqueness of
// associations across the cluster, which Validate already reports.
func ValidateNamed(prefix, name string, rules []plugins.RunnerRule) error {
	_, err := compileRules(prefix, name, rules, false)
	return err
}

// compileRules compiles the rules of the runner called name; with assoc it
// also checks every rule's associations (the cluster's, whoever runs them).
func compileRules(prefix, name string, rules []plugins.RunnerRule, assoc bool) ([]compiled, error) {
	var (
		errs  []error
		out   []compiled
		owner = map[string]string{} // lower-case association → key that claimed it
	)
	problem := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	for i, rule := range rules {
		key := fmt.Sprintf("%s[%d]", prefix, i)
		for j, a := range rule.Associations {
			if !assoc {
				break
			}
			akey := fmt.Sprintf("%s.associations[%d]", key, j)
			if !extRe.MatchString(a) {
				problem(akey, "%q is not an extension: write a dot and letters or digits, like \".inp\"", a)
				continue
			}
			low := strings.ToLower(a)
			if prev, dup := owner[low]; dup {
				problem(akey, "%q is already associated by %s: an extension may be associated once per cluster", a, prev)
				continue
			}
			owner[low] = akey
		}
		if !ours(rule, name) {
			continue
		}
		c, rerrs := compileRule(key, rule)
		errs = append(errs, rerrs...)
		out = append(out, c)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func compileRule(key string, rule plugins.RunnerRule) (compiled, []error) {
	var errs []error
	problem := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	c := compiled{RunnerRule: rule}
	switch {
	case rule.Program == "":
		problem(key+".program", "missing: name the program to run")
	case !programRe.MatchString(rule.Program):
		problem(key+".program", "%q is not one command word: use a name on the cluster's PATH or an absolute path (letters, digits, _ . / + -, not starting with -), and put arguments in default_args", rule.Program)
	}
	switch rule.Launch {
	case "":
		c.Launch = plugins.LaunchBatch
	case plugins.LaunchBatch, plugins.LaunchWrapper:
	default:
		problem(key+".launch", "%q is not a launch mode: use %q or %q", rule.Launch, plugins.LaunchBatch, plugins.LaunchWrapper)
	}
	c.patterns = make([]*regexp.Regexp, len(rule.AllowedArgs))
	for j, p := range rule.AllowedArgs {
		pkey := fmt.Sprintf("%s.allowed_args[%d]", key, j)
		switch p {
		case Input:
			c.takesInput = true
			continue
		case "":
			problem(pkey, "empty: it would only allow an empty argument; remove it")
			continue
		}
		re, err := compilePattern(p)
		if err != nil {
			problem(pkey, "%q does not compile (%w): write a regular expression that matches a whole argument, or %q for the input file", p, err, Input)
			continue
		}
		c.patterns[j] = re
	}
	c.DefaultArgs = append([]string(nil), rule.DefaultArgs...)
	if len(c.DefaultArgs) == 0 && c.takesInput {
		c.DefaultArgs = []string{Input}
	}
	mentions := false
	for j, a := range c.DefaultArgs {
		if a == Input {
			mentions = true
		}
		if !c.allows(a) {
			problem(fmt.Sprintf("%s.default_args[%d]", key, j), "%q is not accepted by allowed_args: add a pattern for it to allowed_args or change it", a)
		}
	}
	if c.takesInput && !mentions {
		problem(key+".default_args", "never mention the input %q although allowed_args accept it: add %q where the program expects the file", Input, Input)
	}
	for j, r := range rule.Results {
		rkey := fmt.Sprintf("%s.results[%d]", key, j)
		if strings.HasPrefix(r, ".") {
			if !extRe.MatchString(r) {
				problem(rkey, "%q is not an extension: write a dot and letters or digits, like \".chk\"", r)
			}
			continue
		}
		if !resultFileRe.MatchString(r) || r == "." || r == ".." {
			problem(rkey, "%q is not a file name: use an extension like \".chk\" or a plain name like \"result.xyz\" (letters, digits, . _ -)", r)
		}
	}
	return c, errs
}

// allows reports whether word, as configured (Input is the placeholder), is
// accepted by one of the rule's allowed_args. Patterns that failed to compile
// accept nothing.
func (c *compiled) allows(word string) bool {
	if word == Input {
		return c.takesInput
	}
	for _, re := range c.patterns {
		if re != nil && re.MatchString(word) {
			return true
		}
	}
	return false
}
