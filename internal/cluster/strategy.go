package cluster

import (
	"fmt"
	"strings"
)

// Strategy names where a cluster keeps its shopping carts: one row of SPEC's
// strategy table, which fixes the app's --store and the balancer's --policy.
type Strategy string

// The six strategies of SPEC.
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

// Strategies returns the six strategies in SPEC's order.
func Strategies() []Strategy {
	return []Strategy{Naive, Sticky, Replicated, Cache, Database, Client}
}

// ParseStrategy returns the Strategy named s, or an error wrapping
// ErrUnknownStrategy.
func ParseStrategy(s string) (Strategy, error) {
	for _, st := range Strategies() {
		if string(st) == strings.TrimSpace(s) {
			return st, nil
		}
	}
	return "", fmt.Errorf("%w %q (want one of naive, sticky, replicated, cache, database, client)", ErrUnknownStrategy, s)
}

// Store returns the app's --store for the strategy. For Database it is
// "sqlite"; a cluster given a PostgreSQL URL uses "postgres" instead.
func (s Strategy) Store() string {
	switch s {
	case Naive, Sticky:
		return "memory"
	case Replicated:
		return "replicated"
	case Cache:
		return "redis"
	case Database:
		return "sqlite"
	case Client:
		return "cookie"
	}
	return ""
}

// Policy returns the balancer's --policy for the strategy.
func (s Strategy) Policy() string {
	switch s {
	case Sticky, Replicated:
		return "sticky"
	}
	return "round_robin"
}

// NeedsRedis reports whether the strategy keeps its carts in Redis.
func (s Strategy) NeedsRedis() bool { return s == Cache }
