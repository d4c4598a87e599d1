package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
)

func TestPlayBadFlagsExit2WithOneLine(t *testing.T) {
	tests := []struct {
		args []string
		want string // in the message
	}{
		{[]string{"--strategy", "magic"}, "--strategy"},
		{[]string{"--replicas", "0"}, "--replicas"},
		{[]string{"--replicas", "10"}, "--replicas"},
		{[]string{"--replicas", "many"}, "-replicas"},
		{[]string{"--bogus"}, "bogus"},
		{[]string{"extra"}, "extra"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stderr bytes.Buffer
			code := NewMain(io.Discard, &stderr).Run(context.Background(), append([]string{"play"}, tt.args...))
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr: %s", code, stderr.String())
			}
			first, _, _ := strings.Cut(stderr.String(), "\n")
			if !strings.HasPrefix(first, "statelab play: ") || !strings.Contains(first, tt.want) {
				t.Errorf("first line %q does not name %q", first, tt.want)
			}
		})
	}
}

func TestPlayEnvironmentDefaults(t *testing.T) {
	t.Setenv("STATELAB_STRATEGY", "magic")
	var stderr bytes.Buffer
	if code := NewMain(io.Discard, &stderr).Run(context.Background(), []string{"play"}); code != 2 || !strings.Contains(stderr.String(), "magic") {
		t.Fatalf("STATELAB_STRATEGY=magic: exit %d, stderr %q; want 2 naming the value", code, stderr.String())
	}
}

// TestPlayBusyAddress fails at once, before any cluster starts, when the
// page's address is taken.
func TestPlayBusyAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var stderr bytes.Buffer
	code := NewMain(io.Discard, &stderr).Run(context.Background(), []string{"play", "--listen", ln.Addr().String()})
	if code != 1 || !strings.Contains(stderr.String(), "listen on "+ln.Addr().String()) {
		t.Fatalf("exit %d, stderr %q; want 1 naming the address", code, stderr.String())
	}
	if strings.Contains(stderr.String(), "starting a") {
		t.Fatal("a cluster was started although the page could not listen")
	}
}
