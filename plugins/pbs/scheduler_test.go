package pbs

import (
	"testing"
	"time"

	"hpcbot/plugins"
)

func TestConfigure(t *testing.T) {
	d := mustNew(t, "pro")
	if err := d.Configure(plugins.Cluster{Flavor: "torque", Options: map[string]string{"timezone": "Europe/Prague"}}); err != nil {
		t.Fatal(err)
	}
	if d.Flavor() != FlavorTorque || d.Location.String() != "Europe/Prague" {
		t.Errorf("flavor %q, location %v", d.Flavor(), d.Location)
	}
	if got := d.PollCommand(refs("1.s"), nil); got != "qstat -f 1.s" {
		t.Errorf("poll after Configure = %q", got)
	}
	// A summer time in Prague is UTC+2.
	if got := d.parseTime("Tue Oct  4 21:23:33 2022"); !got.Equal(time.Date(2022, 10, 4, 19, 23, 33, 0, time.UTC)) {
		t.Errorf("parseTime = %v", got.UTC())
	}
	if err := d.Configure(plugins.Cluster{}); err != nil || d.Flavor() != FlavorPro || d.Location != time.Local {
		t.Errorf("defaults: %v, %q, %v", err, d.Flavor(), d.Location)
	}
	for _, c := range []plugins.Cluster{{Flavor: "lsf"}, {Options: map[string]string{"timezone": "Mars/Olympus"}}} {
		if err := d.Configure(c); err == nil || plugins.KindOf(err) != plugins.KindPermanent {
			t.Errorf("Configure(%+v) = %v, want a permanent error", c, err)
		}
	}
	if s := NewScheduler(); s == nil {
		t.Error("NewScheduler returned nil")
	}
}
