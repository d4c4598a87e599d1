// Package storetest is the conformance suite every server-side session.Store
// runs: one body of tests, written against the contract in session/store.go,
// applied to each backend by a two-line test in the store's own package.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) session.Store { return newTestStore(t) })
//	}
//
// It owns the meaning of "a correct store": not found, create-only, CAS
// success and conflict, exact concurrent increments, idle and absolute
// expiry, Touch, Delete, large values, context cancellation, no aliasing,
// key validation, and (RunUnavailable) prompt failure against an unreachable
// backend. It also holds the shared benchmark bodies (BenchGet, BenchUpdate)
// so every store is measured the same way. It does not start backends: the
// caller's constructor does, and cleans up with t.Cleanup.
//
// Expiry is tested in the store's own time with short TTLs and polling under
// a deadline, so a store passes only if Get, Put and Touch check expiry
// themselves; no test waits for a sweeper.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/statelab/statelab/session"
)

// Tuning of the suite. TTLs are short so the whole suite stays fast; the
// deadlines are generous so a loaded machine does not fail a correct store.
const (
	// ttl is how long the short-lived records of the expiry tests live.
	ttl = 300 * time.Millisecond

	// expiryDeadline bounds how long a test polls for a record to expire
	// after its expiry time has passed.
	expiryDeadline = 10 * time.Second

	// opTimeout is the context deadline of every store call in the suite.
	opTimeout = 10 * time.Second

	// hangGrace is how long past opTimeout a call may take before the suite
	// declares that it hangs.
	hangGrace = 10 * time.Second

	// workers and increments shape the concurrent-increment test: workers
	// goroutines each add increments to one counter by Get and Put.
	workers    = 64
	increments = 100

	// largeValue is the size of the large-value test's payload.
	largeValue = 1 << 20
)

// Run runs the conformance suite against the stores newStore makes. Each
// subtest calls newStore once and uses fresh random keys, so newStore may hand
// out a brand new store or the same shared one. newStore should register its
// cleanup with t.Cleanup. Stores that also implement session.Counter or
// session.Pinger get those checked too.
func Run(t *testing.T, newStore func(t *testing.T) session.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s session.Store)
	}{
		{"NotFound", testNotFound},
		{"CreateOnly", testCreateOnly},
		{"CompareAndSwap", testCompareAndSwap},
		{"VersionsIncrease", testVersionsIncrease},
		{"NoVersionReuseAfterDelete", testNoVersionReuseAfterDelete},
		{"ExpiryRoundTrip", testExpiryRoundTrip},
		{"ConcurrentIncrements", testConcurrentIncrements},
		{"IdleExpiry", testIdleExpiry},
		{"AbsoluteExpiry", testAbsoluteExpiry},
		{"Touch", testTouch},
		{"Delete", testDelete},
		{"EmptyData", testEmptyData},
		{"LargeValue", testLargeValue},
		{"ContextDone", testContextDone},
		{"NoAliasing", testNoAliasing},
		{"InvalidKeys", testInvalidKeys},
		{"IndependentKeys", testIndependentKeys},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newStore(t))
		})
	}
	t.Run("Counter", func(t *testing.T) {
		s := newStore(t)
		c, ok := s.(session.Counter)
		if !ok {
			t.Skipf("%T does not implement session.Counter", s)
		}
		RunCounter(t, s, c)
	})
	t.Run("Pinger", func(t *testing.T) {
		s := newStore(t)
		p, ok := s.(session.Pinger)
		if !ok {
			t.Skipf("%T does not implement session.Pinger", s)
		}
		ctx := testContext(t)
		if err := p.Ping(ctx); err != nil {
			t.Fatalf("Ping on a healthy store: %v", err)
		}
	})
}

