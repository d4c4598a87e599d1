package main

import (
	"runtime"
	"testing"
)

func TestLBProcs(t *testing.T) {
	prev := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })

	runtime.SetDefaultGOMAXPROCS()
	def := runtime.GOMAXPROCS(0)
	if got := lbProcs(""); got != 2*def || runtime.GOMAXPROCS(0) != 2*def {
		t.Fatalf("without GOMAXPROCS: lbProcs = %d, GOMAXPROCS = %d; want %d", got, runtime.GOMAXPROCS(0), 2*def)
	}
	if got := lbProcs(""); got != 2*def {
		t.Fatalf("a second call: %d, want %d again (not doubled twice)", got, 2*def)
	}
	runtime.GOMAXPROCS(5)
	if got := lbProcs("5"); got != 5 || runtime.GOMAXPROCS(0) != 5 {
		t.Fatalf("with GOMAXPROCS=5: lbProcs = %d, GOMAXPROCS = %d; want 5 untouched", got, runtime.GOMAXPROCS(0))
	}
}
