package replstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/statelab/statelab/session"
)

// TestSecretRotation: a cluster changes its secret by three rolling
// restarts (docs/replication.md): add the new secret as an accepted one,
// make it the primary, drop the old one. At every step a replica of the
// step before and one of the step after form one cluster and replicate
// writes made through either. Before OldSecrets, two replicas with
// different secrets could not talk at all.
func TestSecretRotation(t *testing.T) {
	prev, next := []byte("the old replication secret"), []byte("the new replication secret")
	type keys struct {
		secret []byte
		old    [][]byte
	}
	steps := []keys{
		{prev, nil},
		{prev, [][]byte{next}},
		{next, [][]byte{prev}},
		{next, nil},
	}
	for i := 1; i < len(steps); i++ {
		t.Run(fmt.Sprintf("step %d", i), func(t *testing.T) {
			var nodes []*Store
			for j, k := range []keys{steps[i-1], steps[i]} {
				cfg := testConfig(t, fmt.Sprintf("n%d", j))
				cfg.Secret, cfg.OldSecrets = k.secret, k.old
				if j > 0 {
					cfg.Peers = []string{nodes[0].ClusterAddr()}
				}
				nodes = append(nodes, startNode(t, cfg))
			}
			waitMembers(t, nodes, 2)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for j, through := range nodes {
				key := fmt.Sprintf("k%d", j)
				exp := time.Now().Add(time.Hour)
				if _, err := through.Put(ctx, key, session.Record{Data: []byte(key), IdleExpiry: exp}); err != nil {
					t.Fatalf("put through %s: %v", through.name, err)
				}
				for _, s := range nodes {
					if rec, err := s.Get(ctx, key); err != nil || string(rec.Data) != key {
						t.Errorf("get %s through %s: %q, %v", key, s.name, rec.Data, err)
					}
				}
			}
			for _, key := range []string{"k0", "k1"} {
				if got := holders(nodes, key); len(got) != 2 {
					t.Errorf("%s is held by %v, want both replicas (primary and backup)", key, got)
				}
			}
		})
	}
}
