package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/statelab/statelab/internal/testenv"
)

// TestPutScriptRetryIsIdempotent runs the Put script twice with the same
// token, as go-redis does when it retries a command whose reply was lost,
// and checks that the second run reports the first run's version instead of
// a conflict; a different token still conflicts.
func TestPutScriptRetryIsIdempotent(t *testing.T) {
	o, err := redis.ParseURL(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := "statelab-test:retry:" + time.Now().Format("150405.000000000")
	t.Cleanup(func() { _ = c.Del(context.Background(), key).Err() })
	exp := time.Now().Add(time.Minute).UnixMilli()
	run := func(expected, token string) any {
		t.Helper()
		res, err := putScript.Run(ctx, c, []string{key}, expected, "data", exp, 0, exp, token).Result()
		if err != nil {
			t.Fatalf("putScript: %v", err)
		}
		return res
	}
	tests := []struct {
		name, expected, token string
		conflict              bool
	}{
		{"create", "0", "tok1", false},
		{"retried create", "0", "tok1", false},
		{"other create", "0", "tok2", true},
	}
	var created any
	for _, tt := range tests {
		res := run(tt.expected, tt.token)
		if got := res == int64(-1); got != tt.conflict {
			t.Fatalf("%s: result %v, conflict = %v, want %v", tt.name, res, got, tt.conflict)
		}
		if tt.name == "create" {
			created = res
		}
		if tt.name == "retried create" && res != created {
			t.Fatalf("retried create returned %v, want the first run's %v", res, created)
		}
	}
	v, ok := created.(string)
	if !ok {
		t.Fatalf("create returned %T, want a string version", created)
	}
	first := run(v, "tok3")
	if first == int64(-1) {
		t.Fatal("update with the current version conflicted")
	}
	if again := run(v, "tok3"); again != first {
		t.Fatalf("retried update returned %v, want the first run's %v", again, first)
	}
	if other := run(v, "tok4"); other != int64(-1) {
		t.Fatalf("stale update with a new token returned %v, want a conflict", other)
	}
}
