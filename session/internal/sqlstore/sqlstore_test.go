package sqlstore

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/statelab/statelab/session"
)

// fakeDialect answers from fields; the stores' conformance suites run the
// real dialects.
type fakeDialect struct {
	migrateErr  error
	writeOK     bool
	err         error // returned by every statement
	unavailable bool
	sweeps      []int64 // what successive Sweep calls delete
	closes      int
	closeErr    error
	put         session.Record // the last record Create or Update got
}

func (f *fakeDialect) Migrate(context.Context) error { return f.migrateErr }
func (f *fakeDialect) Get(context.Context, string) (session.Record, bool, error) {
	return session.Record{Version: 7}, true, f.err
}
func (f *fakeDialect) Create(_ context.Context, _ string, rec session.Record) (int64, bool, error) {
	f.put = rec
	return 1, f.writeOK, f.err
}
func (f *fakeDialect) Update(_ context.Context, _ string, rec session.Record) (int64, bool, error) {
	f.put = rec
	return int64(rec.Version) + 1, f.writeOK, f.err
}
func (f *fakeDialect) Touch(context.Context, string, time.Time) (bool, error) { return false, f.err }
func (f *fakeDialect) Delete(context.Context, string) error                   { return f.err }
func (f *fakeDialect) Count(context.Context) (int64, error)                   { return 3, f.err }
func (f *fakeDialect) Ping(context.Context) error                             { return f.err }
func (f *fakeDialect) Unavailable(error) bool                                 { return f.unavailable }
func (f *fakeDialect) Close() error                                           { f.closes++; return f.closeErr }
func (f *fakeDialect) Sweep(context.Context) (int64, error) {
	n := f.sweeps[0]
	f.sweeps = f.sweeps[1:]
	return n, f.err
}

func open(t *testing.T, d *fakeDialect) *Store {
	t.Helper()
	s, err := Open(context.Background(), d, Config{Name: "fake", MigrateOp: "migrate", Timeout: time.Second, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestPutOutcomes(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		version uint64
		writeOK bool
		want    uint64
		wantErr error
	}{
		{"create", 0, true, 1, nil},
		{"create over a live record", 0, false, 0, session.ErrConflict},
		{"update", 4, true, 5, nil},
		{"update of another version", 4, false, 0, session.ErrConflict},
		{"version beyond any stored one", math.MaxInt64 + 1, true, 0, session.ErrConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &fakeDialect{writeOK: tc.writeOK}
			got, err := open(t, d).Put(ctx, "k", session.Record{Version: tc.version})
			if !errors.Is(err, tc.wantErr) || got != tc.want {
				t.Fatalf("Put = %d, %v; want %d, %v", got, err, tc.want, tc.wantErr)
			}
			if tc.wantErr == nil && d.put.Data == nil {
				t.Fatal("the dialect got nil Data; want an empty slice (the column is NOT NULL)")
			}
		})
	}
}

func TestFailClassifies(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name        string
		unavailable bool
		cancel      bool
		want, not   error
	}{
		{"statement error", false, false, boom, session.ErrUnavailable},
		{"database down", true, false, session.ErrUnavailable, nil},
		{"caller cancelled", true, true, context.Canceled, session.ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, &fakeDialect{err: boom, unavailable: tc.unavailable})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				cancel()
			}
			err := s.fail(ctx, "get", boom)
			if !errors.Is(err, tc.want) || (tc.not != nil && errors.Is(err, tc.not)) {
				t.Fatalf("fail = %v; want it to wrap %v and not %v", err, tc.want, tc.not)
			}
		})
	}
}

func TestSweepRunsWhileBatchesAreFull(t *testing.T) {
	d := &fakeDialect{sweeps: []int64{SweepBatch, SweepBatch, 3, 99}}
	n, err := open(t, d).Sweep(context.Background())
	if err != nil || n != 2*SweepBatch+3 {
		t.Fatalf("Sweep = %d, %v; want %d, nil", n, err, 2*SweepBatch+3)
	}
	if len(d.sweeps) != 1 {
		t.Fatalf("%d batches left; want the sweep to stop after the first short batch", len(d.sweeps))
	}
}

func TestOpenAndClose(t *testing.T) {
	d := &fakeDialect{migrateErr: errors.New("no table")}
	if _, err := Open(context.Background(), d, Config{Name: "fake", MigrateOp: "migrate", Timeout: time.Second}); err == nil || d.closes != 1 {
		t.Fatalf("Open with a failing migration = %v, %d closes; want an error and the dialect closed", err, d.closes)
	}
	d = &fakeDialect{closeErr: errors.New("busy")}
	s := open(t, d)
	first, second := s.Close(), s.Close()
	if first == nil || second != first || d.closes != 1 {
		t.Fatalf("Close twice = %v, %v, %d dialect closes; want the same error, one close", first, second, d.closes)
	}
}
