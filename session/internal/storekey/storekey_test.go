package storekey

import (
	"context"
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

func TestCheckCall(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		key     string
		wantErr error
	}{
		{"valid", context.Background(), "abc_DEF-123", nil},
		{"cancelled context", cancelled, "abc", context.Canceled},
		{"bad key", context.Background(), "a b", ErrInvalid},
	}
	for _, tt := range tests {
		err := CheckCall(tt.ctx, "memstore", "get", tt.key)
		if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
			t.Errorf("%s: CheckCall = %v, want %v", tt.name, err, tt.wantErr)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "memstore: get: ") {
			t.Errorf("%s: error %q lacks the store: op: prefix", tt.name, err)
		}
	}
}
