package store

import (
	"sort"
	"strconv"
	"strings"
	"time"
)

// Outcomes a usage report counts calculations by: how the job ended (from the
// history, since a delivered calculation's state is notified), error, or
// active (not ended yet).
var ReportOutcomes = []string{
	string(StateSucceeded), string(StateFailed), string(StateCancelled), string(StateTimedOut),
	string(StateError), "active",
}

// ReportRow is one user's or organization's use of the clusters in a report's
// period. For an organization it includes its sub-organizations (the tree
// rolled up). Core-hours are split by where they come from: the scheduler's
// accounting (Usage.Source accounting) or the measured run time × the cores
// asked (estimate); Unmeasured counts ended jobs whose run time is unknown.
type ReportRow struct {
	Key       string         `json:"key"`    // user id, or organization label ("-": none)
	Name      string         `json:"name"`   // the user's or organization's name
	Org       string         `json:"org"`    // user rows: the user's organization
	Parent    string         `json:"parent"` // organization rows: the parent's label
	Calcs     int            `json:"calcs"`
	Outcomes  map[string]int `json:"outcomes"`
	WallHours float64        `json:"wall_hours"`
	// CoreHoursAccounting + CoreHoursEstimate is the row's core-hours.
	CoreHoursAccounting float64 `json:"core_hours_accounting"`
	CoreHoursEstimate   float64 `json:"core_hours_estimate"`
	Unmeasured          int     `json:"unmeasured"`
}

// CoreHours is the row's core-hours from both sources.
func (r ReportRow) CoreHours() float64 { return r.CoreHoursAccounting + r.CoreHoursEstimate }

// outcome is how a calculation counts in a report.
func outcome(c Calculation) string {
	if c.State == StateError {
		return string(StateError)
	}
	out := "active"
	for _, h := range c.History {
		switch h.State {
		case StateSucceeded, StateFailed, StateCancelled, StateTimedOut:
			out = string(h.State)
		case StateReceived: // an admin's retry starts a new round
			out = "active"
		}
	}
	if c.State == StateCancelled {
		out = string(StateCancelled)
	}
	return out
}

func (r *ReportRow) add(c Calculation) {
	r.Calcs++
	if r.Outcomes == nil {
		r.Outcomes = map[string]int{}
	}
	o := outcome(c)
	r.Outcomes[o]++
	switch {
	case c.Usage != nil:
		r.WallHours += float64(c.Usage.WallSeconds) / 3600
		if c.Usage.Source == UsageAccounting {
			r.CoreHoursAccounting += c.Usage.CoreHours()
		} else {
			r.CoreHoursEstimate += c.Usage.CoreHours()
		}
	case o != "active" && o != string(StateError) && c.JobID != "":
		r.Unmeasured++
	}
}

// Report sums the calculations created in [from, to) per user (by "user") or
// per organization with its sub-organizations rolled up (by "org"), largest
// core-hours first. Users and organizations without calculations in the
// period are left out.
func (s *Store) Report(from, to time.Time, by string) ([]ReportRow, error) {
	users, err := s.Users()
	if err != nil {
		return nil, err
	}
	orgs, err := s.Organizations()
	if err != nil {
		return nil, err
	}
	orgByLabel := map[string]Organization{}
	for _, o := range orgs {
		orgByLabel[o.Label] = o
	}
	rows := map[string]*ReportRow{}
	row := func(key string, init func() ReportRow) *ReportRow {
		r := rows[key]
		if r == nil {
			x := init()
			r = &x
			rows[key] = r
		}
		return r
	}
	for _, u := range users {
		calcs, err := s.CalcsOfUser(u.ID, from.Add(-time.Nanosecond), 0)
		if err != nil {
			return nil, err
		}
		for _, c := range calcs {
			if !c.Created.Before(to) || c.Created.Before(from) {
				continue
			}
			if by == "org" {
				// The user's organization and every organization above it.
				label, seen := u.Org, map[string]bool{}
				if label == "" {
					row("-", func() ReportRow { return ReportRow{Key: "-"} }).add(c)
					continue
				}
				for label != "" && !seen[label] {
					seen[label] = true
					o := orgByLabel[label]
					row(label, func() ReportRow { return ReportRow{Key: label, Name: o.Name, Parent: o.Parent} }).add(c)
					label = o.Parent
				}
				continue
			}
			key := strconv.FormatUint(u.ID, 10)
			name := strings.TrimSpace(u.FirstName + " " + u.LastName)
			row(key, func() ReportRow { return ReportRow{Key: key, Name: name, Org: u.Org} }).add(c)
		}
	}
	out := make([]ReportRow, 0, len(rows))
	for _, r := range rows {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.CoreHours() != b.CoreHours() {
			return a.CoreHours() > b.CoreHours()
		}
		if a.Calcs != b.Calcs {
			return a.Calcs > b.Calcs
		}
		return a.Key < b.Key
	})
	return out, nil
}
