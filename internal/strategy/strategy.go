// Package strategy is the table of cart strategies: where a cluster keeps
// its shopping carts. Each strategy is one row (a Spec) that fixes the
// replicas' store kind, the balancer's policy and the plain words the
// playground and the report use for it. The app, the cluster, the lab, the
// report and the playground all read this table; none of them names a
// strategy by a string of its own.
//
// Adding a strategy is one row here (and its store in package stores, if
// it needs a new kind).
package strategy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/statelab/statelab/balancer"
	"github.com/statelab/statelab/internal/stores"
)

// ErrUnknown is returned by Parse for a name that is not in the table.
var ErrUnknown = errors.New("strategy: unknown strategy")

// Strategy names where a cluster keeps its shopping carts: one row of the
// table (see docs/strategies.md).
type Strategy string

// The six strategies, in the table's order.
const (
	// Naive keeps carts in replica memory behind a round-robin balancer.
	Naive Strategy = "naive"
	// Sticky keeps carts in replica memory behind sticky sessions.
	Sticky Strategy = "sticky"
	// Replicated keeps carts in replica memory copied to peer replicas.
	Replicated Strategy = "replicated"
	// Cache keeps carts in Redis.
	Cache Strategy = "cache"
	// Database keeps carts in SQLite, or PostgreSQL when a URL is given.
	Database Strategy = "database"
	// Client keeps carts in a sealed cookie held by the client.
	Client Strategy = "client"
)

// Spec is one row of the table: everything the rest of statelab needs to
// know about a strategy.
type Spec struct {
	// Strategy is the row's name, as --strategy spells it.
	Strategy Strategy
	// Store is the replicas' --store. For Database it is SQLite; a cluster
	// given a PostgreSQL URL runs stores.Postgres instead.
	Store stores.Kind
	// Policy is the balancer's --policy (one of balancer.Policies).
	Policy string
	// Where completes "your cart lives …", in plain words.
	Where string
	// Source names where a replica reads a cart from, for "r3 read your
	// cart from …"; empty when carts live in one replica's memory only.
	Source string
}

// table is the strategy table, in the order every list and report uses.
var table = []Spec{
	{Naive, stores.Memory, balancer.PolicyRoundRobin, "in the memory of whichever replica served the request", ""},
	{Sticky, stores.Memory, balancer.PolicySticky, "in the memory of the replica your sticky cookie names", ""},
	{Replicated, stores.Replicated, balancer.PolicySticky, "in replica memory, copied to a peer replica", "a peer's copy"},
	{Cache, stores.Redis, balancer.PolicyRoundRobin, "in Redis", "Redis"},
	{Database, stores.SQLite, balancer.PolicyRoundRobin, "in the database", "the database"},
	{Client, stores.Cookie, balancer.PolicyRoundRobin, "in a sealed cookie in your browser", "the cookie your browser sent"},
}

// External reports whether the strategy keeps its carts in a store outside
// the replicas and the client (a Redis, a database), which a scenario can
// stop and start.
func (s Spec) External() bool { return s.Store.External() }

// All returns every strategy, in the table's order.
func All() []Strategy {
	out := make([]Strategy, len(table))
	for i, s := range table {
		out[i] = s.Strategy
	}
	return out
}

// Specs returns every row of the table, in its order.
func Specs() []Spec { return append([]Spec(nil), table...) }

// Names returns the names of All, for flag help and error messages.
func Names() []string {
	out := make([]string, len(table))
	for i, s := range table {
		out[i] = string(s.Strategy)
	}
	return out
}

// Parse returns the Strategy named s (surrounding space ignored), or an
// error wrapping ErrUnknown that lists the valid names.
func Parse(s string) (Strategy, error) {
	if spec, ok := Lookup(Strategy(strings.TrimSpace(s))); ok {
		return spec.Strategy, nil
	}
	return "", fmt.Errorf("%w %q (want one of %s)", ErrUnknown, s, strings.Join(Names(), ", "))
}

// Lookup returns the row of s, or false when s is not in the table.
func Lookup(s Strategy) (Spec, bool) {
	for _, spec := range table {
		if spec.Strategy == s {
			return spec, true
		}
	}
	return Spec{}, false
}

// Spec returns the row of s; the zero Spec when s is not in the table.
func (s Strategy) Spec() Spec {
	spec, _ := Lookup(s)
	return spec
}

// String returns the strategy's name.
func (s Strategy) String() string { return string(s) }
