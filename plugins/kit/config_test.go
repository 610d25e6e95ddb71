package kit

import "testing"

// TestHarmlessAsBotUser: only counting and checksum tools may run as hpcbot's
// own user; everything that can run code a user sends is refused, interpreters
// behind wrappers and chemistry programs included.
func TestHarmlessAsBotUser(t *testing.T) {
	for prog, want := range map[string]bool{
		"wc": true, "/usr/bin/wc": true, "sha256sum": true, "md5sum": true,
		"sh": false, "/bin/bash": false, "rbash": false, "yash": false, "python3.11": false, "perl5.36-x86_64-linux-gnu": false,
		"timeout": false, "nice": false, "env": false, "mpirun": false, "find": false, "xargs": false, "stdbuf": false,
		"g16": false, "orca": false, "/opt/orca/orca": false, "psi4": false, "xtb": false, "cat": false, "head": false,
		"": false, "wc2": false, "/tmp/wc/../sh": false,
	} {
		if got := HarmlessAsBotUser(prog); got != want {
			t.Errorf("HarmlessAsBotUser(%q) = %v, want %v", prog, got, want)
		}
	}
}
