package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestProbeSet replays the whole probe set against the balancer (statelab
// lb's defaults) and requires the expected verdict on each: first status,
// no more requests at the backend than the client sent, none unparsed.
// HAProxy is not needed: the comparison is the program's, not the test's.
func TestProbeSet(t *testing.T) {
	var out bytes.Buffer
	err := runProbe(&out, "", "")
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if n := strings.Count(out.String(), "\n"); n != len(probes())+1 {
		t.Fatalf("table has %d lines, want a header and %d probes:\n%s", n, len(probes()), out.String())
	}
}
