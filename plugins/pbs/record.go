package pbs

import "strings"

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
}

// set stores one attribute by its qstat -f name (case-insensitive, as Torque
// and PBS Pro differ: exit_status/Exit_status). Unknown names are ignored.
func (r *record) set(name, value string) {
	switch strings.ToLower(name) {
	case "job_state":
		r.State = value
	case "substate":
		r.Substate = value
	case "exit_status":
		r.Exit = value
	case "comment":
		r.Comment = value
	case "stime":
		r.Start = value
	case "start_time":
		if r.Start == "" {
			r.Start = value
		}
	case "obittime", "comp_time":
		r.End = value
	case "mtime":
		r.Modified = value
	case "resources_used.walltime":
		r.UsedWall = value
	case "resource_list.walltime":
		r.ReqWall = value
	}
}