// RunCounter checks c, the session.Counter view of s: Count goes up by one
// for each record created, down by one for each record deleted, and does not
// count an expired record. It uses relative counts, so s may hold other
// records, but nobody else may write to s while it runs.
func RunCounter(t *testing.T, s session.Store, c session.Counter) {
	t.Helper()
	ctx := testContext(t)
	count := func() int {
		t.Helper()
		n, err := c.Count(ctx)
		if err != nil {
			t.Fatalf("Count: %v", err)
		}
		return n
	}
	base := count()
	keys := []string{NewKey(t), NewKey(t), NewKey(t)}
	for _, k := range keys {
		mustCreate(t, s, k, []byte("c"))
	}
	if got := count(); got != base+3 {
		t.Fatalf("Count after 3 creates = %d, want %d", got, base+3)
	}
	if err := s.Delete(ctx, keys[0]); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if got := count(); got != base+2 {
		t.Fatalf("Count after a delete = %d, want %d", got, base+2)
	}
	short := NewKey(t)
	exp := time.Now().Add(ttl)
	if _, err := s.Put(ctx, short, session.Record{Data: []byte("s"), IdleExpiry: exp}); err != nil {
		t.Fatalf("Put short-lived: %v", err)
	}
	waitUntilPast(t, exp)
	pollUntil(t, "Count to drop the expired record", func() bool { return count() == base+2 })
}

// NewKey returns a fresh random key in the shape the Manager uses (64 hex
// digits), so tests never collide with each other or with earlier runs.
func NewKey(tb testing.TB) string {
	tb.Helper()
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatalf("crypto/rand: %v", err)
	}
	return hex.EncodeToString(b[:])
}

// testContext returns a context with the suite's per-call deadline.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	t.Cleanup(cancel)
	return ctx
}

func liveRecord(data []byte) session.Record {
	return session.Record{Data: data, IdleExpiry: time.Now().Add(time.Hour)}
}

func mustCreate(t *testing.T, s session.Store, key string, data []byte) uint64 {
	t.Helper()
	v, err := s.Put(testContext(t), key, liveRecord(data))
	if err != nil {
		t.Fatalf("create %s: %v", key, err)
	}
	if v == 0 {
		t.Fatalf("create %s returned version 0", key)
	}
	return v
}

func mustGet(t *testing.T, s session.Store, key string) session.Record {
	t.Helper()
	rec, err := s.Get(testContext(t), key)
	if err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	return rec
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: err = %v, want an error wrapping %v", what, err, target)
	}
}

func wantRecord(t *testing.T, key string, s session.Store, data []byte, version uint64) {
	t.Helper()
	rec := mustGet(t, s, key)
	if !bytes.Equal(rec.Data, data) {
		t.Fatalf("Get %s: data = %q, want %q", key, trim(rec.Data), trim(data))
	}
	if rec.Version != version {
		t.Fatalf("Get %s: version = %d, want %d", key, rec.Version, version)
	}
}

func trim(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "…"
	}
	return string(b)
}

// waitUntilPast returns once the local clock is past t (plus a small margin
// for the store's clock resolution). Expiry tests use it to let time pass;
// it synchronises with the clock, not with the store.
func waitUntilPast(tb testing.TB, t time.Time) {
	tb.Helper()
	for d := time.Until(t.Add(5 * time.Millisecond)); d > 0; d = time.Until(t.Add(5 * time.Millisecond)) {
		time.Sleep(d)
	}
}

// pollUntil calls cond until it is true, failing the test after
// expiryDeadline.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(expiryDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", expiryDeadline, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pollNotFound polls Get until the record under key is gone.
func pollNotFound(t *testing.T, s session.Store, key string) {
	t.Helper()
	pollUntil(t, "record "+key+" to expire", func() bool {
		_, err := s.Get(testContext(t), key)
		if err != nil && !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("Get while waiting for expiry: %v", err)
		}
		return err != nil
	})
}

