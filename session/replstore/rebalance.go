package replstore

import (
	"context"
	"errors"
	"time"
)

// mergeBatch is how many records one merge RPC carries.
const mergeBatch = 256

// rebalanceDebounce lets a burst of membership events (a node and its
// metadata, several nodes joining at once) settle into one pass.
const rebalanceDebounce = 50 * time.Millisecond

// rebalanceLoop runs a full pass after every membership change, and again
// after a failed pass until one succeeds.
func (s *Store) rebalanceLoop() {
	defer s.wg.Done()
	var retry <-chan time.Time
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.changed:
		case <-retry:
		}
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(rebalanceDebounce):
		}
		retry = nil
		ctx, cancel := context.WithTimeout(s.ctx, 4*s.cfg.RPCTimeout)
		err := s.rebalance(ctx, true)
		cancel()
		if err != nil && s.ctx.Err() == nil {
			s.log.Warn("replstore: re-replication incomplete; retrying", "err", err)
			retry = time.After(500 * time.Millisecond)
		}
	}
}

// tidyOnce runs every TidyInterval: it hands records this replica no
// longer owns to their owners, and sweeps expired records and old
// tombstones. It always returns true (keep going).
func (s *Store) tidyOnce() bool {
	s.tab.sweep(time.Now(), s.cfg.TombstoneTTL)
	ctx, cancel := context.WithTimeout(s.ctx, 4*s.cfg.RPCTimeout)
	defer cancel()
	if err := s.rebalance(ctx, false); err != nil && s.ctx.Err() == nil {
		s.log.Debug("replstore: tidy pass incomplete", "err", err)
	}
	return true
}

// rebalance pushes held records to their owners under the current
// membership. A full pass pushes every record to every other owner, so that
// each again has Backups+1 copies after a member died or joined; otherwise
// only records this replica does not own are pushed. Records this replica
// does not own are dropped once all their owners have them (on a leaving
// replica that is every record: the handover).
func (s *Store) rebalance(ctx context.Context, full bool) error {
	nodes := s.nodes()
	if len(nodes) == 0 {
		if n := s.tab.countLive(time.Now()); n > 0 && s.leaving.Load() {
			s.log.Warn("replstore: last member leaving; its sessions are lost", "records", n)
		}
		return nil
	}
	type target struct {
		node  node
		items []mergeItem
	}
	targets := make(map[string]*target)
	type held struct {
		key     string
		version uint64
		deleted bool
		to      []string
	}
	var drops []held
	for key, e := range s.tab.snapshot() {
		own := owners(key, nodes, s.cfg.Backups)
		mine := false
		for _, o := range own {
			if o.Name == s.name {
				mine = true
			}
		}
		if mine && !full {
			continue
		}
		var to []string
		for _, o := range own {
			if o.Name == s.name {
				continue
			}
			t := targets[o.Name]
			if t == nil {
				t = &target{node: o}
				targets[o.Name] = t
			}
			t.items = append(t.items, mergeItem{Key: key, Entry: e})
			to = append(to, o.Name)
		}
		if !mine {
			drops = append(drops, held{key, e.Rec.Version, e.Deleted, to})
		}
	}
	failed := make(map[string]error)
	sent := 0
	for name, t := range targets {
		for i := 0; i < len(t.items); i += mergeBatch {
			batch := t.items[i:min(i+mergeBatch, len(t.items))]
			if err := s.rpcMerge(ctx, t.node.RPCAddr, batch); err != nil {
				failed[name] = err
				break
			}
			sent += len(batch)
		}
	}
	s.metrics.rereplicated.Add(float64(sent))
	dropped := 0
	for _, d := range drops {
		ok := true
		for _, n := range d.to {
			if failed[n] != nil {
				ok = false
			}
		}
		if ok && s.tab.dropIf(d.key, d.version, d.deleted) {
			dropped++
		}
	}
	if sent > 0 || dropped > 0 || len(failed) > 0 {
		s.log.Debug("replstore: rebalanced", "full", full, "pushed", sent, "dropped", dropped, "failed_peers", len(failed), "members", len(nodes))
	}
	if len(failed) > 0 {
		errs := make([]error, 0, len(failed))
		for _, err := range failed {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}
	return nil
}
