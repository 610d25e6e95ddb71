package pbs

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
	"hpcbot/plugins/shellquote"
)

var (
	_ cluster.JobFinder     = (*Dialect)(nil)
	_ cluster.SubmitRetrier = (*Dialect)(nil)
)

// findDirMark precedes the calculation folder's paths in FindCommand's output.
const findDirMark = "hpcbot-pbs-dir: "

// FindCommand lists the user's jobs named like req's batch job (qselect -N,
// with -x on PBS Pro to include finished ones) and prints them with qstat -f
// (text, both flavors), after the folder's logical and physical paths. It is
// "" for a wrapper launch: a wrapper names its own jobs.
func (d *Dialect) FindCommand(req plugins.SubmitRequest, remoteDir string) string {
	if req.Launch != plugins.LaunchBatch {
		return ""
	}
	name := shellquote.Quote(JobName(req.JobName, req.CalcID))
	dir := shellquote.Quote(remoteDir)
	qselect, qstat := "qselect -x", "qstat -x -f"
	if d.flavor == FlavorTorque {
		qselect, qstat = "qselect", "qstat -f"
	}
	var b strings.Builder
	b.WriteString("set -f\n")
	fmt.Fprintf(&b, "printf '%%s%%s\\n' %s \"$(cd %s && pwd -L)\" %s \"$(cd %s && pwd -P)\"\n",
		shellquote.Quote(findDirMark), dir, shellquote.Quote(findDirMark), dir)
	fmt.Fprintf(&b, "ids=$(%s -N %s -u \"$(id -un)\" 2>/dev/null)\n", qselect, name)
	fmt.Fprintf(&b, "[ -z \"$ids\" ] || %s $ids 2>/dev/null\n", qstat)
	b.WriteString("exit 0\n")
	return b.String()
}

// ParseFind returns the ids of the listed jobs whose PBS_O_WORKDIR (the folder
// qsub ran in) is the calculation's folder, oldest (lowest sequence number) first.
func (d *Dialect) ParseFind(r cluster.RunResult) ([]string, error) {
	var dirs []string
	for line := range bytes.Lines(r.Stdout) {
		if rest, ok := bytes.CutPrefix(bytes.TrimRight(line, "\r\n"), []byte(findDirMark)); ok && len(rest) > 0 {
			dirs = append(dirs, strings.TrimRight(string(rest), "/"))
		}
	}
	if len(dirs) == 0 {
		return nil, plugins.Errorf(plugins.KindTransient, "pbs find: the folder was not resolved (exit %d): %s",
			r.ExitCode, firstLine(string(r.Stderr)))
	}
	seen := map[string]bool{}
	var ids []string
	for _, rec := range parseText(r.Stdout) {
		wd := strings.TrimRight(workdir(rec.VarList), "/")
		if wd == "" || seen[rec.ID] || !validJobID.MatchString(rec.ID) {
			continue
		}
		for _, dir := range dirs {
			if wd == dir {
				seen[rec.ID] = true
				ids = append(ids, rec.ID)
				break
			}
		}
	}
	sort.SliceStable(ids, func(i, j int) bool { return seqLess(ids[i], ids[j]) })
	return ids, nil
}

// workdir returns PBS_O_WORKDIR from a Variable_List ("A=1,PBS_O_WORKDIR=/x,...";
// PBS writes a comma inside a value as "\,").
func workdir(varList string) string {
	for _, v := range splitVarList(varList) {
		if rest, ok := strings.CutPrefix(v, "PBS_O_WORKDIR="); ok {
			return rest
		}
	}
	return ""
}

func splitVarList(s string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == ',':
			cur.WriteByte(',')
			i++
		case s[i] == ',':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	return append(out, cur.String())
}

// seqLess orders job ids by their numeric sequence number, then as strings.
func seqLess(a, b string) bool {
	na, ea := strconv.ParseUint(strings.TrimRight(sequence(a), "[]"), 10, 64)
	nb, eb := strconv.ParseUint(strings.TrimRight(sequence(b), "[]"), 10, 64)
	if ea == nil && eb == nil && na != nb {
		return na < nb
	}
	return a < b
}

// cannotConnect is qsub failing to reach the server ("qsub: cannot connect to
// server pbs01 (errno=15010)"; Torque adds the reason after it): nothing was
// submitted.
var cannotConnect = regexp.MustCompile(`(?m)^qsub: cannot connect to server\b`)

// NothingSubmitted recognises qsub failing before it reached the server, so the
// generic code may launch again later. Anything else is taken as "maybe submitted".
func (d *Dialect) NothingSubmitted(out []byte, exitCode int) bool {
	return exitCode != 0 && cannotConnect.Match(out)
}
