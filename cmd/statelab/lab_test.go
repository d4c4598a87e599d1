package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestLabDemoUsage checks that bad command lines of lab and demo are refused
// with one line naming the flag and exit status 2, before anything starts.
func TestLabDemoUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"lab"}, "--strategy is required"},
		{[]string{"lab", "--strategy", "memcached"}, "--strategy"},
		{[]string{"lab", "--strategy", "sticky", "--scenario", "earthquake"}, "--scenario"},
		{[]string{"lab", "--strategy", "sticky", "--rate", "-5"}, "rate"},
		{[]string{"lab", "--strategy", "sticky", "--replicas", "0", "--scenario", "failover", "--duration", "100ms"}, "duration"},
		{[]string{"lab", "--strategy", "sticky", "--scenario", "tabs", "--tabs", "1"}, "tabs"},
		{[]string{"lab", "--strategy", "sticky", "--bogus"}, "bogus"},
		{[]string{"lab", "--sweep", "nodes=1,2"}, "--sweep"},
		{[]string{"lab", "--sweep", "replicas=1,0"}, "--sweep"},
		{[]string{"lab", "--sweep", "replicas=1,2", "--strategy", "client,nope"}, "--strategy"},
		{[]string{"lab", "--sweep", "replicas=1", "--skew", "0.95"}, "--skew"},
		{[]string{"lab", "--sweep", "replicas=1", "--probe", "100ms"}, "probe"},
		{[]string{"lab", "--service", "chess", "--strategy", "sticky"}, "--service"},
		{[]string{"lab", "--service", "game", "--strategy", "sticky"}, "--strategy"},
		{[]string{"lab", "--service", "game", "--strategy", "memory", "--scenario", "tabs"}, "--scenario"},
		{[]string{"lab", "--service", "game", "--strategy", "memory", "--rooms", "-1"}, "rooms"},
		{[]string{"lab", "--service", "game", "--strategy", "checkpoint", "--scenario", "pause", "--replicas", "1"}, "pause needs at least 2 replicas"},
		{[]string{"lab", "--strategy", "cache", "--redis-mode", "ring"}, "Redis mode"},
		{[]string{"lab", "--strategy", "cache", "--redis-wait", "1"}, "--redis-wait"},
		{[]string{"lab", "--strategy", "cache", "--scenario", "flaky", "--store-resets", "1.5"}, "store resets"},
		{[]string{"lab", "--strategy", "replicated", "--repl-quorum", "most"}, "quorum"},
		{[]string{"demo", "--strategies", "naive,nope"}, "--strategies"},
		{[]string{"demo", "extra"}, "unexpected argument"},
		{[]string{"demo", "--redis-mode", "ring"}, "Redis mode"},
		{[]string{"demo", "--redis-wait", "1"}, "--redis-wait"},
		{[]string{"lab", "--strategy", "sticky", "--target-admin", "http://127.0.0.1:9"}, "need --target"},
		{[]string{"lab", "--strategy", "sticky", "--kill-cmd", "true"}, "need --target"},
		{[]string{"lab", "--strategy", "sticky", "--target", "ftp://127.0.0.1:9"}, "not an http"},
		{[]string{"lab", "--strategy", "sticky", "--target", "http://127.0.0.1:9", "--rate", "501"}, "at most 500"},
		{[]string{"lab", "--strategy", "sticky", "--target", "http://127.0.0.1:9", "--duration", "11m"}, "at most 10m"},
		{[]string{"demo", "--target", "http://127.0.0.1:9"}, "--strategies"},
		{[]string{"demo", "--target", "http://127.0.0.1:9", "--strategies", "sticky,cache"}, "--strategies"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := NewMain(&stdout, &stderr).Run(context.Background(), tt.args)
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr: %s", code, stderr.String())
			}
			first, _, _ := strings.Cut(stderr.String(), "\n")
			if !strings.Contains(first, tt.want) {
				t.Errorf("first line %q does not mention %q", first, tt.want)
			}
		})
	}
}

// TestLabTargetNamedOnCommandLine checks that a target only comes from the
// command line: STATELAB_TARGET left in the environment is refused.
func TestLabTargetNamedOnCommandLine(t *testing.T) {
	t.Setenv("STATELAB_TARGET", "http://127.0.0.1:9")
	var stdout, stderr bytes.Buffer
	code := NewMain(&stdout, &stderr).Run(context.Background(), []string{"lab", "--strategy", "sticky"})
	if code != 2 || !strings.Contains(stderr.String(), "--target must be given on the command line") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}
