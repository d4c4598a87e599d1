package cookiestore_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/cookiestore"
)

const (
	secretA = "correct horse battery staple A"
	secretB = "correct horse battery staple B"
)

var t0 = time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)

func newSealer(t *testing.T, secret string, more ...string) *cookiestore.Sealer {
	t.Helper()
	s, err := cookiestore.FromSecret(secret, more...)
	if err != nil {
		t.Fatalf("FromSecret: %v", err)
	}
	return s
}

func liveRecord(data string) session.Record {
	return session.Record{
		Data:           []byte(data),
		Version:        7,
		IdleExpiry:     t0.Add(30 * time.Minute),
		AbsoluteExpiry: t0.Add(24 * time.Hour),
	}
}

func seal(t *testing.T, s *cookiestore.Sealer, rec session.Record) string {
	t.Helper()
	v, err := s.Seal(rec)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	return v
}

func TestRoundTrip(t *testing.T) {
	s := newSealer(t, secretA)
	tests := []struct {
		name string
		rec  session.Record
	}{
		{"data", liveRecord(`{"items":[{"sku":"A1","qty":2}]}`)},
		{"empty data", liveRecord("")},
		{"binary data", session.Record{Data: []byte{0, 1, 2, 255, '\n', ';'}, Version: 1, IdleExpiry: t0.Add(time.Minute)}},
		{"no absolute expiry", session.Record{Data: []byte("x"), Version: 1 << 60, IdleExpiry: t0.Add(time.Hour)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := seal(t, s, tt.rec)
			for _, c := range v {
				if !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", c) {
					t.Fatalf("sealed value has non-cookie-safe %q: %s", c, v)
				}
			}
			got, err := s.Open(v, t0)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got.Data, tt.rec.Data) || got.Version != tt.rec.Version ||
				!got.IdleExpiry.Equal(tt.rec.IdleExpiry) || !got.AbsoluteExpiry.Equal(tt.rec.AbsoluteExpiry) {
				t.Fatalf("Open = %+v, want %+v", got, tt.rec)
			}
			if v2 := seal(t, s, tt.rec); v2 == v {
				t.Fatal("sealing twice gave the same value: nonce reused")
			}
		})
	}
}

func TestSameSecretSameKey(t *testing.T) {
	v := seal(t, newSealer(t, secretA), liveRecord("shared"))
	if _, err := newSealer(t, secretA).Open(v, t0); err != nil {
		t.Fatalf("a second Sealer from the same secret cannot open: %v", err)
	}
}

// TestTamperEveryByte flips each byte of the sealed value (after decoding)
// and checks that every change is refused as ErrInvalid.
func TestTamperEveryByte(t *testing.T) {
	s := newSealer(t, secretA)
	raw, err := base64.RawURLEncoding.DecodeString(seal(t, s, liveRecord("tamper me")))
	if err != nil {
		t.Fatal(err)
	}
	for i := range raw {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			forged := bytes.Clone(raw)
			forged[i] ^= mask
			_, err := s.Open(base64.RawURLEncoding.EncodeToString(forged), t0)
			if !errors.Is(err, session.ErrInvalid) {
				t.Fatalf("byte %d ^ %#x: Open err = %v, want ErrInvalid", i, mask, err)
			}
		}
	}
}

func TestTruncatedAndGarbled(t *testing.T) {
	s := newSealer(t, secretA)
	v := seal(t, s, liveRecord("truncate me"))
	for n := range len(v) {
		if _, err := s.Open(v[:n], t0); !errors.Is(err, session.ErrInvalid) {
			t.Fatalf("prefix of %d/%d chars: Open err = %v, want ErrInvalid", n, len(v), err)
		}
	}
	garbled := []string{
		v + "A",                   // extra data
		v[:10] + "!" + v[11:],     // not base64url
		v[:10] + "+" + v[11:],     // standard base64, not url
		v + "==",                  // padding
		strings.Repeat("A", 5000), // over the budget
		"",                        // empty
		"\x00\xff",                // bytes
	}
	for _, g := range garbled {
		if _, err := s.Open(g, t0); !errors.Is(err, session.ErrInvalid) {
			t.Errorf("Open(%.20q…) err = %v, want ErrInvalid", g, err)
		}
	}
}

