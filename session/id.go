package session

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
)

// idBytes is the entropy of a session ID: 256 bits, well above the 64 bits
// OWASP asks for.
const idBytes = 32

// idLen is the length of an encoded session ID: 32 bytes in unpadded
// base64url.
var idLen = base64.RawURLEncoding.EncodedLen(idBytes)

// idEncoding rejects non-canonical encodings (stray trailing bits), so every
// ID has exactly one spelling and a cookie is either an ID or garbage.
var idEncoding = base64.RawURLEncoding.Strict()

// newID returns a fresh session ID: 256 bits from crypto/rand, base64url
// without padding.
func newID() (string, error) {
	var b [idBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("session: generate ID: %w", err)
	}
	return idEncoding.EncodeToString(b[:]), nil
}

// validID reports whether s is spelled like an ID newID returns. It says
// nothing about whether the server ever issued it: only the store knows.
func validID(s string) bool {
	if len(s) != idLen {
		return false
	}
	var b [idBytes]byte
	n, err := idEncoding.Decode(b[:], []byte(s))
	return err == nil && n == idBytes
}

// storeKey returns the key a session ID is stored under: the hex SHA-256 of
// the ID, so that a leaked store (or a log of its keys) yields no live IDs.
func storeKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// logHash returns a short, stable, one-way fingerprint of a cookie value for
// log lines: enough to correlate repeated attempts, useless to replay.
func logHash(value string) string {
	sum := sha256.Sum256([]byte(value))
	return hex.EncodeToString(sum[:8])
}
