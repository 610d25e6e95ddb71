// Command hpcbot is a Telegram bot that runs chemists' calculations on HPC clusters.
// See README.md; `hpcbot help` lists the subcommands.
package main

import "os"

func main() {
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}
