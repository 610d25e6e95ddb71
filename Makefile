# Developer shortcuts; README.md gives the commands these run.
GO ?= go
BIN := bin/hpcbot
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: build test lint testbed testbed-stop bench generate

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(BIN) .

test:
	scripts/test.sh

lint:
	scripts/lint.sh

testbed:
	scripts/testbed.sh start

testbed-stop:
	scripts/testbed.sh stop

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

generate:
	$(GO) generate ./...