func TestWrongKey(t *testing.T) {
	v := seal(t, newSealer(t, secretA), liveRecord("for A only"))
	if _, err := newSealer(t, secretB).Open(v, t0); !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("Open with another key: err = %v, want ErrInvalid", err)
	}
	// Same key ID, different secret: authentication must still fail.
	a := cookiestore.DeriveKey(secretA)
	other := cookiestore.Key{ID: a.ID}
	other.Secret[0] = 1
	s, err := cookiestore.New(other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(v, t0); !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("Open with a colliding key ID: err = %v, want ErrInvalid", err)
	}
}

func TestRotation(t *testing.T) {
	old := newSealer(t, secretA)
	rotated := newSealer(t, secretB, secretA) // B seals, A still opens
	retired := newSealer(t, secretB)          // A dropped

	oldValue := seal(t, old, liveRecord("sealed before rotation"))
	if got, err := rotated.Open(oldValue, t0); err != nil || string(got.Data) != "sealed before rotation" {
		t.Fatalf("rotated keyring opening an old value: %q, %v", got.Data, err)
	}
	newValue := seal(t, rotated, liveRecord("sealed after rotation"))
	if _, err := retired.Open(newValue, t0); err != nil {
		t.Fatalf("the new primary key did not seal: %v", err)
	}
	if _, err := old.Open(newValue, t0); !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("old keyring opened a value sealed with the new key: %v", err)
	}
	if _, err := retired.Open(oldValue, t0); !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("a retired key still opens: %v", err)
	}
}

func TestKeyIDCollision(t *testing.T) {
	a := cookiestore.DeriveKey(secretA)
	b := cookiestore.DeriveKey(secretB)
	b.ID = a.ID
	sa, err := cookiestore.New(a)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := cookiestore.New(b, a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ring.Open(seal(t, sa, liveRecord("x")), t0); err != nil {
		t.Fatalf("two keys with one ID: the second was not tried: %v", err)
	}
}

func TestExpiry(t *testing.T) {
	s := newSealer(t, secretA)
	rec := liveRecord("expiring")
	v := seal(t, s, rec)
	tests := []struct {
		name string
		now  time.Time
		want error
	}{
		{"before idle expiry", rec.IdleExpiry.Add(-time.Nanosecond), nil},
		{"at idle expiry", rec.IdleExpiry, session.ErrNotFound},
		{"past absolute expiry", rec.AbsoluteExpiry.Add(time.Hour), session.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Open(v, tt.now); !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("Open at %v: err = %v, want %v", tt.now, err, tt.want)
			}
		})
	}
	// The absolute expiry binds even when the idle expiry is later.
	rec.IdleExpiry = t0.Add(48 * time.Hour)
	if _, err := s.Open(seal(t, s, rec), rec.AbsoluteExpiry); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("absolute expiry ignored: %v", err)
	}
}

func TestTooLarge(t *testing.T) {
	s := newSealer(t, secretA)
	var fits int
	for n := 2000; n < 5000; n++ {
		_, err := s.Seal(liveRecord(strings.Repeat("x", n)))
		if errors.Is(err, session.ErrTooLarge) {
			break
		}
		if err != nil {
			t.Fatalf("Seal of %d bytes: %v", n, err)
		}
		fits = n
	}
	v := seal(t, s, liveRecord(strings.Repeat("x", fits)))
	if len(v) > cookiestore.MaxValueLen {
		t.Fatalf("largest accepted value is %d chars, over %d", len(v), cookiestore.MaxValueLen)
	}
	if fits < 2900 {
		t.Fatalf("only %d bytes of data fit; the budget is wasted", fits)
	}
}

func TestBadConfig(t *testing.T) {
	if _, err := cookiestore.New(); err == nil {
		t.Error("New() without keys succeeded")
	}
	if _, err := cookiestore.FromSecret("short"); err == nil {
		t.Error("FromSecret accepted a 5-byte secret")
	}
	if _, err := cookiestore.FromSecret(secretA, ""); err == nil {
		t.Error("FromSecret accepted an empty older secret")
	}
}
