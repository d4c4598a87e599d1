// Package cookiestore seals session records into cookie values, so that a
// session.Manager built with session.NewClientManager keeps no server-side
// state at all.
//
// A sealed value is XChaCha20-Poly1305 ciphertext: the record's data,
// version and expiries are encrypted and authenticated together, so a client
// can neither read nor change them, nor extend its own session. Each value
// names the key that sealed it by a one-byte key ID; a Sealer holds a keyring
// whose primary key seals and whose every key opens, so keys rotate without
// logging anyone out: put the new key first, keep the old one until the
// sessions it sealed have expired, then drop it.
//
// The package owns the sealed format and the keyring. It does not own
// cookies (the Manager names, scopes and sets them), and it cannot revoke a
// value before it expires or detect concurrent updates: the client holds the
// state, so the last response it keeps wins.
package cookiestore

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"

	"github.com/statelab/statelab/session"
)

// KeySize is the size of a sealing key in bytes.
const KeySize = chacha20poly1305.KeySize

// MinSecretLen is the shortest secret FromSecret accepts, in bytes.
const MinSecretLen = 16

// MaxValueLen is the longest sealed value Seal returns and Open considers.
// It is the session.CookieBudget: a value alone cannot be longer than the
// whole cookie. The Manager also checks the full serialized Set-Cookie.
const MaxValueLen = session.CookieBudget

// format is the first byte of every sealed value, so a later format can be
// told apart.
const format byte = 1

const (
	headerLen  = 2 // format, key ID
	nonceLen   = chacha20poly1305.NonceSizeX
	overhead   = chacha20poly1305.Overhead
	fixedPlain = 8 + 8 + 8 // version, idle expiry, absolute expiry
	minSealed  = headerLen + nonceLen + overhead + fixedPlain
)

var encoding = base64.RawURLEncoding.Strict()

// Key is one sealing key and the ID that names it in sealed values.
type Key struct {
	// ID is written in every value this key seals. Keys in one Sealer
	// should have distinct IDs; when two share one, Open tries both.
	ID byte

	// Secret is the XChaCha20-Poly1305 key. It must be uniformly random (from
	// crypto/rand or DeriveKey), never a password.
	Secret [KeySize]byte
}

// DeriveKey derives a Key, ID included, from a secret string with HKDF-SHA256.
// The same secret always yields the same key, so every replica given the same
// secret seals and opens the same values.
func DeriveKey(secret string) Key {
	r := hkdf.New(sha256.New, []byte(secret), nil, []byte("statelab cookiestore v1"))
	var b [1 + KeySize]byte
	// hkdf cannot fail for this length (far below 255*32 bytes).
	_, _ = io.ReadFull(r, b[:])
	k := Key{ID: b[0]}
	copy(k.Secret[:], b[1:])
	return k
}

// Sealer seals session records into cookie-safe strings and opens them. It
// implements session.Sealer and is safe for concurrent use.
type Sealer struct {
	keys []sealingKey // keys[0] is the primary key
}

type sealingKey struct {
	id   byte
	aead cipher.AEAD
}

var _ session.Sealer = (*Sealer)(nil)

// New returns a Sealer with the given keyring: keys[0] seals, every key
// opens. It needs at least one key.
func New(keys ...Key) (*Sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("cookiestore: New needs at least one key")
	}
	s := &Sealer{}
	for _, k := range keys {
		aead, err := chacha20poly1305.NewX(k.Secret[:])
		if err != nil {
			return nil, fmt.Errorf("cookiestore: key %d: %w", k.ID, err)
		}
		s.keys = append(s.keys, sealingKey{id: k.ID, aead: aead})
	}
	return s, nil
}

// FromSecret returns a Sealer whose primary key is derived from secret and
// which also opens values sealed with keys derived from the older secrets in
// more. Each secret must be at least MinSecretLen bytes.
func FromSecret(secret string, more ...string) (*Sealer, error) {
	keys := make([]Key, 0, 1+len(more))
	for i, s := range append([]string{secret}, more...) {
		if len(s) < MinSecretLen {
			return nil, fmt.Errorf("cookiestore: secret %d is %d bytes, need at least %d", i, len(s), MinSecretLen)
		}
		keys = append(keys, DeriveKey(s))
	}
	return New(keys...)
}

