package scheduler

import (
	"os"
	"os/user"
	"strings"
	"testing"

	"hpcbot/plugins"
)

// TestValidateRunAs: the local scheduler refuses an interpreter as program unless
// the jobs run as another user (run_as) or the operator accepts the risk
// (allow_same_user); each error names its key and the way out.
func TestValidateRunAs(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	other := ""
	for _, name := range []string{os.Getenv("HPCBOT_TEST_SSH_USER"), "nobody", "daemon"} {
		if u, err := user.Lookup(name); name != "" && err == nil && u.Uid != me.Uid && u.Uid != "0" {
			other = name
			break
		}
	}
	if other == "" {
		t.Fatal("no account other than ours and root on this system (nobody, daemon)")
	}
	cluster := func(sched, runAs string, same bool, programs ...string) ClusterConfig {
		c := ClusterConfig{Cluster: plugins.Cluster{Label: "here", Scheduler: sched, UploadPath: "work", RunAs: runAs, AllowSameUser: same}}
		if sched != "local" {
			c.Connection = plugins.Connection{Host: "login", User: "chem", KeyPath: "/k"}
		}
		for _, p := range programs {
			c.Runners = append(c.Runners, plugins.RunnerRule{Program: p})
		}
		return c
	}
	for _, tc := range []struct {
		name string
		c    ClusterConfig
		want []string // substrings of the error; none: valid
	}{
		{"wc as hpcbot's user (the quick start)", cluster("local", "", false, "wc"), nil},
		{"python as hpcbot's user", cluster("local", "", false, "wc", "/usr/bin/python3.11"),
			[]string{`clusters[0].runners[1].program: "/usr/bin/python3.11" would run as hpcbot's own user`, `run_as = "USER"`, "allow_same_user = true"}},
		{"sh as hpcbot's user", cluster("local", "", false, "sh"), []string{"clusters[0].runners[0].program", "hpcbot's own user"}},
		// Not interpreters by name, but each runs what a user sends.
		{"a wrapper as hpcbot's user", cluster("local", "", false, "timeout"), []string{"clusters[0].runners[0].program", "run_as"}},
		{"a rarer shell as hpcbot's user", cluster("local", "", false, "rbash"), []string{"clusters[0].runners[0].program", "run_as"}},
		{"Gaussian as hpcbot's user", cluster("local", "", false, "g16"), []string{"clusters[0].runners[0].program", "External"}},
		{"sh, allowed", cluster("local", "", true, "sh"), nil},
		{"sh as another user", cluster("local", other, false, "sh", "Rscript"), nil},
		{"run_as root", cluster("local", "root", false, "sh"), []string{"clusters[0].run_as", "root"}},
		{"run_as ourselves", cluster("local", me.Username, false, "sh"), []string{"clusters[0].run_as", "hpcbot's own user"}},
		{"run_as missing", cluster("local", "hpcbot-no-such-user", false, "sh"), []string{"clusters[0].run_as", "useradd"}},
		{"both", cluster("local", other, true, "sh"), []string{"clusters[0].allow_same_user", "remove one"}},
		{"run_as on slurm", cluster("slurm", other, false, "sh"), []string{"clusters[0].run_as", "local scheduler only"}},
		{"allow_same_user on ssh", cluster("ssh", "", true, "sh"), []string{"clusters[0].allow_same_user", "local scheduler only"}},
		{"sh on slurm", cluster("slurm", "", false, "sh"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate("clusters[0]", []string{"local", "pbs", "slurm", "ssh"}, nil)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted; want an error with %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
