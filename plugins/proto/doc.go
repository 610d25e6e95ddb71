// Package proto is the generated Go code of hpcbot's plugin protocol
// (hpcbot.proto): the gRPC services Scheduler and Runner that hpcbot and its
// plugin processes speak over hashicorp/go-plugin.
//
// Do not edit the *.pb.go files; change hpcbot.proto and run
// `go generate ./plugins/...`, which runs gen.sh (protoc plus the pinned
// generators protoc-gen-go v1.36.12 and protoc-gen-go-grpc v1.6.2). Code outside
// package plugins should use the Go contracts in hpcbot/plugins, not this package.
package proto

//go:generate sh gen.sh
