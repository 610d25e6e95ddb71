// What every transfer shares: local errors, workers in parallel, and the
// reader and writer that stop a pipelined transfer when its ctx ends.

package sshc

import (
	"context"
	"io"

	"golang.org/x/sync/errgroup"

	"hpcbot/plugins"
)

// localError marks a failure on this host's side of a transfer.
func localError(err error) error {
	return &plugins.Error{Kind: plugins.KindPermanent, Msg: "local", Err: err}
}

// parallel calls fn(ctx, i) for i in [0, n) on up to workers goroutines and
// returns the first error; after an error no new calls start and the ctx
// given to running ones is cancelled.
func parallel(ctx context.Context, workers, n int, fn func(ctx context.Context, i int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(workers, 1))
	for i := range n {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if gctx.Err() != nil { // an earlier call failed while this one waited for a worker
				return nil
			}
			return fn(gctx, i)
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// ctxReader stops a pipelined upload when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = localError(err)
	}
	return n, err
}

// ctxWriter stops a pipelined download when ctx ends; write errors are local.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (w ctxWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := w.w.Write(p)
	if err != nil {
		err = localError(err)
	}
	return n, err
}
