package stores

import (
	"errors"
	"testing"

	"github.com/statelab/statelab/session"
)

func TestKinds(t *testing.T) {
	tests := []struct {
		kind     Kind
		name     string
		external bool
	}{
		{"memory", "replica memory", false},
		{"replicated", "replicated replica memory", false},
		{"redis", "Redis", true},
		{"postgres", "PostgreSQL", true},
		{"sqlite", "SQLite", true},
		{"cookie", "client cookies", false},
	}
	if got := Kinds(); len(got) != len(tests) {
		t.Fatalf("Kinds() = %v, want %d kinds", got, len(tests))
	}
	for i, tt := range tests {
		if Kinds()[i] != tt.kind {
			t.Errorf("Kinds()[%d] = %s, want %s", i, Kinds()[i], tt.kind)
		}
		k, err := ParseKind(string(tt.kind))
		if err != nil || k != tt.kind {
			t.Errorf("ParseKind(%q) = %q, %v", tt.kind, k, err)
		}
		if k.Name() != tt.name || k.External() != tt.external {
			t.Errorf("%s: name %q external %v, want %q %v", k, k.Name(), k.External(), tt.name, tt.external)
		}
	}
}

func TestUnknownKind(t *testing.T) {
	if _, err := ParseKind("memcached"); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("ParseKind(memcached) = %v, want ErrUnknownKind", err)
	}
	if _, err := Open(t.Context(), Config{Kind: "memcached"}); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("Open(memcached) = %v, want ErrUnknownKind", err)
	}
	if k := Kind("memcached"); k.Name() != "memcached" || k.External() {
		t.Errorf("unknown kind: name %q external %v", k.Name(), k.External())
	}
}

func TestOpenMemoryAndCookie(t *testing.T) {
	for _, k := range []Kind{Memory, Cookie} {
		b, err := Open(t.Context(), Config{Kind: k, Secret: "a secret of 16+ bytes"})
		if err != nil {
			t.Fatalf("Open(%s): %v", k, err)
		}
		if b.Kind != k || (b.Store == nil) == (b.Sealer == nil) {
			t.Errorf("Open(%s): kind %s, store %v, sealer %v: want exactly one", k, b.Kind, b.Store, b.Sealer)
		}
		if _, err := b.NewManager(session.Config{}); err != nil {
			t.Errorf("%s: NewManager: %v", k, err)
		}
		if err := b.Close(); err != nil {
			t.Errorf("%s: Close: %v", k, err)
		}
	}
}
