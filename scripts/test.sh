#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, vet, the test bed (real sshd and
# Slurm on 127.0.0.1, installed with apt-get on first use: needs root), then every
# test with the race detector. Usage: scripts/test.sh [go test flags, e.g. -run X]
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "not gofmt-formatted (run gofmt -w):"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== test bed"
scripts/testbed.sh start
eval "$(scripts/testbed.sh env)"

echo "== go test -race"
go test -race -count=1 -timeout 25m "$@" ./...
