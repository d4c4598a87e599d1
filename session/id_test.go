package session

import (
	"encoding/hex"
	"testing"
)

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id, err := newID()
		if err != nil {
			t.Fatal(err)
		}
		if !validID(id) || len(id) != 43 {
			t.Fatalf("newID() = %q: not a valid 43-character ID", id)
		}
		if seen[id] {
			t.Fatalf("newID() repeated %q", id)
		}
		seen[id] = true
		key := storeKey(id)
		if b, err := hex.DecodeString(key); err != nil || len(b) != 32 {
			t.Fatalf("storeKey(%q) = %q: not the hex of 32 bytes", id, key)
		}
	}
}

func TestValidID(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", true},
		{"_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-8", true},
		{"", false},
		{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", false},   // 42 chars
		{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", false}, // 44 chars
		{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB", false},  // trailing bits set
		{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", false},  // padding
		{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+A", false},  // std alphabet
		{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\nA", false}, // newline
	}
	for _, tt := range tests {
		if got := validID(tt.in); got != tt.want {
			t.Errorf("validID(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// FuzzValidID checks that validID accepts exactly the canonical base64url
// spellings of 32 bytes, and never panics.
func FuzzValidID(f *testing.F) {
	id, err := newID()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(id)
	f.Add(id[:42])
	f.Add(id + "=")
	f.Fuzz(func(t *testing.T, s string) {
		if !validID(s) {
			return
		}
		b, err := idEncoding.DecodeString(s)
		if err != nil || len(b) != idBytes {
			t.Fatalf("validID(%q) but it decodes to %d bytes, %v", s, len(b), err)
		}
		if again := idEncoding.EncodeToString(b); again != s {
			t.Fatalf("validID(%q) but it re-encodes as %q", s, again)
		}
	})
}
