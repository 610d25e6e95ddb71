#!/bin/sh
# gen.sh regenerates hpcbot.pb.go and hpcbot_grpc.pb.go from hpcbot.proto.
# Run it through `go generate ./plugins/...`. It needs protoc (Debian's
# protobuf-compiler, 3.21.12 made the committed files) and installs the two Go
# generators at pinned versions into a temporary folder, so the output does not
# depend on whatever happens to be on PATH:
#   protoc-gen-go      google.golang.org/protobuf v1.36.12 (the module's protobuf version)
#   protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc v1.6.2 (works with grpc v1.85.0)
# Building hpcbot never needs protoc: the generated files are committed.
set -eu
cd "$(dirname "$0")"
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
GOBIN=$bin go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
GOBIN=$bin go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
PATH=$bin:$PATH protoc --proto_path=. \
	--go_out=. --go_opt=paths=source_relative \
	--go-grpc_out=. --go-grpc_opt=paths=source_relative \
	hpcbot.proto