// getBefore reads key expecting it to be live, unless the local clock is
// already past notAfter (a slow machine), in which case it returns false and
// the caller skips the checks that need the record live.
func getBefore(t *testing.T, s session.Store, key string, notAfter time.Time) (session.Record, bool) {
	t.Helper()
	rec, err := s.Get(testContext(t), key)
	if err == nil {
		return rec, true
	}
	if errors.Is(err, session.ErrNotFound) && !time.Now().Before(notAfter) {
		return session.Record{}, false
	}
	t.Fatalf("Get %s before it expired (at %v, now %v): %v", key, notAfter, time.Now(), err)
	return session.Record{}, false
}

func testNotFound(t *testing.T, s session.Store) {
	ctx := testContext(t)
	key := NewKey(t)
	_, err := s.Get(ctx, key)
	wantErr(t, "Get of a missing key", err, session.ErrNotFound)
	err = s.Touch(ctx, key, time.Now().Add(time.Hour))
	wantErr(t, "Touch of a missing key", err, session.ErrNotFound)
	_, err = s.Put(ctx, key, session.Record{Data: []byte("x"), Version: 1, IdleExpiry: time.Now().Add(time.Hour)})
	wantErr(t, "Put with a non-zero version on a missing key", err, session.ErrConflict)
	_, err = s.Get(ctx, key)
	wantErr(t, "Get after a conflicting Put", err, session.ErrNotFound)
}

func testCreateOnly(t *testing.T, s session.Store) {
	ctx := testContext(t)
	key := NewKey(t)
	v := mustCreate(t, s, key, []byte("first"))
	wantRecord(t, key, s, []byte("first"), v)
	_, err := s.Put(ctx, key, liveRecord([]byte("second")))
	wantErr(t, "second create-only Put", err, session.ErrConflict)
	wantRecord(t, key, s, []byte("first"), v)
}

func testCompareAndSwap(t *testing.T, s session.Store) {
	ctx := testContext(t)
	key := NewKey(t)
	v1 := mustCreate(t, s, key, []byte("v1"))
	rec := liveRecord([]byte("v2"))
	rec.Version = v1
	v2, err := s.Put(ctx, key, rec)
	if err != nil {
		t.Fatalf("Put with the current version: %v", err)
	}
	if v2 <= v1 {
		t.Fatalf("Put returned version %d, want > %d", v2, v1)
	}
	wantRecord(t, key, s, []byte("v2"), v2)

	for _, stale := range []uint64{v1, v2 + 1, v2 + 1<<40} {
		rec := liveRecord([]byte("stale"))
		rec.Version = stale
		_, err := s.Put(ctx, key, rec)
		wantErr(t, "Put with version "+strconv.FormatUint(stale, 10)+" (stored "+strconv.FormatUint(v2, 10)+")", err, session.ErrConflict)
		wantRecord(t, key, s, []byte("v2"), v2)
	}
}

func testVersionsIncrease(t *testing.T, s session.Store) {
	ctx := testContext(t)
	key := NewKey(t)
	v := mustCreate(t, s, key, []byte("0"))
	for i := 1; i <= 10; i++ {
		rec := liveRecord([]byte(strconv.Itoa(i)))
		rec.Version = v
		next, err := s.Put(ctx, key, rec)
		if err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
		if next <= v {
			t.Fatalf("update %d: version %d, want > %d", i, next, v)
		}
		v = next
		wantRecord(t, key, s, rec.Data, v)
	}
}

