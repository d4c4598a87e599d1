package cookiestore_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/cookiestore"
)

// fuzzSecret seals the seed values under testdata/fuzz/FuzzOpen; changing it
// turns those seeds into forgeries (still useful, less so).
const fuzzSecret = "statelab fuzz secret, not for production"

// FuzzOpen feeds arbitrary cookie values to Open. It must never panic, must
// answer every value with a record, ErrInvalid or ErrNotFound, and whatever
// it opens must seal and open again to the same record.
func FuzzOpen(f *testing.F) {
	s, err := cookiestore.FromSecret(fuzzSecret)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	for _, data := range []string{"", "x", `{"items":[{"sku":"A1","qty":2}]}`} {
		v, err := s.Seal(session.Record{Data: []byte(data), Version: 1, IdleExpiry: now.Add(time.Hour), AbsoluteExpiry: now.Add(24 * time.Hour)})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(v)
		f.Add(v[:len(v)/2])
	}
	f.Add("")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, value string) {
		rec, err := s.Open(value, now)
		if err != nil {
			if !errors.Is(err, session.ErrInvalid) && !errors.Is(err, session.ErrNotFound) {
				t.Fatalf("Open(%q) = %v, want ErrInvalid or ErrNotFound", value, err)
			}
			return
		}
		again, err := s.Seal(rec)
		if err != nil {
			t.Fatalf("resealing an opened record: %v", err)
		}
		got, err := s.Open(again, now)
		if err != nil || !bytes.Equal(got.Data, rec.Data) || got.Version != rec.Version ||
			!got.IdleExpiry.Equal(rec.IdleExpiry) || !got.AbsoluteExpiry.Equal(rec.AbsoluteExpiry) {
			t.Fatalf("reseal round trip: %+v, %v; want %+v", got, err, rec)
		}
	})
}
