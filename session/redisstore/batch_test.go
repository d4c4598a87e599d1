package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/redisstore"
)

// TestPutBatch checks that a batch gives each put exactly Put's result:
// an update on the right version succeeds, a stale version and a
// create-only put over a live record conflict without changing anything,
// a bad key is refused, and none affects the others.
func TestPutBatch(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	v1, err := s.Put(ctx, "a", session.Record{Data: []byte("a1"), IdleExpiry: exp})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "b", session.Record{Data: []byte("b1"), IdleExpiry: exp}); err != nil {
		t.Fatal(err)
	}
	res := s.PutBatch(ctx, []session.BatchPut{
		{Key: "a", Record: session.Record{Data: []byte("a2"), Version: v1, IdleExpiry: exp}},
		{Key: "b", Record: session.Record{Data: []byte("b2"), Version: 1, IdleExpiry: exp}},
		{Key: "a", Record: session.Record{Data: []byte("a3"), IdleExpiry: exp}},
		{Key: "c", Record: session.Record{Data: []byte("c1"), IdleExpiry: exp}},
		{Key: "bad key!", Record: session.Record{Data: []byte("x"), IdleExpiry: exp}},
	})
	if len(res) != 5 {
		t.Fatalf("%d results for 5 puts", len(res))
	}
	if res[0].Err != nil || res[0].Version != v1+1 {
		t.Errorf("update on the stored version: %+v", res[0])
	}
	if !errors.Is(res[1].Err, session.ErrConflict) || !errors.Is(res[2].Err, session.ErrConflict) {
		t.Errorf("stale version / create over a live record: %v / %v, want conflicts", res[1].Err, res[2].Err)
	}
	if res[3].Err != nil || res[3].Version == 0 {
		t.Errorf("create: %+v", res[3])
	}
	if res[4].Err == nil || errors.Is(res[4].Err, session.ErrConflict) || errors.Is(res[4].Err, session.ErrUnavailable) {
		t.Errorf("bad key: %v, want a plain error", res[4].Err)
	}
	for key, want := range map[string]string{"a": "a2", "b": "b1", "c": "c1"} {
		if rec, err := s.Get(ctx, key); err != nil || string(rec.Data) != want {
			t.Errorf("%s = %q, %v; want %q", key, rec.Data, err, want)
		}
	}
}

// TestPutBatchAfterScriptFlush checks that a batch sent to a Redis that
// lost its script cache (a restart, a failover) loads the script again
// and writes every record, on a redis-server of its own.
func TestPutBatchAfterScriptFlush(t *testing.T) {
	sock, _ := startRedis(t)
	ctx := context.Background()
	s, err := redisstore.OpenURL(ctx, "unix://"+sock, redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	exp := time.Now().Add(time.Hour)
	puts := []session.BatchPut{{Key: "a", Record: session.Record{Data: []byte("a"), IdleExpiry: exp}}, {Key: "b", Record: session.Record{Data: []byte("b"), IdleExpiry: exp}}}
	for round := range 2 {
		c := redis.NewClient(&redis.Options{Network: "unix", Addr: sock})
		if err := c.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		c.Close()
		for i, r := range s.PutBatch(ctx, puts) {
			if r.Err != nil {
				t.Fatalf("round %d put %d: %v", round, i, r.Err)
			}
			puts[i].Record.Version = r.Version
		}
	}
	for _, key := range []string{"a", "b"} {
		if rec, err := s.Get(ctx, key); err != nil || string(rec.Data) != key {
			t.Errorf("%s = %q, %v", key, rec.Data, err)
		}
	}
}