// testNoVersionReuseAfterDelete checks that a writer holding a version of a
// deleted record cannot overwrite the record created after it.
func testNoVersionReuseAfterDelete(t *testing.T, s session.Store) {
	ctx := testContext(t)
	key := NewKey(t)
	var old []uint64
	v := mustCreate(t, s, key, []byte("old"))
	old = append(old, v)
	for i := 0; i < 3; i++ {
		rec := liveRecord([]byte("old"))
		rec.Version = v
		var err error
		if v, err = s.Put(ctx, key, rec); err != nil {
			t.Fatalf("update: %v", err)
		}
		old = append(old, v)
	}
	if err := s.Delete(ctx, key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	fresh := mustCreate(t, s, key, []byte("new"))
	for _, stale := range old {
		if stale == fresh {
			t.Fatalf("re-created record got version %d, which its deleted predecessor had", fresh)
		}
		rec := liveRecord([]byte("stale writer"))
		rec.Version = stale
		_, err := s.Put(ctx, key, rec)
		wantErr(t, "Put with a version of the deleted record", err, session.ErrConflict)
	}
	wantRecord(t, key, s, []byte("new"), fresh)
}

// testExpiryRoundTrip checks that Get returns the expiries Put stored (to the
// millisecond) and that a zero absolute expiry stays zero.
func testExpiryRoundTrip(t *testing.T, s session.Store) {
	ctx := testContext(t)
	idle := time.Now().Add(time.Hour)
	tests := []struct {
		name     string
		absolute time.Time
	}{
		{"no absolute limit", time.Time{}},
		{"absolute limit", idle.Add(time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := NewKey(t)
			if _, err := s.Put(ctx, key, session.Record{Data: []byte("x"), IdleExpiry: idle, AbsoluteExpiry: tt.absolute}); err != nil {
				t.Fatalf("Put: %v", err)
			}
			rec := mustGet(t, s, key)
			if d := rec.IdleExpiry.Sub(idle).Abs(); d > time.Millisecond {
				t.Errorf("IdleExpiry = %v, want %v (±1ms)", rec.IdleExpiry, idle)
			}
			if tt.absolute.IsZero() {
				if !rec.AbsoluteExpiry.IsZero() {
					t.Errorf("AbsoluteExpiry = %v, want the zero time", rec.AbsoluteExpiry)
				}
			} else if d := rec.AbsoluteExpiry.Sub(tt.absolute).Abs(); d > time.Millisecond {
				t.Errorf("AbsoluteExpiry = %v, want %v (±1ms)", rec.AbsoluteExpiry, tt.absolute)
			}
		})
	}
}

// testConcurrentIncrements runs workers goroutines that each add increments
// to one counter by Get, +1, Put, retrying on conflict. Any lost update shows
// as a final count below workers*increments.
func testConcurrentIncrements(t *testing.T, s session.Store) {
	key := NewKey(t)
	mustCreate(t, s, key, []byte("0"))
	// The deadline only stops a broken store from hanging the suite: on a
	// loaded 2-core machine a database store needs tens of seconds here.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	var (
		wg        sync.WaitGroup
		conflicts sync.Map
	)
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			var pacer retryPacer
			for i := 0; i < increments; i++ {
				c, err := increment(ctx, s, key, &pacer)
				n += c
				if err != nil {
					errs <- err
					return
				}
			}
			conflicts.Store(w, n)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("increment: %v", err)
	}
	rec := mustGet(t, s, key)
	got, err := strconv.Atoi(string(rec.Data))
	if err != nil {
		t.Fatalf("counter holds %q: %v", trim(rec.Data), err)
	}
	if want := workers * increments; got != want {
		t.Fatalf("counter = %d after %d goroutines × %d increments, want %d (%d updates lost)", got, workers, increments, want, want-got)
	}
	total := 0
	conflicts.Range(func(_, v any) bool { total += v.(int); return true })
	t.Logf("%d increments, %d conflicts retried", workers*increments, total)
}

// retryPacer spaces out the retries of one writer contending with others
// for one key. It keeps its delay across increments (halving it on success,
// doubling it on conflict, starting from the length of the failed attempt),
// so the writers settle at a rate the store can serve with few conflicts
// instead of all rushing back after each success. Delays are jittered and
// capped at maxRetryDelay.
type retryPacer struct {
	delay time.Duration
}

const maxRetryDelay = time.Second

func (p *retryPacer) succeeded() { p.delay /= 2 }

