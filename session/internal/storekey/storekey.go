// Package storekey checks the keys the session stores accept, so every store
// rejects the same malformed keys with the same clear error.
//
// It owns only the key syntax of the session.Store contract; it does not know
// how any store lays keys out in its backend.
package storekey

import (
	"context"
	"errors"
	"fmt"
)

// MaxLen is the longest key the session.Store contract allows, in bytes.
const MaxLen = 128

// ErrInvalid is wrapped by the error Check returns for a malformed key.
var ErrInvalid = errors.New("invalid session store key")

// Check returns nil when key is a valid session.Store key: 1 to MaxLen bytes
// drawn from [A-Za-z0-9_-]. Otherwise it returns an error wrapping ErrInvalid
// that says what is wrong.
func Check(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty", ErrInvalid)
	case len(key) > MaxLen:
		return fmt.Errorf("%w: %d bytes, over the %d-byte limit", ErrInvalid, len(key), MaxLen)
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			continue
		}
		return fmt.Errorf("%w: byte %d is %q, want [A-Za-z0-9_-]", ErrInvalid, i, c)
	}
	return nil
}

// CheckCall is the precondition every store method shares: it returns an
// error, prefixed "store: op: ", wrapping ctx.Err() when ctx is already done,
// or wrapping ErrInvalid when key is malformed; otherwise nil.
func CheckCall(ctx context.Context, store, op, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %s: %w", store, op, err)
	}
	if err := Check(key); err != nil {
		return fmt.Errorf("%s: %s: %w", store, op, err)
	}
	return nil
}
