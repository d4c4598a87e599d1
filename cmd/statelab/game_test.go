package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

func TestGameBadFlagsExit2WithOneLine(t *testing.T) {
	tests := []struct {
		args []string
		want string // in the message
	}{
		{[]string{"--strategy", "magic"}, "--strategy"},
		{[]string{"--strategy", "checkpoint"}, "--store"},
		{[]string{"--strategy", "replicated", "--store", "redis", "--redis", "redis://x"}, "--secret"},
		{[]string{"--strategy", "external", "--store", "floppy"}, "--store"},
		{[]string{"--strategy", "checkpoint", "--store", "redis"}, "--redis"},
		{[]string{"--strategy", "checkpoint", "--store", "postgres"}, "--postgres"},
		{[]string{"--strategy", "checkpoint", "--store", "sqlite", "--sqlite", ""}, "--sqlite"},
		{[]string{"--tick", "0s"}, "--tick"},
		{[]string{"--checkpoint", "-1s"}, "--checkpoint"},
		{[]string{"--lease", "10ms"}, "--lease"},
		{[]string{"--secret", "short"}, "--secret"},
		{[]string{"--id", "a b"}, "--id"},
		{[]string{"--peers", "127.0.0.1:1"}, "--cluster-listen"},
		{[]string{"--cluster-listen", "nope"}, "--cluster-listen"},
		{[]string{"--listen", "nope"}, "--listen"},
		{[]string{"--idle", "-1s"}, "--idle"},
		{[]string{"--bogus"}, "bogus"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stderr bytes.Buffer
			code := NewMain(io.Discard, &stderr).Run(context.Background(), append([]string{"game"}, tt.args...))
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr: %s", code, stderr.String())
			}
			first, _, _ := strings.Cut(stderr.String(), "\n")
			if !strings.HasPrefix(first, "statelab game: ") || !strings.Contains(first, tt.want) {
				t.Errorf("first line %q does not name %q", first, tt.want)
			}
		})
	}
}
