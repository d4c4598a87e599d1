package strategy

import (
	"errors"
	"slices"
	"testing"

	"github.com/statelab/statelab/balancer"
	"github.com/statelab/statelab/internal/stores"
)

func TestTable(t *testing.T) {
	tests := []struct {
		s        Strategy
		store    stores.Kind
		policy   string
		external bool
	}{
		{"naive", "memory", "round_robin", false},
		{"sticky", "memory", "sticky", false},
		{"replicated", "replicated", "sticky", false},
		{"cache", "redis", "round_robin", true},
		{"database", "sqlite", "round_robin", true},
		{"client", "cookie", "round_robin", false},
	}
	var names []Strategy
	for _, tt := range tests {
		names = append(names, tt.s)
		got, err := Parse(" " + string(tt.s) + " ")
		if err != nil || got != tt.s {
			t.Errorf("Parse(%q) = %q, %v", tt.s, got, err)
		}
		spec := tt.s.Spec()
		if spec.Strategy != tt.s || spec.Store != tt.store || spec.Policy != tt.policy || spec.External() != tt.external {
			t.Errorf("%s: %+v external=%v, want store %s policy %s external %v", tt.s, spec, spec.External(), tt.store, tt.policy, tt.external)
		}
	}
	if !slices.Equal(All(), names) {
		t.Errorf("All() = %v, want %v", All(), names)
	}
}

// TestRowsComplete checks what every row must have, so that a new row
// cannot forget a field the playground or the report shows.
func TestRowsComplete(t *testing.T) {
	seen := map[Strategy]bool{}
	for _, spec := range Specs() {
		if seen[spec.Strategy] {
			t.Errorf("%s: two rows", spec.Strategy)
		}
		seen[spec.Strategy] = true
		if _, err := stores.ParseKind(string(spec.Store)); err != nil {
			t.Errorf("%s: store: %v", spec.Strategy, err)
		}
		if !slices.Contains(balancer.Policies, spec.Policy) {
			t.Errorf("%s: policy %q is not one of %v", spec.Strategy, spec.Policy, balancer.Policies)
		}
		if spec.Where == "" {
			t.Errorf("%s: no Where text", spec.Strategy)
		}
		if spec.External() && spec.Source == "" {
			t.Errorf("%s: an external store needs a Source text", spec.Strategy)
		}
	}
}

func TestParseUnknown(t *testing.T) {
	for _, in := range []string{"", "memcached", "Naive"} {
		if _, err := Parse(in); !errors.Is(err, ErrUnknown) {
			t.Errorf("Parse(%q) = %v, want ErrUnknown", in, err)
		}
	}
	if _, ok := Lookup("memcached"); ok {
		t.Error("Lookup(memcached) found a row")
	}
	if got := Strategy("memcached").Spec(); got != (Spec{}) {
		t.Errorf("Spec of an unknown strategy = %+v, want the zero Spec", got)
	}
}
