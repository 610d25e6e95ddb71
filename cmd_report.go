package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"hpcbot/store"
)

// reportDate is the form of --from and --to.
const reportDate = "2006-01-02"

// defaultReportDays is the period of a report without --from.
const defaultReportDays = 30

var cmdReport = &subcommand{
	name:    "report",
	args:    "",
	summary: "usage per user or organization: calculations by outcome, wall hours, core-hours",
	help: `Sums the calculations created from --from to --to (both days included, local
time; default: the last 30 days) per user (--by user) or per organization with
its sub-organizations rolled up (--by org), as a table or CSV. Core-hours come
from the scheduler's accounting where it keeps one (Slurm: sacct ElapsedRaw ×
AllocCPUS, read once when the job ended) and otherwise from the job's measured
run time × the cores it asked for; the two are reported apart. Works while
'hpcbot run' uses the store (it asks the running bot through its control socket).`,
	flags: func(fs *flag.FlagSet, o *options) {
		fs.StringVar(&o.reportFrom, "from", "", "first day, YYYY-MM-DD (default: 30 days before --to)")
		fs.StringVar(&o.reportTo, "to", "", "last day, YYYY-MM-DD (default: today)")
		fs.StringVar(&o.reportBy, "by", "user", "user or org")
		fs.StringVar(&o.reportFormat, "format", "table", "table or csv")
	},
	run: func(o *options) error {
		if err := wantArgs(o, 0, "no arguments, only flags"); err != nil {
			return err
		}
		q, err := parseReportQuery(o.reportFrom, o.reportTo, o.reportBy, time.Now())
		if err != nil {
			return err
		}
		if o.reportFormat != "table" && o.reportFormat != "csv" {
			return usagef("--format %q: want table or csv", o.reportFormat)
		}
		cfg, err := loadConfig(o.config)
		if err != nil {
			return err
		}
		rows, err := fetchReport(cfg.Store.Path, q)
		if err != nil {
			return err
		}
		if o.reportFormat == "csv" {
			return writeReportCSV(o.stdout, q, rows)
		}
		return writeReportTable(o.stdout, q, rows)
	},
}

// reportQuery is a report's period [from, to) and grouping.
type reportQuery struct {
	from, to time.Time
	by       string
}

func (q reportQuery) values() url.Values {
	return url.Values{"from": {q.from.Format(time.RFC3339)}, "to": {q.to.Format(time.RFC3339)}, "by": {q.by}}
}

// parseReportQuery reads the flags: days in local time, --to included.
func parseReportQuery(from, to, by string, now time.Time) (reportQuery, error) {
	if by != "user" && by != "org" {
		return reportQuery{}, usagef("--by %q: want user or org", by)
	}
	day := func(flag, v string) (time.Time, error) {
		t, err := time.ParseInLocation(reportDate, v, time.Local)
		if err != nil {
			return time.Time{}, usagef("--%s %q: want a day as YYYY-MM-DD, e.g. %s", flag, v, now.Format(reportDate))
		}
		return t, nil
	}
	q := reportQuery{by: by}
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.Local)
	q.to = today.AddDate(0, 0, 1)
	if to != "" {
		t, err := day("to", to)
		if err != nil {
			return q, err
		}
		q.to = t.AddDate(0, 0, 1)
	}
	q.from = q.to.AddDate(0, 0, -defaultReportDays)
	if from != "" {
		t, err := day("from", from)
		if err != nil {
			return q, err
		}
		q.from = t
	}
	if !q.from.Before(q.to) {
		return q, usagef("--from %s is after --to", q.from.Format(reportDate))
	}
	return q, nil
}

// fetchReport computes the report from the store, or asks the running daemon.
func fetchReport(path string, q reportQuery) ([]store.ReportRow, error) {
	st, sock, err := openOrControl(path, "report")
	if err != nil {
		return nil, err
	}
	if st != nil {
		defer st.Close()
		return st.Report(q.from, q.to, q.by)
	}
	resp, err := controlClient(sock, 5*time.Minute).Get("http://hpcbot/report?" + q.values().Encode())
	if err != nil {
		return nil, fmt.Errorf("ask the running hpcbot through %s: %w", sock, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("the running hpcbot could not make the report: %s", strings.TrimSpace(string(body)))
	}
	var rows []store.ReportRow
	if err := json.NewDecoder(resp.Body).Decode(&rows); err != nil {
		return nil, fmt.Errorf("report from the running hpcbot: %w", err)
	}
	return rows, nil
}

// serveReport answers GET /report on the control socket with the rows as JSON.
func serveReport(w http.ResponseWriter, r *http.Request, st *store.Store) {
	from, err1 := time.Parse(time.RFC3339, r.URL.Query().Get("from"))
	to, err2 := time.Parse(time.RFC3339, r.URL.Query().Get("to"))
	by := r.URL.Query().Get("by")
	if err := errors.Join(err1, err2); err != nil || (by != "user" && by != "org") {
		http.Error(w, "want from and to (RFC 3339) and by (user or org)", http.StatusBadRequest)
		return
	}
	rows, err := st.Report(from, to, by)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(rows)
}

func hours(h float64) string { return strconv.FormatFloat(h, 'f', 2, 64) }

// reportHeader is the CSV header and the table's columns.
func reportHeader(by string) []string {
	h := []string{"user", "name", "org"}
	if by == "org" {
		h = []string{"org", "name", "parent"}
	}
	h = append(h, "calculations")
	h = append(h, store.ReportOutcomes...)
	return append(h, "wall_hours", "core_hours", "core_hours_accounting", "core_hours_estimate", "unmeasured")
}

func reportRecord(by string, r store.ReportRow) []string {
	third := r.Org
	if by == "org" {
		third = r.Parent
	}
	rec := []string{r.Key, r.Name, third, strconv.Itoa(r.Calcs)}
	for _, o := range store.ReportOutcomes {
		rec = append(rec, strconv.Itoa(r.Outcomes[o]))
	}
	return append(rec, hours(r.WallHours), hours(r.CoreHours()), hours(r.CoreHoursAccounting),
		hours(r.CoreHoursEstimate), strconv.Itoa(r.Unmeasured))
}

func writeReportCSV(w io.Writer, q reportQuery, rows []store.ReportRow) error {
	cw := csv.NewWriter(w)
	cw.Write(reportHeader(q.by))
	for _, r := range rows {
		cw.Write(reportRecord(q.by, r))
	}
	cw.Flush()
	return cw.Error()
}

func writeReportTable(w io.Writer, q reportQuery, rows []store.ReportRow) error {
	fmt.Fprintf(w, "Calculations created from %s to %s, by %s\n\n", q.from.Format(reportDate),
		q.to.AddDate(0, 0, -1).Format(reportDate), q.by)
	if len(rows) == 0 {
		_, err := fmt.Fprintln(w, "No calculations in this period.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join(reportHeader(q.by), "\t")+"\t")
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(reportRecord(q.by, r), "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, "\ncore_hours = core_hours_accounting (the scheduler's accounting: sacct ElapsedRaw × AllocCPUS)\n"+
		"           + core_hours_estimate (measured run time × cores asked, where the scheduler keeps no accounting);\n"+
		"unmeasured: ended jobs whose run time is unknown (not in core_hours).")
	return err
}
