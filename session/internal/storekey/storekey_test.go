package storekey

import (
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		key  string
		ok   bool
	}{
		{"hex sha256", strings.Repeat("ab", 32), true},
		{"all classes", "Az09_-", true},
		{"max length", strings.Repeat("k", MaxLen), true},
		{"empty", "", false},
		{"too long", strings.Repeat("k", MaxLen+1), false},
		{"slash", "a/b", false},
		{"brace", "a{b}", false},
		{"space", "a b", false},
		{"colon", "a:b", false},
		{"non-ascii", "caf\u00e9", false},
		{"nul", "a\x00", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.key)
			if tt.ok && err != nil {
				t.Fatalf("Check(%q) = %v, want nil", tt.key, err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalid) {
				t.Fatalf("Check(%q) = %v, want an error wrapping ErrInvalid", tt.key, err)
			}
		})
	}
}
