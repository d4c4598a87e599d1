package replstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/storetest"
)

// counter is a session holding a number that increments bump, and how many
// of those increments were acknowledged.
type counter struct {
	key   string
	acked int
}

// bump increments c's number through s by a compare-and-swap, and counts the
// increment when s acknowledged it.
func bump(ctx context.Context, s *Store, c *counter) error {
	rec, err := s.Get(ctx, c.key)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(string(rec.Data))
	if err != nil {
		return fmt.Errorf("stored data %q: %w", rec.Data, err)
	}
	rec.Data = []byte(strconv.Itoa(n + 1))
	if _, err := s.Put(ctx, c.key, rec); err != nil {
		return err
	}
	c.acked++
	return nil
}

// TestPartition cuts one replica of three off from the other two (every
// gossip packet and RPC between them is lost, as on a real network
// partition, while both sides keep serving clients), increments counters
// through both sides, heals the partition and counts the acknowledged
// increments that did not survive.
//
//   - With the default majority quorum the cut-off replica refuses writes
//     (ErrNoQuorum, an ErrUnavailable: the app's 503), before failure
//     detection because one copy of two is not a majority and after it
//     because it sees one member of three, and is not ready; the other two
//     accept them, and after the heal no acknowledged increment is lost.
//   - Without a quorum (QuorumOne) both sides acknowledge increments of the
//     same counters, the cut-off replica even before failure detection; when the partition heals the newer copy of each wins
//     and the other side's acknowledged increments are lost. The test
//     asserts that the loss is observable, and reports it.
func TestPartition(t *testing.T) {
	for _, tc := range []struct {
		name   string
		quorum int
	}{
		{"majority", QuorumMajority},
		{"one", QuorumOne},
	} {
		t.Run(tc.name, func(t *testing.T) {
			faults := newFaultNet()
			nodes := startCluster(t, 3, func(c *Config) {
				c.faults = faults
				c.Quorum = tc.quorum
				c.JoinRetry = 200 * time.Millisecond
				c.RPCTimeout = time.Second
			})
			n0, n1, n2 := nodes[0], nodes[1], nodes[2]
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()

			// Counters the cut-off replica holds a copy of, so that without
			// a quorum it can serve them alone.
			var counters []*counter
			for len(counters) < 12 {
				k := storetest.NewKey(t)
				own := ownerNames(n0, k)
				if own[0] != "n2" && own[1] != "n2" {
					continue
				}
				if _, err := n0.Put(ctx, k, session.Record{Data: []byte("0"), IdleExpiry: time.Now().Add(time.Hour)}); err != nil {
					t.Fatalf("create: %v", err)
				}
				counters = append(counters, &counter{key: k})
			}
			for _, c := range counters {
				for _, s := range nodes {
					if err := bump(ctx, s, c); err != nil {
						t.Fatalf("increment via %s before the partition: %v", s.name, err)
					}
				}
			}

			faults.partition(n2, n0)
			faults.partition(n2, n1)
			// Before failure detection notices, a write through the cut-off
			// replica as a key's primary cannot reach the key's backup: with
			// a quorum it is refused (one copy of two), without one it is
			// acknowledged on the primary's copy alone.
			early := 0
			for _, c := range counters {
				if ownerNames(n2, c.key)[0] != "n2" {
					continue
				}
				err := bump(ctx, n2, c)
				switch {
				case tc.quorum == QuorumOne && err != nil:
					t.Errorf("increment via the cut-off primary before detection without quorum: %v, want it acknowledged", err)
				case tc.quorum == QuorumMajority && (!errors.Is(err, ErrNoQuorum) || !errors.Is(err, session.ErrUnavailable)):
					t.Errorf("increment via the cut-off primary before detection: err = %v, want ErrNoQuorum and ErrUnavailable", err)
				case err != nil:
					early++
				}
				break
			}
			poll(t, 20*time.Second, "each side to declare the other dead", func() bool {
				return len(n2.Members()) == 1 && len(n0.Members()) == 2 && len(n1.Members()) == 2
			})

			var majorityAcked, minorityAcked, refused, staleReads int
			for _, c := range counters {
				before := c.acked
				if err := bump(ctx, n0, c); err != nil {
					t.Errorf("increment via n0 (majority side): %v", err)
				}
				majorityAcked += c.acked - before
				// A read through the cut-off replica now would miss the
				// increment just acknowledged: with a quorum it is refused.
				rec, err := n2.Get(ctx, c.key)
				switch {
				case err == nil && string(rec.Data) != strconv.Itoa(c.acked):
					staleReads++
				case err == nil:
				case !errors.Is(err, ErrNoQuorum) || !errors.Is(err, session.ErrUnavailable):
					t.Errorf("read via n2 (cut off): %v", err)
				}
				before = c.acked
				err = bump(ctx, n2, c)
				minorityAcked += c.acked - before
				switch {
				case err == nil:
				case errors.Is(err, ErrNoQuorum) && errors.Is(err, session.ErrUnavailable):
					refused++
				default:
					t.Errorf("increment via n2 (cut off): %v", err)
				}
			}
			pingErr := n2.Ping(ctx)
			if tc.quorum == QuorumMajority {
				if minorityAcked != 0 || refused != len(counters) {
					t.Errorf("cut-off replica acknowledged %d and refused %d of %d increments, want 0 and all", minorityAcked, refused, len(counters))
				}
				if staleReads != 0 {
					t.Errorf("cut-off replica answered %d reads of %d with a stale copy, want every read refused", staleReads, len(counters))
				}
				if !errors.Is(pingErr, ErrNoQuorum) || !errors.Is(pingErr, session.ErrUnavailable) {
					t.Errorf("Ping of the cut-off replica = %v, want ErrNoQuorum and ErrUnavailable (not ready)", pingErr)
				}
				// The increments via n2 are refused at their read now; the
				// early one (before detection) at its write.
				var writes, reads dto.Metric
				if err := n2.metrics.refused.Write(&writes); err != nil || int(writes.GetCounter().GetValue()) != early {
					t.Errorf("quorum_refused_writes_total on the cut-off replica = %v (%v), want %d", writes.GetCounter().GetValue(), err, early)
				}
				if err := n2.metrics.refusedReads.Write(&reads); err != nil || int(reads.GetCounter().GetValue()) != refused+len(counters) {
					t.Errorf("quorum_refused_reads_total on the cut-off replica = %v (%v), want %d", reads.GetCounter().GetValue(), err, refused+len(counters))
				}
			} else {
				if minorityAcked != len(counters) {
					t.Errorf("without quorum the cut-off replica acknowledged %d of %d increments, want all", minorityAcked, len(counters))
				}
				if pingErr != nil {
					t.Errorf("Ping of the cut-off replica without quorum = %v, want nil", pingErr)
				}
			}
			if err := n0.Ping(ctx); err != nil {
				t.Errorf("Ping of a majority replica = %v, want nil", err)
			}

			faults.heal()
			waitMembers(t, nodes, 3)
			if tc.quorum == QuorumMajority {
				// The cut-off replica is a primary again the moment it is
				// seen, before the rebalance brought it the newer copies:
				// reads through any replica must still see every
				// acknowledged increment.
				for _, s := range nodes {
					stale := 0
					for _, c := range counters {
						rec, err := s.Get(ctx, c.key)
						if err != nil {
							t.Errorf("read via %s right after the heal: %v", s.name, err)
						} else if string(rec.Data) != strconv.Itoa(c.acked) {
							stale++
						}
					}
					if stale > 0 {
						t.Errorf("right after the heal %s read %d of %d counters stale", s.name, stale, len(counters))
					}
				}
			}
			finals := make([]int, len(counters))
			poll(t, 20*time.Second, "every replica to read the same copy of every counter", func() bool {
				for i, c := range counters {
					var first session.Record
					for j, s := range nodes {
						rec, err := s.Get(ctx, c.key)
						if err != nil {
							return false
						}
						if j == 0 {
							first = rec
						} else if rec.Version != first.Version || string(rec.Data) != string(first.Data) {
							return false
						}
					}
					n, err := strconv.Atoi(string(first.Data))
					if err != nil {
						t.Fatalf("stored data %q: %v", first.Data, err)
					}
					finals[i] = n
				}
				return true
			})
			acked, lost := 0, 0
			for i, c := range counters {
				acked += c.acked
				if finals[i] < c.acked {
					lost += c.acked - finals[i]
				}
			}
			t.Logf("quorum %s: %d acknowledged increments (%d on the majority side and %d on the cut-off replica during the partition, %d refused there); %d lost after the heal",
				tc.name, acked, majorityAcked, minorityAcked, refused, lost)
			if tc.quorum == QuorumMajority && lost != 0 {
				t.Errorf("with a majority quorum %d acknowledged increments were lost, want 0", lost)
			}
			if tc.quorum == QuorumOne && lost == 0 {
				t.Errorf("without quorum no acknowledged increment was lost; both sides wrote the same counters, so the heal must have dropped one side's")
			}
			if err := n2.Ping(ctx); err != nil {
				t.Errorf("Ping of the healed replica = %v, want nil", err)
			}
			if err := bump(ctx, n2, counters[0]); err != nil {
				t.Errorf("increment via the healed replica: %v", err)
			}
		})
	}
}
