package bot

import (
	"regexp/syntax"
	"strings"
	"unicode"
)

// readableArgs turns a runner's allowed_args (full-match regular expressions;
// "{}" is the input file) into what a person can type: a literal stays as it
// is ("--opt"), a run of digits becomes N ("-p\d{1,2}" is "-pN"), and each
// alternative of an alternation is listed ("--gfn[012]" is "--gfn0",
// "--gfn1", "--gfn2" when there are few). An expression it cannot put so
// simply is left out, and more reports that some were.
func readableArgs(allowed []string) (args []string, more bool) {
	for _, a := range allowed {
		if a == "{}" {
			continue
		}
		re, err := syntax.Parse(a, syntax.Perl)
		if err != nil {
			more = true
			continue
		}
		forms, ok := readable(re.Simplify())
		if !ok || len(forms) == 0 || len(forms) > 4 {
			more = true
			continue
		}
		for _, f := range forms {
			// A run of digits (\d{1,2} simplifies to two classes) is one N.
			for strings.Contains(f, digitRun+digitRun) {
				f = strings.ReplaceAll(f, digitRun+digitRun, digitRun)
			}
			args = append(args, strings.ReplaceAll(f, digitRun, "N"))
		}
	}
	return args, more
}

// digitRun marks a run of digits in a form until readableArgs writes it as N.
const digitRun = "\x00"

// readable gives the forms a person types for re, or false.
func readable(re *syntax.Regexp) ([]string, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return nil, false
		}
		return []string{string(re.Rune)}, true
	case syntax.OpCapture:
		return readable(re.Sub[0])
	case syntax.OpCharClass:
		if digitsOnly(re) {
			return []string{digitRun}, true
		}
		var out []string
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				if len(out) == 4 || !unicode.IsPrint(r) || r == 0 {
					return nil, false
				}
				out = append(out, string(r))
			}
		}
		return out, true
	case syntax.OpRepeat, syntax.OpPlus, syntax.OpStar, syntax.OpQuest:
		if re.Sub[0].Op == syntax.OpCharClass && digitsOnly(re.Sub[0]) {
			return []string{digitRun}, true
		}
		return nil, false
	case syntax.OpConcat:
		forms := []string{""}
		for _, sub := range re.Sub {
			parts, ok := readable(sub)
			if !ok {
				return nil, false
			}
			var next []string
			for _, f := range forms {
				for _, p := range parts {
					next = append(next, f+p)
				}
			}
			if len(next) > 4 {
				return nil, false
			}
			forms = next
		}
		return forms, true
	case syntax.OpAlternate:
		var out []string
		for _, sub := range re.Sub {
			parts, ok := readable(sub)
			if !ok {
				return nil, false
			}
			out = append(out, parts...)
		}
		return out, true
	}
	return nil, false
}

// digitsOnly reports whether a character class is exactly the digits 0-9.
func digitsOnly(re *syntax.Regexp) bool {
	return len(re.Rune) == 2 && re.Rune[0] == '0' && re.Rune[1] == '9'
}

// exampleCaption is a caption that runs program with its default arguments:
// what a person may write, "{}" standing for the file.
func exampleCaption(program string, defaults []string) string {
	base := program
	if i := strings.LastIndexByte(base, '/'); i >= 0 {
		base = base[i+1:]
	}
	return strings.TrimSpace(base + " " + strings.Join(defaults, " "))
}
