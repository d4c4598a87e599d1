package game

import (
	"context"
	"time"
)

// Strategy names where a room's state lives (--strategy).
type Strategy string

// The strategies.
const (
	// StrategyMemory keeps a room in its owner's memory only: the owner's
	// death, or a membership change that moves the room, loses it.
	StrategyMemory Strategy = "memory"
	// StrategyCheckpoint has the owner write the room to the store every
	// Config.Checkpoint and when it hands the room over; a new owner
	// resumes from the last checkpoint.
	StrategyCheckpoint Strategy = "checkpoint"
	// StrategyExternal keeps no room in memory: every input is one
	// compare-and-swap transaction on the store and any replica serves any
	// room.
	StrategyExternal Strategy = "external"
)

// StrategyInfo is one row of the strategy table.
type StrategyInfo struct {
	// Name is the --strategy value.
	Name Strategy
	// NeedsStore is true when the strategy keeps rooms or leases in a store.
	NeedsStore bool
	// Owned is true when each room has one owner replica that runs its
	// ticks (placement, lease); false when any replica serves any room.
	Owned bool
	// Promise says in plain words what survives the owner's death.
	Promise string
}

// Strategies is the strategy table, in the order the docs present them.
var Strategies = []StrategyInfo{
	{StrategyMemory, false, true, "the room lives in its owner's memory: the owner's death loses it"},
	{StrategyCheckpoint, true, true, "the owner checkpoints the room to the store: a new owner resumes from the last checkpoint, losing at most one interval"},
	{StrategyReplicated, true, true, "the owner copies every tick to a backup replica before acknowledging it: the backup takes over with no acknowledged input lost"},
	{StrategyExternal, true, false, "every input is a compare-and-swap transaction on the store: no acknowledged input is lost, at the store's cost per input"},
}

// Lookup returns the row of name, or false.
func Lookup(name string) (StrategyInfo, bool) {
	for _, s := range Strategies {
		if string(s.Name) == name {
			return s, true
		}
	}
	return StrategyInfo{}, false
}

// StrategyNames returns the --strategy values.
func StrategyNames() []string {
	out := make([]string, len(Strategies))
	for i, s := range Strategies {
		out[i] = string(s.Name)
	}
	return out
}

// keeper is how an owned room's state outlives its owner (or does not).
type keeper interface {
	// activate makes this replica the room's owner and returns its lease
	// and the state to start from.
	activate(ctx context.Context, room string) (lease, *State, bool, error)
	// save writes state under l, renewing the lease, or releasing it when
	// final. It updates l on success and returns ErrFenced when a newer
	// owner holds the room.
	save(ctx context.Context, room string, l *lease, state *State, final bool) error
	// saveMany renews several rooms' leases at once, each with its state
	// (not final): one store round trip where the store allows it. It
	// returns one error per request, as save would.
	saveMany(ctx context.Context, reqs []saveReq) []error
	// interval is how often save runs (0: never) and checkpoint how often
	// it writes the current state rather than the last saved one.
	interval() (every, checkpoint time.Duration)
}

// forever is the lease of a keeper without a store: it never lapses.
var forever = time.Now().Add(100 * 365 * 24 * time.Hour)

// memoryKeeper keeps nothing: a room starts fresh at every activation.
type memoryKeeper struct{ epoch uint64 }

func (k *memoryKeeper) activate(ctx context.Context, room string) (lease, *State, bool, error) {
	return lease{epoch: 1, validUntil: forever}, NewState(room), false, nil
}

func (k *memoryKeeper) save(context.Context, string, *lease, *State, bool) error { return nil }

func (k *memoryKeeper) saveMany(_ context.Context, reqs []saveReq) []error {
	return make([]error, len(reqs))
}

func (k *memoryKeeper) interval() (time.Duration, time.Duration) { return 0, 0 }

// checkpointKeeper keeps the lease and the last checkpoint in one store
// record per room.
type checkpointKeeper struct {
	rs         *recordStore
	owner      string
	lease      time.Duration
	checkpoint time.Duration
}

func (k *checkpointKeeper) activate(ctx context.Context, room string) (lease, *State, bool, error) {
	l, st, err := k.rs.acquire(ctx, room, k.owner, k.lease)
	return l, st, err == nil && st.Tick > 0, err
}

func (k *checkpointKeeper) save(ctx context.Context, room string, l *lease, st *State, final bool) error {
	d := k.lease
	if final {
		d = 0
	}
	return k.rs.write(ctx, room, k.owner, l, st, d)
}

func (k *checkpointKeeper) saveMany(ctx context.Context, reqs []saveReq) []error {
	return k.rs.writeMany(ctx, k.owner, reqs, k.lease)
}

func (k *checkpointKeeper) interval() (time.Duration, time.Duration) {
	return min(k.checkpoint, k.lease/3), k.checkpoint
}
