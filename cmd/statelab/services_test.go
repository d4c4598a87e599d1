package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

func TestServicesBadFlagsExit2WithOneLine(t *testing.T) {
	tests := []struct {
		args []string
		want string // in the message
	}{
		{[]string{"pricing", "--work", "-1s"}, "--work"},
		{[]string{"pricing", "--max-inflight", "-1"}, "--max-inflight"},
		{[]string{"pricing", "--listen", "nope"}, "--listen"},
		{[]string{"pricing", "extra"}, "extra"},
		{[]string{"catalog", "--sqlite", "a.db", "--postgres", "postgres://x"}, "--postgres"},
		{[]string{"catalog", "--queue", "-1"}, "--queue"},
		{[]string{"catalog", "--drain-delay", "-1s"}, "--drain-delay"},
		{[]string{"app", "--pricing", "ftp://x"}, "--pricing"},
		{[]string{"app", "--catalog", "http://"}, "--catalog"},
		{[]string{"app", "--dependency-timeout", "0s"}, "--dependency-timeout"},
		{[]string{"app", "--dependency-attempts", "0"}, "--dependency-attempts"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stderr bytes.Buffer
			code := NewMain(io.Discard, &stderr).Run(context.Background(), tt.args)
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr: %s", code, stderr.String())
			}
			first, _, _ := strings.Cut(stderr.String(), "\n")
			if !strings.HasPrefix(first, "statelab "+tt.args[0]+": ") || !strings.Contains(first, tt.want) {
				t.Errorf("first line %q does not name %q", first, tt.want)
			}
		})
	}
}
