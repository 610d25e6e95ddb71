package pbs

import (
	"slices"
	"strings"
)

// record is what the dialect keeps of one job in qstat's output, whichever
// format it came in. Empty fields were absent.
type record struct {
	ID       string
	State    string // job_state: one letter
	Substate string // PBS Pro substate (91 deleted, 92 finished, 93 failed)
	Exit     string // Exit_status (PBS Pro) or exit_status (Torque)
	Comment  string
	Start    string // stime (PBS Pro) or start_time (Torque)
	End      string // obittime (PBS Pro) or comp_time (Torque)
	Modified string // mtime
	UsedWall string // resources_used.walltime
	ReqWall  string // Resource_List.walltime
	VarList  string // Variable_List, text format only (JobFinder reads PBS_O_WORKDIR)
	ExecHost string // exec_host: "b141/0*16+b142/0*16"
}

// attrNames are the qstat -f attribute names the dialect reads, compared
// without case (Torque prints exit_status, PBS Pro Exit_status).
var attrNames = [...]string{
	"job_state", "substate", "exit_status", "comment", "stime", "start_time",
	"obittime", "comp_time", "mtime", "resources_used.walltime", "resource_list.walltime", "variable_list",
	"exec_host",
}

// attrIndex returns name's index in attrNames, -1 for an attribute the dialect
// does not read.
func attrIndex(name string) int {
	for i, n := range attrNames {
		if len(n) == len(name) && strings.EqualFold(n, name) {
			return i
		}
	}
	return -1
}

// set stores one attribute by its qstat -f name; unknown names are ignored.
func (r *record) set(name, value string) { r.setIndex(attrIndex(name), value) }

func (r *record) setIndex(i int, value string) {
	switch i {
	case 0:
		r.State = value
	case 1:
		r.Substate = value
	case 2:
		r.Exit = value
	case 3:
		r.Comment = value
	case 4:
		r.Start = value
	case 5:
		if r.Start == "" {
			r.Start = value
		}
	case 6, 7:
		r.End = value
	case 8:
		r.Modified = value
	case 9:
		r.UsedWall = value
	case 10:
		r.ReqWall = value
	case 11:
		r.VarList = value
	case 12:
		r.ExecHost = value
	}
}

// nodes turns exec_host ("b141/0*16+b142/0*16", Torque "n1/0+n1/1") into the
// host names, each once, in order: "b141,b142".
func nodes(execHost string) string {
	var out []string
	for part := range strings.SplitSeq(strings.TrimSpace(execHost), "+") {
		host, _, _ := strings.Cut(strings.TrimSpace(part), "/")
		if host != "" && !slices.Contains(out, host) {
			out = append(out, host)
		}
	}
	return strings.Join(out, ",")
}
