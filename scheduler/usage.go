package scheduler

import (
	"strconv"
	"time"

	"hpcbot/plugins"
	"hpcbot/store"
)

// jobUsage is what an ended job used: the scheduler's accounting where it has
// one (Slurm: sacct ElapsedRaw × AllocCPUS), else the job's measured run time
// (the plugin's start and end, or the first running and the end seen by the
// polls) × the cores it asked for. nil when not even the run time is known.
func jobUsage(c store.Calculation, js plugins.JobStatus, now time.Time) *store.Usage {
	if js.AllocCPUs > 0 {
		return &store.Usage{WallSeconds: int64(js.Elapsed / time.Second), Cores: js.AllocCPUs, Source: store.UsageAccounting}
	}
	start, end := js.Started, js.Ended
	if start.IsZero() {
		for _, h := range c.History {
			if h.State == store.StateSubmitted { // a new round starts the count again
				start = time.Time{}
			}
			if h.State == store.StateRunning && start.IsZero() {
				start = h.At
			}
		}
	}
	if end.IsZero() {
		end = now
	}
	if start.IsZero() || end.Before(start) {
		return nil
	}
	return &store.Usage{WallSeconds: int64(end.Sub(start) / time.Second), Cores: coresAsked(c.Resources), Source: store.UsageEstimate}
}

// coresAsked is how many cores a job's resources ask for: Slurm's ntasks ×
// cpus-per-task, PBS's ncpus, or 1.
func coresAsked(res map[string]string) int {
	num := func(k string) int {
		n, err := strconv.Atoi(res[k])
		if err != nil || n < 1 {
			return 1
		}
		return n
	}
	if _, ok := res["ncpus"]; ok {
		return num("ncpus")
	}
	return num("ntasks") * num("cpus-per-task")
}
