#!/usr/bin/env bash
# The static checks, as CI runs them (scripts/test.sh calls this first; so does
# `make lint`): gofmt, go vet, and staticcheck at a pinned version, so that a
# new release cannot turn CI red on its own. Configuration: staticcheck.conf
# files beside the code they concern (https://staticcheck.dev/docs/configuration/).
set -euo pipefail
cd "$(dirname "$0")/.."

STATICCHECK=honnef.co/go/tools/cmd/staticcheck@v0.8.2

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "not gofmt-formatted (run gofmt -w):"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== staticcheck"
go run "$STATICCHECK" ./...
