package storetest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/statelab/statelab/session"
)

// BenchPayload is the size of the record the benchmarks read and write: about
// a shopping cart of a dozen lines.
const BenchPayload = 1024

// benchRecord stores a live BenchPayload-byte record under a new key and
// returns the key.
func benchRecord(b *testing.B, s session.Store) string {
	b.Helper()
	key := NewKey(b)
	data := bytes.Repeat([]byte("c"), BenchPayload)
	if _, err := s.Put(context.Background(), key, session.Record{Data: data, IdleExpiry: time.Now().Add(time.Hour)}); err != nil {
		b.Fatalf("Put: %v", err)
	}
	return key
}

// BenchGet measures Get of one live BenchPayload-byte record: one call per
// iteration, from one goroutine, so ns/op is the latency of a read.
func BenchGet(b *testing.B, s session.Store) {
	b.Helper()
	ctx, key := context.Background(), benchRecord(b, s)
	b.SetBytes(BenchPayload)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Get(ctx, key); err != nil {
			b.Fatalf("Get: %v", err)
		}
	}
}

// BenchUpdate measures the read-modify-write cycle a Manager.Update does
// without contention: Get, change one byte, Put with the version read. One
// iteration is one Get and one Put, so ns/op is the latency of an update.
func BenchUpdate(b *testing.B, s session.Store) {
	b.Helper()
	ctx, key := context.Background(), benchRecord(b, s)
	idle := time.Now().Add(time.Hour)
	b.SetBytes(BenchPayload)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		rec, err := s.Get(ctx, key)
		if err != nil {
			b.Fatalf("Get: %v", err)
		}
		rec.Data[0] = byte('a' + i%26)
		rec.IdleExpiry = idle
		if _, err := s.Put(ctx, key, rec); err != nil {
			b.Fatalf("Put: %v", err)
		}
		i++
	}
}
