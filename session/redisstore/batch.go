package redisstore

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/statelab/statelab/session"
)

// PutBatch runs puts as one pipeline of putScript calls: one round trip to
// Redis (per cluster node) instead of one per record, each put still its
// own atomic compare-and-swap with Put's results. With Options.Wait it
// runs them one by one, since every write waits for its replicas on its
// own connection.
func (s *Store) PutBatch(ctx context.Context, puts []session.BatchPut) []session.BatchResult {
	out := make([]session.BatchResult, len(puts))
	if s.wait != 0 {
		for i, p := range puts {
			out[i].Version, out[i].Err = s.Put(ctx, p.Key, p.Record)
		}
		return out
	}
	args := make([][]any, len(puts))
	var todo []int
	for i, p := range puts {
		if out[i].Err = s.check(ctx, "put", p.Key); out[i].Err == nil {
			args[i], out[i].Err = putArgs(p.Record)
		}
		if out[i].Err == nil {
			todo = append(todo, i)
		}
	}
	// A Redis that restarted or failed over has lost its script cache:
	// the puts answered NOSCRIPT did not run, so load the script and send
	// them once more.
	for attempt := 0; len(todo) > 0 && attempt < 2; attempt++ {
		todo = s.pipelinePuts(ctx, puts, args, todo, out)
		if len(todo) > 0 {
			if err := putScript.Load(ctx, s.client).Err(); err != nil {
				for _, i := range todo {
					out[i].Err = s.fail(ctx, "put", err)
				}
				return out
			}
		}
	}
	return out
}

// pipelinePuts sends the puts numbered todo in one pipeline, fills their
// results in out, and returns those answered NOSCRIPT (not run).
func (s *Store) pipelinePuts(ctx context.Context, puts []session.BatchPut, args [][]any, todo []int, out []session.BatchResult) []int {
	cmds := make([]*redis.Cmd, len(todo))
	_, _ = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for j, i := range todo {
			cmds[j] = p.EvalSha(ctx, putScript.Hash(), []string{s.prefix + puts[i].Key}, args[i]...)
		}
		return nil
	})
	var again []int
	for j, i := range todo {
		res, err := cmds[j].Result()
		switch {
		case err != nil && redis.HasErrorPrefix(err, "NOSCRIPT"):
			again = append(again, i)
			out[i].Err = s.fail(ctx, "put", err)
		case err != nil:
			out[i].Err = s.fail(ctx, "put", err)
		default:
			out[i].Version, out[i].Err = putResult(puts[i].Record, res)
		}
	}
	return again
}
