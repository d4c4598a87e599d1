package lab

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// Results is the content of results.json (its fields are described in
// docs/lab.md).
type Results struct {
	Version int         `json:"version"`
	Machine Machine     `json:"machine"`
	Runs    []RunResult `json:"runs"`
	Claims  []Claim     `json:"claims"`
	// Sweep is the scaling sweep (statelab lab --sweep), when one ran.
	Sweep *Sweep `json:"sweep,omitempty"`
}

// Machine describes where the runs ran.
type Machine struct {
	CPUs int    `json:"cpus"`
	Go   string `json:"go"`
}

// ThisMachine describes the current machine.
func ThisMachine() Machine { return Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()} }

// Latency holds latency percentiles in milliseconds, measured from each
// request's scheduled send time.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// RunResult is one strategy × scenario run, as results.json records it.
type RunResult struct {
	// Service is what the run drove: cart or game.
	Service     Service `json:"service"`
	Strategy    string  `json:"strategy"`
	Scenario    string  `json:"scenario"`
	Store       string  `json:"store"`
	Policy      string  `json:"policy"`
	Replicas    int     `json:"replicas"`
	DurationS   float64 `json:"duration_s"`
	OfferedRPS  float64 `json:"offered_rps"`
	AchievedRPS float64 `json:"achieved_rps"`
	Requests    int64   `json:"requests"`
	Errors      int64   `json:"errors"`
	ErrorRate   float64 `json:"error_rate"`
	// ErrorCauses counts the errors by cause: "503 store_unavailable"
	// (status and the JSON error's code), "502", "no answer: timeout", …
	ErrorCauses  map[string]int64   `json:"error_causes,omitempty"`
	LatencyMS    Latency            `json:"latency_ms"`
	Carts        int                `json:"carts"`
	CartsLost    int                `json:"carts_lost"`
	ItemsAcked   int                `json:"items_acked"`
	ItemsLost    int                `json:"items_lost"`
	LostUpdates  int                `json:"lost_updates"`
	StaleReads   int                `json:"stale_reads"`
	Linearizable *bool              `json:"linearizable"`
	ReplicaShare map[string]float64 `json:"replica_share"`
	Imbalance    float64            `json:"imbalance"`
	RecoveryMS   *int64             `json:"recovery_ms"`
	CPUSaturated bool               `json:"cpu_saturated"`
	// GameResult holds the game run's own fields; nil (and absent from
	// the JSON) in a cart run.
	*GameResult
	// Replay is what the replay probe found (cart steady runs only;
	// absent otherwise).
	Replay *Replay `json:"replay,omitempty"`
	// StoreDelayMS, StoreResets and StoreConnsReset describe a link fault
	// (slowstore, flaky): the latency added to each store round trip, the
	// share of new store connections reset, and how many were reset.
	StoreDelayMS    float64 `json:"store_delay_ms,omitempty"`
	StoreResets     float64 `json:"store_resets,omitempty"`
	StoreConnsReset int64   `json:"store_conns_reset,omitempty"`
	// Services is what surge and deploy measured of the microservice shape.
	Services *ServicesResult `json:"services,omitempty"`
	// Hosts reports that every replica ran as a host of its own (a
	// network namespace): the partition and isolate scenarios.
	Hosts bool `json:"hosts,omitempty"`
	// ReplQuorum is the write quorum of a replicated run: majority, one
	// (no quorum) or a member count.
	ReplQuorum string `json:"repl_quorum,omitempty"`
	// RedisMode is the cache's Redis: single, cluster or sentinel;
	// RedisWait its replicas' --redis-wait; FailoverMS, after a storefail
	// on a cluster or sentinel set, the time from killing the master to the
	// promotion of its replica.
	RedisMode  string `json:"redis_mode,omitempty"`
	RedisWait  int    `json:"redis_wait,omitempty"`
	FailoverMS *int64 `json:"failover_ms,omitempty"`
	// Target is the URL of the deployment the run drove when the lab did
	// not start it (lab --target); empty otherwise.
	Target string `json:"target,omitempty"`
}

// Claim is one statement of the seed lesson with the measured evidence.
// Holds is nil when the runs it needs were not made.
type Claim struct {
	Claim    string `json:"claim"`
	Evidence string `json:"evidence"`
	Holds    *bool  `json:"holds"`
}

// WriteJSON writes r to path (creating its directory), indented.
func (r Results) WriteJSON(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("lab: write results: %w", err)
	}
	if r.Runs == nil {
		r.Runs = []RunResult{}
	}
	if r.Claims == nil {
		r.Claims = []Claim{}
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("lab: write results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("lab: write results: %w", err)
	}
	return nil
}
