package balancer

import (
	"testing"
)

func TestRoundRobinThroughProxy(t *testing.T) {
	a := newTestBackend(t, "a", nil)
	b := newTestBackend(t, "b", nil)
	_, url := startLB(t, Config{Backends: []BackendConfig{a.config(), b.config()}})
	c := newClient(t)
	seen := map[string]int{}
	for i := 0; i < 20; i++ {
		code, by, body := get(t, c, url+"/x")
		if code != 200 {
			t.Fatalf("status %d body %q", code, body)
		}
		seen[by]++
	}
	if seen["a"] != 10 || seen["b"] != 10 {
		t.Fatalf("spread %v, want 10/10", seen)
	}
}