// Seal encrypts and authenticates rec with the primary key into a base64url
// string. A result longer than MaxValueLen returns an error wrapping
// session.ErrTooLarge.
func (s *Sealer) Seal(rec session.Record) (string, error) {
	sealedLen := minSealed + len(rec.Data)
	if n := encoding.EncodedLen(sealedLen); n > MaxValueLen {
		return "", fmt.Errorf("cookiestore: sealed value of %d bytes is over %d: %w", n, MaxValueLen, session.ErrTooLarge)
	}
	k := s.keys[0]
	out := make([]byte, headerLen+nonceLen, sealedLen)
	out[0], out[1] = format, k.id
	if _, err := rand.Read(out[headerLen:]); err != nil {
		return "", fmt.Errorf("cookiestore: nonce: %w", err)
	}
	plain := make([]byte, fixedPlain, fixedPlain+len(rec.Data))
	binary.BigEndian.PutUint64(plain[0:], rec.Version)
	binary.BigEndian.PutUint64(plain[8:], uint64(unixNano(rec.IdleExpiry)))
	binary.BigEndian.PutUint64(plain[16:], uint64(unixNano(rec.AbsoluteExpiry)))
	plain = append(plain, rec.Data...)
	out = k.aead.Seal(out, out[headerLen:], plain, out[:headerLen])
	return encoding.EncodeToString(out), nil
}

// Open authenticates and decrypts a value made by Seal. A value that is
// forged, garbled, truncated, too long or sealed with a key not in the
// keyring returns an error wrapping session.ErrInvalid; one that has expired
// at now returns an error wrapping session.ErrNotFound.
func (s *Sealer) Open(value string, now time.Time) (session.Record, error) {
	if len(value) > MaxValueLen {
		return session.Record{}, fmt.Errorf("cookiestore: value of %d bytes is over %d: %w", len(value), MaxValueLen, session.ErrInvalid)
	}
	raw, err := encoding.DecodeString(value)
	if err != nil {
		return session.Record{}, fmt.Errorf("cookiestore: not base64url: %w", session.ErrInvalid)
	}
	if len(raw) < minSealed {
		return session.Record{}, fmt.Errorf("cookiestore: value of %d bytes is truncated: %w", len(raw), session.ErrInvalid)
	}
	if raw[0] != format {
		return session.Record{}, fmt.Errorf("cookiestore: unknown format %d: %w", raw[0], session.ErrInvalid)
	}
	header, nonce, ct := raw[:headerLen], raw[headerLen:headerLen+nonceLen], raw[headerLen+nonceLen:]
	var plain []byte
	known := false
	for _, k := range s.keys {
		if k.id != raw[1] {
			continue
		}
		known = true
		if plain, err = k.aead.Open(nil, nonce, ct, header); err == nil {
			break
		}
	}
	switch {
	case !known:
		return session.Record{}, fmt.Errorf("cookiestore: unknown key ID %d: %w", raw[1], session.ErrInvalid)
	case plain == nil:
		return session.Record{}, fmt.Errorf("cookiestore: authentication failed: %w", session.ErrInvalid)
	}
	rec := session.Record{
		Version:        binary.BigEndian.Uint64(plain[0:]),
		IdleExpiry:     fromUnixNano(int64(binary.BigEndian.Uint64(plain[8:]))),
		AbsoluteExpiry: fromUnixNano(int64(binary.BigEndian.Uint64(plain[16:]))),
	}
	if len(plain) > fixedPlain {
		rec.Data = plain[fixedPlain:]
	}
	if rec.Expired(now) {
		return session.Record{}, fmt.Errorf("cookiestore: sealed session expired: %w", session.ErrNotFound)
	}
	return rec, nil
}

// unixNano encodes t for the sealed payload; the zero time is 0.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromUnixNano decodes unixNano.
func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}
