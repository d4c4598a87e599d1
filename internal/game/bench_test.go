package game

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/testenv"
	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/redisstore"
)

// Two benchmarks of one replica's room engine, per strategy. The load is
// generated in the same process: one goroutine per room enqueueing one
// input per player every 50 ms tick (20 Hz); for external, which has no
// ticks, each input is its own store transaction. They measure the rooms,
// rules, acknowledgements, checkpoints, lease renewals and replication,
// not HTTP or WebSocket framing. The store is the Redis of
// STATELAB_TEST_REDIS (the strategies that need one skip without it).
//
// BenchmarkRoomCapacity doubles the rooms (4 players each) until the p99
// tick lag (external: input latency) exceeds half a tick; the last count
// that held is the capacity. A stall of the whole process delays every
// room's tick at once, so this figure moves with whatever else the
// machine runs.
//
// BenchmarkRoomCPU runs every strategy at one fixed load (benchRefRooms
// rooms), interleaved over rounds, and reports the process's CPU time per
// acknowledged input and its ratio to memory in the same round (median of
// the rounds): the robust comparison on a shared machine.
//
//	STATELAB_TEST_REDIS=redis://127.0.0.1:6379/0 \
//	  go test -run '^$' -bench 'BenchmarkRoom' -benchtime 1x ./internal/game
//
// For replicated the backup is a second Server in the same process (its
// CPU is counted too) reached over loopback HTTP.

const (
	benchTick    = 50 * time.Millisecond
	benchPlayers = 4
	benchWarm    = time.Second
	benchRun     = 2 * time.Second
	// benchRefRooms is the fixed load at which CPU per input is compared.
	benchRefRooms = 100
	// benchRounds is how many interleaved rounds BenchmarkRoomCPU runs.
	benchRounds = 3
)

var benchStrategies = []Strategy{StrategyMemory, StrategyCheckpoint, StrategyReplicated, StrategyExternal}

