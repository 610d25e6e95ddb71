package pbs

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
	"hpcbot/plugins/shellquote"
)

// Files the batch script names in the calculation's folder besides cluster.ExitCodeFile.
const (
	StdoutFile = "hpcbot-job.out" // the job's standard output (#PBS -o)
	StderrFile = "hpcbot-job.err" // the job's standard error (#PBS -e)
	// CommentVariable carries SubmitRequest.Comment into the job's Variable_List
	// (#PBS -v), where qstat -f shows it: neither PBS Pro nor Torque lets a user set
	// the job's comment attribute.
	CommentVariable = "HPCBOT_COMMENT"
	// MaxJobNameLen is the longest job name written: 15 characters is the limit of
	// Torque and of older PBS releases, so it is used for both flavors.
	MaxJobNameLen = 15
	maxCommentLen = 200
)

// Resource keys that become qsub options instead of "-l key=value" lines.
const (
	ResourceQueue   = "queue"   // #PBS -q
	ResourceAccount = "account" // #PBS -A
	ResourceProject = "project" // #PBS -P (PBS Pro only; Torque's -P means something else)
)

var (
	resourceKeyRe   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,63}$`)
	resourceValueRe = regexp.MustCompile(`^[A-Za-z0-9_.:=+@/-]{1,512}$`)
	optionValueRe   = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,128}$`)
	walltimeRe      = regexp.MustCompile(`^([0-9]+:){0,2}[0-9]+(\.[0-9]+)?$`)
	// directiveSafePath is a folder that may appear bare in a #PBS -o/-e line:
	// absolute, no blanks, no colon (qsub reads "host:path"), nothing qsub or a
	// shell would interpret.
	directiveSafePath = regexp.MustCompile(`^/[A-Za-z0-9_.,+@%=/-]*$`)
)

// BatchScript returns the job script for req. It runs req.Argv (every word
// quoted) in the calculation's folder with stdin from /dev/null, writes the
// program's exit status and the time to cluster.ExitCodeFile through a temporary
// file and a rename (cluster.ExitCodeScript), and exits with that status, so qstat's Exit_status is the program's too.
//
// Directives: -N the sanitised job name (see JobName), -S /bin/sh (the script is
// POSIX sh whatever the user's login shell), -r n (a rerun would start the
// program a second time in the same folder), -o/-e into the folder, -v
// HPCBOT_COMMENT=<comment> (see CommentValue), then one line per resource (see
// ResourceDirectives). Nothing taken from the request appears before the first
// command except these validated values, so an argument cannot add a directive.
func (d *Dialect) BatchScript(req plugins.SubmitRequest, remoteDir string) ([]byte, error) {
	if len(req.Argv) == 0 {
		return nil, plugins.Errorf(plugins.KindPermanent, "pbs script for calc %d: empty argv", req.CalcID)
	}
	for i, w := range req.Argv {
		if strings.IndexByte(w, 0) >= 0 {
			return nil, plugins.Errorf(plugins.KindPermanent, "pbs script for calc %d: argument %d contains a NUL byte", req.CalcID, i)
		}
	}
	res, err := d.ResourceDirectives(req.Resources)
	if err != nil {
		return nil, fmt.Errorf("pbs script for calc %d: %w", req.CalcID, err)
	}

	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	b.WriteString("#PBS -N " + JobName(req.JobName, req.CalcID) + "\n")
	b.WriteString("#PBS -S /bin/sh\n")
	b.WriteString("#PBS -r n\n")
	out, errf := StdoutFile, StderrFile
	abs := directiveSafePath.MatchString(remoteDir)
	if abs {
		dir := strings.TrimRight(remoteDir, "/")
		out, errf = dir+"/"+StdoutFile, dir+"/"+StderrFile
	}
	b.WriteString("#PBS -o " + out + "\n")
	b.WriteString("#PBS -e " + errf + "\n")
	if c := CommentValue(req.Comment); c != "" {
		b.WriteString("#PBS -v " + CommentVariable + "=" + c + "\n")
	}
	for _, l := range res {
		b.WriteString(l + "\n")
	}
	b.WriteString("\n")
	if abs {
		b.WriteString("cd " + shellquote.Quote(remoteDir))
	} else {
		// qsub ran in remoteDir (see SubmitCommand), which PBS exports as PBS_O_WORKDIR.
		b.WriteString(`cd "${PBS_O_WORKDIR:?}"`)
	}
	b.WriteString(" || { echo 'hpcbot: cannot enter the calculation folder' >&2; exit 1; }\n")
	b.WriteString("# Written by hpcbot: run the program, then record its exit status atomically.\n")
	b.WriteString(shellquote.Join(req.Argv) + " </dev/null\n")
	b.WriteString("rc=$?\n")
	b.WriteString(cluster.ExitCodeScript() + "\n")
	b.WriteString(`exit "$rc"` + "\n")
	return []byte(b.String()), nil
}

