#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, vet and staticcheck
# (scripts/lint.sh), the test bed (real sshd,
# Slurm and slurmdbd on 127.0.0.1, installed with apt-get on first use: needs root),
# then every test with the race detector. Usage: scripts/test.sh [go test flags, e.g. -run X]
# With CI=true (as in CI) an integration test whose service is missing fails
# instead of skipping. The Slurm tests cover "no accounting" too, by pointing sacct
# at a copy of slurm.conf without it, so one bed with accounting serves both.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/lint.sh

echo "== test bed"
scripts/testbed.sh start --accounting
eval "$(scripts/testbed.sh env)"

echo "== go test -race"
go test -race -count=1 -timeout 25m "$@" ./...