// benchStore opens a Redis store under a fresh prefix for strategy, nil
// when it needs none; it skips b without STATELAB_TEST_REDIS.
func benchStore(b *testing.B, strategy Strategy) session.Store {
	b.Helper()
	if info, _ := Lookup(string(strategy)); !info.NeedsStore {
		return nil
	}
	url := os.Getenv("STATELAB_TEST_REDIS")
	if url == "" {
		b.Skip("set STATELAB_TEST_REDIS to measure the strategies that use a store")
	}
	s, err := redisstore.OpenURL(context.Background(), url, redisstore.Options{Prefix: "statelab-bench-" + strings.ToLower(rand.Text()[:8]) + ":"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func BenchmarkRoomCapacity(b *testing.B) {
	capacity := map[Strategy]int{}
	for _, strategy := range benchStrategies {
		b.Run(string(strategy), func(b *testing.B) {
			store := benchStore(b, strategy)
			held := 0
			for rooms := 10; rooms <= 5120; rooms *= 2 {
				st := benchStep(b, strategy, store, rooms)
				b.Logf("%s: %4d rooms × %d players: p99 lag %6v, %6d inputs/s, CPU %v per input",
					strategy, rooms, benchPlayers, st.p99.Round(100*time.Microsecond), st.inputsPerSec, st.cpuPerInput.Round(100*time.Nanosecond))
				if st.p99 > benchTick {
					break // clearly overloaded: larger steps only take longer
				}
				if st.p99 <= benchTick/2 {
					held = rooms
				}
			}
			capacity[strategy] = held
			b.ReportMetric(float64(held), "rooms")
			b.ReportMetric(float64(held*benchPlayers), "players")
			if m := capacity[StrategyMemory]; m > 0 && strategy != StrategyMemory {
				b.ReportMetric(float64(held)/float64(m), "rooms_ratio_to_memory")
			}
		})
	}
}

func BenchmarkRoomCPU(b *testing.B) {
	stores := map[Strategy]session.Store{}
	var strategies []Strategy
	for _, s := range benchStrategies {
		if info, _ := Lookup(string(s)); info.NeedsStore && os.Getenv("STATELAB_TEST_REDIS") == "" {
			continue
		}
		stores[s] = benchStore(b, s)
		strategies = append(strategies, s)
	}
	cpu := map[Strategy][]time.Duration{}
	ratio := map[Strategy][]float64{}
	for round := range benchRounds {
		var mem time.Duration
		for _, s := range strategies {
			st := benchStep(b, s, stores[s], benchRefRooms)
			b.Logf("round %d: %-10s %d rooms × %d players: CPU %6v per input, %5d inputs/s, p99 lag %v",
				round+1, s, benchRefRooms, benchPlayers, st.cpuPerInput.Round(100*time.Nanosecond), st.inputsPerSec, st.p99.Round(100*time.Microsecond))
			cpu[s] = append(cpu[s], st.cpuPerInput)
			if s == StrategyMemory {
				mem = st.cpuPerInput
			} else if mem > 0 {
				ratio[s] = append(ratio[s], float64(st.cpuPerInput)/float64(mem))
			}
		}
	}
	for _, s := range strategies {
		b.ReportMetric(float64(median(cpu[s]).Nanoseconds())/1e3, string(s)+"_cpu_µs/input")
		if len(ratio[s]) > 0 {
			b.ReportMetric(median(ratio[s]), string(s)+"_cpu_ratio_to_memory")
		}
	}
}

func median[T time.Duration | float64](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// benchStats is what one step measured.
type benchStats struct {
	p99          time.Duration // tick lag (external: input latency)
	inputsPerSec int
	// cpuPerInput is this process's CPU time (servers and load
	// generator) over the acknowledged inputs.
	cpuPerInput time.Duration
}

// benchServer starts the Server under test; for replicated also its
// backup, both on loopback HTTP with a placement naming the two.
func benchServer(b *testing.B, strategy Strategy, store session.Store) *Server {
	b.Helper()
	cfg := Config{ID: "bench", Strategy: strategy, Store: store, Tick: benchTick, Secret: "benchmark secret",
		Logger: discardLogger(), StoreTimeout: 5 * time.Second}
	if strategy != StrategyReplicated {
		srv, err := NewServer(cfg)
		if err != nil {
			b.Fatal(err)
		}
		return srv
	}
	// The rooms are chosen so that "bench" owns them (benchRoomIDs) and
	// "backup" holds their copies.
	po, pb := &staticPlacement{self: "bench"}, &staticPlacement{self: "backup"}
	cfg.Placement = po
	srv, err := NewServer(cfg)
	if err != nil {
		b.Fatal(err)
	}
	cfg.ID, cfg.Placement = "backup", pb
	backup, err := NewServer(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ho, hb := httptest.NewServer(srv), httptest.NewServer(backup)
	b.Cleanup(func() { ho.Close(); hb.Close(); backup.Close() })
	ms := []Member{{"backup", strings.TrimPrefix(hb.URL, "http://")}, {"bench", strings.TrimPrefix(ho.URL, "http://")}}
	po.set(ms)
	pb.set(ms)
	return srv
}

// benchRoomIDs returns n room IDs the server owns by placement.
func benchRoomIDs(srv *Server, n int) []string {
	prefix := strings.ToLower(rand.Text()[:6])
	var out []string
	for i := 0; len(out) < n; i++ {
		id := fmt.Sprintf("b%s-%d", prefix, i)
		if srv.owner(id).Name == srv.id {
			out = append(out, id)
		}
	}
	return out
}

// benchStep runs rooms rooms for benchWarm+benchRun and measures the
// lag and CPU during benchRun.
func benchStep(b *testing.B, strategy Strategy, store session.Store, rooms int) benchStats {
	b.Helper()
	srv := benchServer(b, strategy, store)
	defer srv.Close()
	var lagMu sync.Mutex
	var lags []time.Duration
	measuring := make(chan struct{})
	record := func(d time.Duration) {
		select {
		case <-measuring:
			lagMu.Lock()
			lags = append(lags, d)
			lagMu.Unlock()
		default:
		}
	}
	srv.observeLag = record
	var inputs atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, room := range benchRoomIDs(srv, rooms) {
		wg.Go(func() { benchRoom(ctx, srv, room, strategy == StrategyExternal, record, &inputs) })
	}
	time.Sleep(benchWarm)
	before, cpuBefore := inputs.Load(), testenv.ProcessCPU()
	close(measuring)
	time.Sleep(benchRun)
	lagMu.Lock()
	sample := slices.Clone(lags)
	lagMu.Unlock()
	n, cpu := inputs.Load()-before, testenv.ProcessCPU()-cpuBefore
	cancel()
	wg.Wait()
	st := benchStats{p99: time.Hour, inputsPerSec: int(n * int64(time.Second) / int64(benchRun))}
	if n > 0 {
		st.cpuPerInput = cpu / time.Duration(n)
	}
	if len(sample) > 0 {
		slices.Sort(sample)
		st.p99 = sample[len(sample)*99/100]
	}
	return st
}

// benchRoom plays one room until ctx ends: every tick, one input per
// player (owned strategies: queued for the room's tick; external: one
// store transaction each, its latency recorded), counting the
// acknowledged ones.
func benchRoom(ctx context.Context, srv *Server, room string, external bool, record func(time.Duration), acked *atomic.Int64) {
	t := time.NewTicker(benchTick)
	defer t.Stop()
	seq := make([]uint64, benchPlayers)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var replies []<-chan outcome
		var players []int
		for p := range benchPlayers {
			in := Input{Player: fmt.Sprintf("p%d", p), Seq: seq[p] + 1, Move: moves[(int(seq[p])+p)%len(moves)]}
			if external {
				start := time.Now()
				if _, err := srv.externalInput(ctx, room, in); err == nil {
					seq[p]++
					acked.Add(1)
				}
				record(time.Since(start))
				continue
			}
			rm, err := srv.roomFor(ctx, room)
			if err != nil {
				continue
			}
			if c, err := rm.enqueue(in); err == nil {
				replies = append(replies, c)
				players = append(players, p)
				seq[p]++
			}
		}
		for i, c := range replies {
			select {
			case o := <-c:
				if o.err == nil {
					acked.Add(1)
				} else {
					seq[players[i]]-- // not applied: send it again
				}
			case <-ctx.Done():
				return
			}
		}
	}
}

var moves = []string{"up", "right", "down", "left", "stay"}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
