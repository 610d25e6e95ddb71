package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at build time: go build -ldflags "-X main.version=1.2.3".
var version = "dev"

var cmdVersion = &subcommand{
	name:    "version",
	summary: "print the version of hpcbot and of Go it was built with",
	run: func(o *options) error {
		if err := wantArgs(o, 0, "no arguments"); err != nil {
			return err
		}
		rev := ""
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" && len(s.Value) >= 12 {
					rev = " (" + s.Value[:12] + ")"
				}
			}
		}
		fmt.Fprintf(o.stdout, "hpcbot %s%s %s %s/%s\n", version, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	},
}