func (p *retryPacer) conflicted(attempt time.Duration) {
	p.delay = min(max(2*p.delay, attempt, time.Microsecond), maxRetryDelay)
	time.Sleep(mrand.N(p.delay))
}

// increment adds one to the counter under key, retrying on ErrConflict with
// jittered backoff. It returns how many conflicts it met.
func increment(ctx context.Context, s session.Store, key string, pacer *retryPacer) (int, error) {
	for attempt := 0; ; attempt++ {
		start := time.Now()
		rec, err := s.Get(ctx, key)
		if err != nil {
			return attempt, err
		}
		n, err := strconv.Atoi(string(rec.Data))
		if err != nil {
			return attempt, err
		}
		rec.Data = []byte(strconv.Itoa(n + 1))
		rec.IdleExpiry = time.Now().Add(time.Hour)
		if _, err = s.Put(ctx, key, rec); err == nil {
			pacer.succeeded()
			return attempt, nil
		}
		if !errors.Is(err, session.ErrConflict) {
			return attempt, err
		}
		pacer.conflicted(time.Since(start))
	}
}

func testIdleExpiry(t *testing.T, s session.Store) {
	ctx := testContext(t)
	key := NewKey(t)
	exp := time.Now().Add(ttl)
	v, err := s.Put(ctx, key, session.Record{Data: []byte("idle"), IdleExpiry: exp, AbsoluteExpiry: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if rec, live := getBefore(t, s, key, exp); live && rec.Version != v {
		t.Fatalf("Get before expiry: version %d, want %d", rec.Version, v)
	}
	waitUntilPast(t, exp)
	pollNotFound(t, s, key)
	checkExpiredBehavesMissing(t, s, key, v)
}

func testAbsoluteExpiry(t *testing.T, s session.Store) {
	ctx := testContext(t)
	key := NewKey(t)
	abs := time.Now().Add(ttl)
	v, err := s.Put(ctx, key, session.Record{Data: []byte("abs"), IdleExpiry: time.Now().Add(time.Hour), AbsoluteExpiry: abs})
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	// Touch moves only the idle expiry: the absolute limit still holds.
	if err := s.Touch(ctx, key, time.Now().Add(2*time.Hour)); err != nil && !(errors.Is(err, session.ErrNotFound) && !time.Now().Before(abs)) {
		t.Fatalf("Touch before absolute expiry: %v", err)
	}
	waitUntilPast(t, abs)
	pollNotFound(t, s, key)
	checkExpiredBehavesMissing(t, s, key, v)
}

// checkExpiredBehavesMissing checks that an expired record (last version v)
// is treated as missing by every method: Touch fails, a CAS on v conflicts,
// and a create-only Put replaces it.
func checkExpiredBehavesMissing(t *testing.T, s session.Store, key string, v uint64) {
	t.Helper()
	ctx := testContext(t)
	err := s.Touch(ctx, key, time.Now().Add(time.Hour))
	wantErr(t, "Touch of an expired record", err, session.ErrNotFound)
	_, err = s.Get(ctx, key)
	wantErr(t, "Get after Touch of an expired record", err, session.ErrNotFound)
	rec := liveRecord([]byte("late writer"))
	rec.Version = v
	_, err = s.Put(ctx, key, rec)
	wantErr(t, "Put with the version of an expired record", err, session.ErrConflict)
	fresh := mustCreate(t, s, key, []byte("reborn"))
	if fresh == v {
		t.Fatalf("record created over an expired one got its version %d", v)
	}
	wantRecord(t, key, s, []byte("reborn"), fresh)
}

func testTouch(t *testing.T, s session.Store) {
	ctx := testContext(t)
	later := time.Now().Add(time.Hour)
	// Touch must land before the short idle expiry; on a machine too loaded
	// for that, try again with a longer one rather than skip the check.
	var (
		key string
		exp time.Time
		v   uint64
	)
	for i, life := range []time.Duration{ttl, 4 * ttl, 16 * ttl} {
		key = NewKey(t)
		exp = time.Now().Add(life)
		var err error
		if v, err = s.Put(ctx, key, session.Record{Data: []byte("touch me"), IdleExpiry: exp}); err != nil {
			t.Fatalf("Put: %v", err)
		}
		err = s.Touch(ctx, key, later)
		if err == nil {
			break
		}
		if !errors.Is(err, session.ErrNotFound) || time.Now().Before(exp) || i == 2 {
			t.Fatalf("Touch of a live record: %v", err)
		}
	}
	waitUntilPast(t, exp)
	rec := mustGet(t, s, key)
	if rec.Version != v {
		t.Fatalf("Touch changed the version from %d to %d", v, rec.Version)
	}
	if string(rec.Data) != "touch me" {
		t.Fatalf("Touch changed the data to %q", trim(rec.Data))
	}
	if d := rec.IdleExpiry.Sub(later).Abs(); d > time.Millisecond {
		t.Fatalf("IdleExpiry after Touch = %v, want %v (±1ms)", rec.IdleExpiry, later)
	}
	// The version is unchanged, so a CAS holding it still succeeds.
	rec.Data = []byte("after touch")
	rec.IdleExpiry = later
	if _, err := s.Put(ctx, key, rec); err != nil {
		t.Fatalf("Put with the version read before Touch: %v", err)
	}
	// Touch can also shorten the idle expiry, which expires the record.
	if err := s.Touch(ctx, key, time.Now().Add(-time.Second)); err != nil {
		t.Fatalf("Touch to a past time: %v", err)
	}
	pollNotFound(t, s, key)
}

func testDelete(t *testing.T, s session.Store) {
	ctx := testContext(t)
	key := NewKey(t)
	mustCreate(t, s, key, []byte("doomed"))
	if err := s.Delete(ctx, key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := s.Get(ctx, key)
	wantErr(t, "Get after Delete", err, session.ErrNotFound)
	err = s.Touch(ctx, key, time.Now().Add(time.Hour))
	wantErr(t, "Touch after Delete", err, session.ErrNotFound)
	if err := s.Delete(ctx, key); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if err := s.Delete(ctx, NewKey(t)); err != nil {
		t.Fatalf("Delete of a key never written: %v", err)
	}
}

func testEmptyData(t *testing.T, s session.Store) {
	for _, data := range [][]byte{nil, {}} {
		key := NewKey(t)
		v := mustCreate(t, s, key, data)
		rec := mustGet(t, s, key)
		if len(rec.Data) != 0 || rec.Version != v {
			t.Fatalf("Get of an empty record = (%q, v%d), want (\"\", v%d)", trim(rec.Data), rec.Version, v)
		}
	}
}

func testLargeValue(t *testing.T, s session.Store) {
	ctx := testContext(t)
	key := NewKey(t)
	big := make([]byte, largeValue)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	v := mustCreate(t, s, key, big)
	wantRecord(t, key, s, big, v)
	big2 := bytes.Repeat([]byte{0, 0xff, '\'', '"', '\\'}, largeValue/5)
	rec := liveRecord(big2)
	rec.Version = v
	v2, err := s.Put(ctx, key, rec)
	if err != nil {
		t.Fatalf("update with a 1 MB value: %v", err)
	}
	wantRecord(t, key, s, big2, v2)
}

// testContextDone checks that every method fails with the context's error
// when the context is already cancelled or past its deadline.
func testContextDone(t *testing.T, s session.Store) {
	key := NewKey(t)
	v := mustCreate(t, s, key, []byte("ctx"))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	ctxs := []struct {
		name string
		ctx  context.Context
		want error
	}{
		{"cancelled", cancelled, context.Canceled},
		{"deadline exceeded", expired, context.DeadlineExceeded},
	}
	for _, c := range ctxs {
		t.Run(c.name, func(t *testing.T) {
			for _, op := range ops(s, key) {
				err := noHang(t, op.name, func() error { return op.call(c.ctx) })
				wantErr(t, op.name+" with a "+c.name+" context", err, c.want)
			}
		})
	}
	// No call with a done context may have changed the record.
	wantRecord(t, key, s, []byte("ctx"), v)
}

type op struct {
	name string
	call func(ctx context.Context) error
}

// ops returns one call of each Store method on key, for tests that check
// how every method fails.
func ops(s session.Store, key string) []op {
	rec := session.Record{Data: []byte("op"), IdleExpiry: time.Now().Add(time.Hour)}
	list := []op{
		{"Get", func(ctx context.Context) error { _, err := s.Get(ctx, key); return err }},
		{"Put", func(ctx context.Context) error { _, err := s.Put(ctx, key, rec); return err }},
		{"Touch", func(ctx context.Context) error { return s.Touch(ctx, key, time.Now().Add(time.Hour)) }},
		{"Delete", func(ctx context.Context) error { return s.Delete(ctx, key) }},
	}
	if c, ok := s.(session.Counter); ok {
		list = append(list, op{"Count", func(ctx context.Context) error { _, err := c.Count(ctx); return err }})
	}
	if p, ok := s.(session.Pinger); ok {
		list = append(list, op{"Ping", p.Ping})
	}
	return list
}

// noHang runs call and returns its error, failing the test if call has not
// returned within opTimeout+hangGrace.
func noHang(t *testing.T, what string, call func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	timer := time.NewTimer(opTimeout + hangGrace)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		t.Fatalf("%s has not returned after %v: it hangs", what, opTimeout+hangGrace)
		return nil
	}
}

func testNoAliasing(t *testing.T, s session.Store) {
	key := NewKey(t)
	buf := []byte("original")
	v := mustCreate(t, s, key, buf)
	copy(buf, "MUTATED!")
	wantRecord(t, key, s, []byte("original"), v)
	rec := mustGet(t, s, key)
	copy(rec.Data, "MUTATED!")
	wantRecord(t, key, s, []byte("original"), v)
}

func testInvalidKeys(t *testing.T, s session.Store) {
	bad := []struct{ name, key string }{
		{"empty", ""},
		{"too long", strings.Repeat("k", 129)},
		{"slash", "a/b"},
		{"hash tag", "a{b}"},
		{"space", "a b"},
		{"glob", "a*"},
		{"non-ASCII", "caf\u00e9"},
		{"quote", "a'b"},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			ctx := testContext(t)
			for _, op := range ops(s, b.key)[:4] {
				err := op.call(ctx)
				if err == nil {
					t.Fatalf("%s(%q) succeeded, want an error for an invalid key", op.name, b.key)
				}
				for _, sentinel := range []error{session.ErrNotFound, session.ErrConflict, session.ErrUnavailable} {
					if errors.Is(err, sentinel) {
						t.Fatalf("%s(%q) = %v; an invalid key must not look like %v", op.name, b.key, err, sentinel)
					}
				}
			}
		})
	}
	// The longest valid key works.
	mustCreate(t, s, strings.Repeat("k", 64)+NewKey(t), []byte("long key"))
}

// testIndependentKeys checks that keys sharing a prefix do not interfere.
func testIndependentKeys(t *testing.T, s session.Store) {
	ctx := testContext(t)
	base := NewKey(t)
	keys := []string{base, base + "a", base[:32]}
	for i, k := range keys {
		mustCreate(t, s, k, []byte(strconv.Itoa(i)))
	}
	if err := s.Delete(ctx, keys[0]); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	for i, k := range keys[1:] {
		if got := mustGet(t, s, k); string(got.Data) != strconv.Itoa(i+1) {
			t.Fatalf("key %s holds %q after deleting a sibling, want %q", k, got.Data, strconv.Itoa(i+1))
		}
	}
}
