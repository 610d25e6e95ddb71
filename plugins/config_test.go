package plugins

import "testing"

func TestInterpreter(t *testing.T) {
	for prog, want := range map[string]bool{
		"sh": true, "/bin/bash": true, "dash": true, "zsh": true, "python": true, "python3": true,
		"python3.11": true, "/usr/bin/python3.12": true, "perl": true, "perl5.36": true, "ruby": true,
		"ruby3.1": true, "node": true, "lua5.4": true, "Rscript": true, "pypy3": true, "/usr/bin/env": true,
		"awk": true, "julia": true,
		"wc": false, "g16": false, "orca": false, "/opt/orca/orca": false, "orca_submit": false,
		"pw.x": false, "vasp_std": false, "echo": false, "cp2k.psmp": false, "shelxl": false, "": false,
	} {
		if got := Interpreter(prog); got != want {
			t.Errorf("Interpreter(%q) = %v, want %v", prog, got, want)
		}
	}
}
