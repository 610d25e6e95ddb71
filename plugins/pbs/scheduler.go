package pbs

import (
	"strings"
	"time"

	"hpcbot/plugins"
	"hpcbot/plugins/cluster"
	"hpcbot/plugins/sshc"
)

// OptionTimezone names the cluster option (plugins.Cluster.Options) that gives
// the zone qstat prints its times in, as an IANA name ("Europe/Prague").
// Without it the bot host's zone is used.
const OptionTimezone = "timezone"

var _ cluster.ConfigurableDialect = (*Dialect)(nil)

// NewScheduler returns the built-in `pbs` scheduler plugin: this dialect over
// SSH (sshc). The flavor and time zone come from the cluster's configuration
// when the core calls Configure.
func NewScheduler(opts ...cluster.Option) *cluster.Scheduler {
	d := &Dialect{flavor: FlavorPro, Location: time.Local}
	return cluster.New(d, sshc.Transport, opts...)
}

// Configure takes the flavor from c.Flavor ("pro" when empty, or "torque") and
// the time zone from c.Options["timezone"]. The generic Scheduler calls it
// before any other method.
func (d *Dialect) Configure(c plugins.Cluster) error {
	nd, err := New(c.Flavor)
	if err != nil {
		return err
	}
	loc := time.Local
	if tz := strings.TrimSpace(c.Options[OptionTimezone]); tz != "" {
		loc, err = time.LoadLocation(tz)
		if err != nil {
			return plugins.Errorf(plugins.KindPermanent,
				"pbs: options.%s = %q: not a time zone; use an IANA name such as \"Europe/Berlin\" (%w)", OptionTimezone, tz, err)
		}
	}
	d.flavor, d.Location = nd.flavor, loc
	return nil
}
