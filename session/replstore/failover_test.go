package replstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/storetest"
)

// keyOwnedByPair returns a fresh key whose owners, as s sees them, are
// primary then backup.
func keyOwnedByPair(t testing.TB, s *Store, primary, backup string) string {
	t.Helper()
	for i := 0; i < 10000; i++ {
		k := storetest.NewKey(t)
		if own := ownerNames(s, k); own[0] == primary && own[1] == backup {
			return k
		}
	}
	t.Fatalf("no key owned by %s then %s in 10000 tries", primary, backup)
	return ""
}

// TestFailoverBeforeDetection covers the window between a replica's death
// and its detection, which the lab's failover scenario hits on every run:
// each call must either take effect or fail with ErrUnavailable having
// changed nothing, and a session must never look missing.
//
//   - A write whose only backup is dead fails with ErrUnavailable and is not
//     applied on the primary either: a retry of it (a balancer retries a
//     DELETE that got a 503) or a read through another replica must not
//     find it done.
//   - A read whose primary is dead is served by the backup that holds the
//     record; if no owner that answered holds it, the answer is
//     ErrUnavailable, never ErrNotFound (the session manager would issue a
//     new session and the client's cart would be lost).
//   - A primary without the record (restarted with empty memory) fetches it
//     from its backup before deciding a compare-and-swap, rather than
//     failing it as a conflict.
func TestFailoverBeforeDetection(t *testing.T) {
	nodes := startCluster(t, 3, func(c *Config) {
		// Keep the dead member in every view for the whole test: this is
		// the window before failure detection.
		c.ProbeInterval = time.Minute
	})
	n0, n1, n2 := nodes[0], nodes[1], nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	idle := time.Now().Add(time.Hour)

	put := func(through *Store, key, data string, version uint64) (uint64, error) {
		return through.Put(ctx, key, session.Record{Data: []byte(data), Version: version, IdleExpiry: idle})
	}
	getData := func(through *Store, key string) string {
		t.Helper()
		rec, err := through.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get %s via %s: %v", key[:8], through.name, err)
		}
		return string(rec.Data)
	}

	// A new primary without the record: drop it from the primary's copy,
	// as a restart with empty memory would, and update it through another
	// replica.
	fresh := keyOwnedByPair(t, n2, "n0", "n1")
	v1, err := put(n2, fresh, "v1", 0)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	n0.tab.mu.Lock()
	delete(n0.tab.m, fresh)
	n0.tab.mu.Unlock()
	if _, err := put(n2, fresh, "v2", v1); err != nil {
		t.Fatalf("update through a primary that lacks the record: %v, want success (it must fetch it from its backup)", err)
	}
	if got := getData(n0, fresh); got != "v2" {
		t.Fatalf("after the update the primary reads %q, want v2", got)
	}

	// Keys for the window after n1 dies: one n1 backs up, one n1 is the
	// primary of.
	backedByDead := keyOwnedByPair(t, n2, "n0", "n1")
	ownedByDead := keyOwnedByPair(t, n2, "n1", "n0")
	vb, err := put(n2, backedByDead, "b1", 0)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := put(n2, ownedByDead, "o1", 0); err != nil {
		t.Fatalf("create: %v", err)
	}
	never := keyOwnedByPair(t, n2, "n1", "n0")

	n1.kill()

	// The write's only backup is dead: it must fail cleanly.
	for _, through := range []*Store{n2, n0} {
		_, err := put(through, backedByDead, "b2", vb)
		if !errors.Is(err, session.ErrUnavailable) {
			t.Fatalf("Put via %s with the backup dead: err = %v, want ErrUnavailable", through.name, err)
		}
		for _, reader := range []*Store{n0, n2} {
			if got := getData(reader, backedByDead); got != "b1" {
				t.Fatalf("Get via %s after a Put that failed with ErrUnavailable = %q, want b1 (the failed write must not have taken effect)", reader.name, got)
			}
		}
	}

	// The primary is dead: its backup serves the record, to every reader.
	for _, reader := range []*Store{n2, n0} {
		if got := getData(reader, ownedByDead); got != "o1" {
			t.Fatalf("Get via %s with the primary dead = %q, want o1 from the backup", reader.name, got)
		}
	}

	// No owner that answered holds the key, and its primary did not
	// answer: unknown, not missing.
	_, err = n2.Get(ctx, never)
	if !errors.Is(err, session.ErrUnavailable) || errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Get of a key whose primary is dead and backup does not hold it: err = %v, want ErrUnavailable and not ErrNotFound", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("the calls took until the test's deadline")
	}
}

// TestRecordOnlyOnFormerOwner covers the window after a membership change
// (replicas that started apart meeting, a partition healing) before the
// rebalance has moved a record to its new owners: the record lives only on a
// member that no longer owns it. Reads must still find it (ErrNotFound would
// make the session manager issue a new session, and the client lose its
// cart), and a compare-and-swap through the new primary must succeed.
func TestRecordOnlyOnFormerOwner(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	idle := time.Now().Add(time.Hour)
	for _, reader := range nodes {
		// The record lives only on the member that is not an owner.
		key := keyOwnedByPair(t, nodes[0], "n0", "n1")
		const version = 7
		nodes[2].tab.set(key, entry{Rec: session.Record{Data: []byte("cart"), Version: version, IdleExpiry: idle}})
		rec, err := reader.Get(ctx, key)
		if err != nil || string(rec.Data) != "cart" {
			t.Fatalf("Get via %s of a record held only by a former owner = %q, %v; want it found", reader.name, rec.Data, err)
		}
		if _, err := reader.Put(ctx, key, session.Record{Data: []byte("cart2"), Version: version, IdleExpiry: idle}); err != nil {
			t.Fatalf("Put via %s over the version held only by a former owner: %v", reader.name, err)
		}
		for _, r := range nodes {
			if rec, err := r.Get(ctx, key); err != nil || string(rec.Data) != "cart2" {
				t.Fatalf("Get via %s after the update = %q, %v; want cart2", r.name, rec.Data, err)
			}
		}
	}
	// A key nobody holds is still reported missing.
	if _, err := nodes[1].Get(ctx, storetest.NewKey(t)); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Get of an unknown key: err = %v, want ErrNotFound", err)
	}
}
