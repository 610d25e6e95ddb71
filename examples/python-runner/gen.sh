#!/bin/sh
# gen.sh regenerates hpcbot_pb2.py and hpcbot_pb2_grpc.py from
# ../../plugins/proto/hpcbot.proto with Debian's protoc (protobuf-compiler
# 3.21.12) and gRPC's Python generator (protobuf-compiler-grpc 1.51.1, the
# version of python3-grpcio). Debian's python3-grpc-tools bundles protoc 3.5,
# which predates proto3 `optional` fields, so it cannot read hpcbot.proto.
set -eu
cd "$(dirname "$0")"
protoc --proto_path=../../plugins/proto \
	--python_out=. --grpc_python_out=. \
	--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin \
	hpcbot.proto
