package stores

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnknownKind is returned by ParseKind and Open for a store kind that is
// not one of Kinds.
var ErrUnknownKind = errors.New("stores: unknown store kind")

// Kind names where a replica keeps its sessions: the app's --store.
type Kind string

// The store kinds, in the order the CLI documents them.
const (
	// Memory keeps sessions in the replica's own memory (session/memstore).
	Memory Kind = "memory"
	// Replicated keeps sessions in replica memory, copied to peer replicas
	// (session/replstore).
	Replicated Kind = "replicated"
	// Redis keeps sessions in a Redis server (session/redisstore).
	Redis Kind = "redis"
	// Postgres keeps sessions in a PostgreSQL database (session/pgstore).
	Postgres Kind = "postgres"
	// SQLite keeps sessions in a SQLite file the replicas share
	// (session/sqlitestore).
	SQLite Kind = "sqlite"
	// Cookie keeps sessions sealed in a cookie the client holds
	// (session/cookiestore).
	Cookie Kind = "cookie"
)

// kindInfo is one row of the store table.
type kindInfo struct {
	kind Kind
	// name is what people call the store ("Redis", "replica memory").
	name string
	// external reports whether the store lives outside the replicas and
	// the client, as a process or file that can fail on its own.
	external bool
}

// kinds is the store table, in the order of Kinds.
var kinds = []kindInfo{
	{Memory, "replica memory", false},
	{Replicated, "replicated replica memory", false},
	{Redis, "Redis", true},
	{Postgres, "PostgreSQL", true},
	{SQLite, "SQLite", true},
	{Cookie, "client cookies", false},
}

// Kinds returns every store kind, in the order the CLI documents them.
func Kinds() []Kind {
	out := make([]Kind, len(kinds))
	for i, k := range kinds {
		out[i] = k.kind
	}
	return out
}

// KindNames returns the names of Kinds, for flag help and error messages.
func KindNames() []string {
	out := make([]string, len(kinds))
	for i, k := range kinds {
		out[i] = string(k.kind)
	}
	return out
}

// ParseKind returns the Kind named s, or an error wrapping ErrUnknownKind
// that lists the valid names.
func ParseKind(s string) (Kind, error) {
	if _, ok := lookup(Kind(s)); ok {
		return Kind(s), nil
	}
	return "", fmt.Errorf("%w %q (want one of %s)", ErrUnknownKind, s, strings.Join(KindNames(), ", "))
}

func lookup(k Kind) (kindInfo, bool) {
	for _, ki := range kinds {
		if ki.kind == k {
			return ki, true
		}
	}
	return kindInfo{}, false
}

// Name returns what people call the store, such as "Redis" or "replica
// memory"; an unknown kind is returned as is.
func (k Kind) Name() string {
	if ki, ok := lookup(k); ok {
		return ki.name
	}
	return string(k)
}

// External reports whether the store lives outside the replicas and the
// client (Redis, PostgreSQL, SQLite): a dependency that can fail on its own
// and that a lab or playground can stop and start.
func (k Kind) External() bool {
	ki, _ := lookup(k)
	return ki.external
}

// String returns the kind's name as the --store flag spells it.
func (k Kind) String() string { return string(k) }