// ResourceDirectives validates resources (a runner's `resources` table) and
// returns their #PBS lines in a stable order: the options queue (-q), account
// (-A) and project (-P, PBS Pro only) first, then one "#PBS -l key=value" per
// other key, sorted. Keys are resource names (select, walltime, mem, ncpus,
// place, nodes, ...; site resources such as ngpus or jobfs too); values may not
// contain blanks, quotes, commas or shell characters. Torque has no select or
// place: use nodes=1:ppn=4.
func (d *Dialect) ResourceDirectives(resources map[string]string) ([]string, error) {
	keys := make([]string, 0, len(resources))
	for k := range resources {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var opts, limits []string
	for _, k := range keys {
		v := resources[k]
		switch k {
		case ResourceQueue, ResourceAccount, ResourceProject:
			if k == ResourceProject && d.flavor == FlavorTorque {
				return nil, plugins.Errorf(plugins.KindPermanent,
					"resource %q: Torque has no projects (its -P is a proxy user); remove it", k)
			}
			if !optionValueRe.MatchString(v) {
				return nil, plugins.Errorf(plugins.KindPermanent,
					"resource %q = %q: use letters, digits and _ . @ - only", k, v)
			}
			flag := map[string]string{ResourceQueue: "-q", ResourceAccount: "-A", ResourceProject: "-P"}[k]
			opts = append(opts, "#PBS "+flag+" "+v)
			continue
		}
		if !resourceKeyRe.MatchString(k) {
			return nil, plugins.Errorf(plugins.KindPermanent,
				"resource key %q: a PBS resource name starts with a letter and has letters, digits, _ and - only", k)
		}
		if d.flavor == FlavorTorque && (k == "select" || k == "place") {
			return nil, plugins.Errorf(plugins.KindPermanent,
				"resource %q is PBS Pro syntax; Torque wants e.g. nodes = \"1:ppn=4\" (or set flavor = %q)", k, FlavorPro)
		}
		if strings.Contains(v, ",") {
			return nil, plugins.Errorf(plugins.KindPermanent,
				"resource %q = %q: a comma would start another resource; give each resource its own key", k, v)
		}
		if !resourceValueRe.MatchString(v) {
			return nil, plugins.Errorf(plugins.KindPermanent,
				"resource %q = %q: use letters, digits and _ . : = + @ / - only (no blanks or quotes)", k, v)
		}
		if k == "walltime" && !walltimeRe.MatchString(v) {
			return nil, plugins.Errorf(plugins.KindPermanent,
				"resource walltime = %q: write [[hours:]minutes:]seconds, e.g. \"01:00:00\"", v)
		}
		limits = append(limits, "#PBS -l "+k+"="+v)
	}
	return append(opts, limits...), nil
}

// JobName turns name into a job name both flavors accept: only letters, digits,
// '_', '.' and '-' are kept; a name that does not start with a letter gets a "j"
// in front; an empty one becomes "hpcbot-<calc>"; a name longer than
// MaxJobNameLen keeps its first character and its last 14 (the calculation
// number is at the end of "hpcbot-<calc>").
func JobName(name string, calc uint64) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if isLetter(c) || ('0' <= c && c <= '9') || c == '_' || c == '.' || c == '-' {
			b.WriteByte(c)
		}
	}
	s := b.String()
	if s == "" {
		s = fmt.Sprintf("hpcbot-%d", calc)
	}
	if !isLetter(s[0]) {
		s = "j" + s
	}
	if len(s) > MaxJobNameLen {
		s = s[:1] + s[len(s)-(MaxJobNameLen-1):]
	}
	return s
}

// CommentValue turns a SubmitRequest.Comment into the value of HPCBOT_COMMENT:
// every byte other than letters, digits and _ . : @ / + - becomes '_' (blanks,
// commas and '=' would split qsub's -v list), it starts with a letter (qstat
// -F json prints a digits-only value unquoted, which is invalid JSON when it has
// a leading zero: openpbs/openpbs#1255) and is at most 200 bytes. Empty stays empty.
func CommentValue(comment string) string {
	comment = strings.TrimSpace(comment)
	if comment == "" {
		return ""
	}
	var b strings.Builder
	for i := 0; i < len(comment) && b.Len() < maxCommentLen; i++ {
		c := comment[i]
		if isLetter(c) || ('0' <= c && c <= '9') || strings.IndexByte("_.:@/+-", c) >= 0 {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	s := b.String()
	if !isLetter(s[0]) {
		s = "hpcbot_" + s
		if len(s) > maxCommentLen {
			s = s[:maxCommentLen]
		}
	}
	return s
}

func isLetter(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }
