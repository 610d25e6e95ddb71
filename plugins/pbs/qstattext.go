package pbs

import "strings"

// parseText reads `qstat -f` text: a "Job Id: <id>" line starts each job; an
// attribute line is four spaces, a name, " = " and the value; a line starting
// with a tab continues the previous value (qstat folds long values, the tab is
// dropped); any other line inside a job (a value with newlines in it, such as a
// bash function in Variable_List or a multi-line sched_hint) is appended to the
// previous value with its newline. Text before the first job is ignored. The
// parser never fails: what it cannot place it drops.
func parseText(out []byte) []record {
	var (
		recs []record
		cur  *record
		name string          // attribute being read
		val  strings.Builder // its value so far
	)
	flush := func() {
		if cur != nil && name != "" {
			cur.set(name, strings.TrimSpace(val.String()))
		}
		name = ""
		val.Reset()
	}
	s := string(out)
	for len(s) > 0 {
		var line string
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			line, s = s[:i], s[i+1:]
		} else {
			line, s = s, ""
		}
		line = strings.TrimSuffix(line, "\r")
		switch {
		case strings.HasPrefix(line, "Job Id:"):
			flush()
			recs = append(recs, record{ID: strings.TrimSpace(line[len("Job Id:"):])})
			cur = &recs[len(recs)-1]
		case cur == nil:
			// before the first job: a warning or banner
		case isAttrLine(line):
			flush()
			rest := line[4:]
			eq := strings.Index(rest, " = ")
			name = rest[:eq]
			val.WriteString(rest[eq+3:])
		case name == "":
			// a stray line right after "Job Id:"
		case strings.HasPrefix(line, "\t"):
			val.WriteString(line[1:])
		default:
			val.WriteByte('\n')
			val.WriteString(line)
		}
	}
	flush()
	return recs
}

// isAttrLine reports whether line is "    name = value": exactly four spaces,
// then a name of letters, digits, '_', '.' or '-', then " = ".
func isAttrLine(line string) bool {
	if len(line) < 8 || line[:4] != "    " {
		return false
	}
	rest := line[4:]
	eq := strings.Index(rest, " = ")
	if eq <= 0 {
		return false
	}
	for i := 0; i < eq; i++ {
		c := rest[i]
		if !(isLetter(c) || ('0' <= c && c <= '9') || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return isLetter(rest[0])
}
