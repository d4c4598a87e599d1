package play

import (
	"fmt"
	"strings"
)

// strategyInfo is what the playground says about one of SPEC's strategies.
type strategyInfo struct {
	name   string
	policy string // the balancer's --policy
	// where completes "your cart lives …".
	where string
	// source names where a replica reads a cart from, for "r3 read your cart
	// from …"; empty when carts live in one replica's memory only.
	source string
}

// strategies is SPEC's table, in its order.
var strategies = []strategyInfo{
	{"naive", "round_robin", "in the memory of whichever replica served the request", ""},
	{"sticky", "sticky", "in the memory of the replica your sticky cookie names", ""},
	{"replicated", "sticky", "in replica memory, copied to a peer replica", "a peer's copy"},
	{"cache", "round_robin", "in Redis", "Redis"},
	{"database", "round_robin", "in the database", "the database"},
	{"client", "round_robin", "in a sealed cookie in your browser", "the cookie your browser sent"},
}

// StrategyNames returns the six strategies the playground offers, in SPEC's
// order.
func StrategyNames() []string {
	out := make([]string, len(strategies))
	for i, s := range strategies {
		out[i] = s.name
	}
	return out
}

func lookupStrategy(name string) (strategyInfo, error) {
	for _, s := range strategies {
		if s.name == name {
			return s, nil
		}
	}
	return strategyInfo{}, fmt.Errorf("%w %q (want one of %s)", ErrUnknownStrategy, name, strings.Join(StrategyNames(), ", "))
}

// storeName is the human name of an app --store kind.
func storeName(kind string) string {
	switch kind {
	case "redis":
		return "Redis"
	case "postgres":
		return "PostgreSQL"
	case "sqlite":
		return "SQLite"
	case "memory":
		return "replica memory"
	case "replicated":
		return "replicated replica memory"
	case "cookie":
		return "client cookies"
	}
	return kind
}

// cartSource says where a replica found your cart, for "r3 read your cart
// from …".
func cartSource(strategy, storeKind string) string {
	switch storeKind {
	case "redis", "postgres", "sqlite":
		return storeName(storeKind)
	}
	info, err := lookupStrategy(strategy)
	if err != nil {
		return ""
	}
	return info.source
}

// plural formats n with the singular or plural form of a noun.
func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// killedText is the log line for a killed replica that held sessions carts
// (known reports whether the count is known).
func killedText(id, strategy, storeKind string, sessions int, known bool) string {
	switch storeKind {
	case "memory":
		if !known {
			return fmt.Sprintf("%s killed — every cart that lived only there is gone", id)
		}
		if sessions == 0 {
			return fmt.Sprintf("%s killed — it held no carts, so none were lost", id)
		}
		return fmt.Sprintf("%s killed — %s lived only there", id, plural(sessions, "cart", "carts"))
	case "replicated":
		if known && sessions == 1 {
			return fmt.Sprintf("%s killed — its one cart has a copy on another replica", id)
		}
		if known && sessions > 1 {
			return fmt.Sprintf("%s killed — its %d carts have copies on other replicas", id, sessions)
		}
		return fmt.Sprintf("%s killed — carts it held have copies on other replicas", id)
	case "cookie":
		return fmt.Sprintf("%s killed — it held no carts: they live in the shoppers' cookies", id)
	default:
		return fmt.Sprintf("%s killed — it held no carts: they live in %s", id, storeName(storeKind))
	}
}

// restartedText is the log line for a restarted replica.
func restartedText(id, storeKind string) string {
	if storeKind == "memory" {
		return fmt.Sprintf("%s restarted — it came back with empty memory: the carts it held are gone", id)
	}
	return fmt.Sprintf("%s restarted — it is ready again", id)
}
