package play

import (
	"fmt"

	"github.com/statelab/statelab/internal/stores"
	"github.com/statelab/statelab/internal/strategy"
)

// whereText completes "your cart lives …" for a cluster of strategy st
// running on store kind: the strategy's words, or the store's own name when
// the strategy's store is external (a database strategy on PostgreSQL says
// "in PostgreSQL", not "in the database").
func whereText(st strategy.Strategy, kind stores.Kind) string {
	if kind.External() {
		return "in " + kind.Name()
	}
	return st.Spec().Where
}

// cartSource says where a replica found your cart, for "r3 read your cart
// from …".
func cartSource(st strategy.Strategy, kind stores.Kind) string {
	if kind.External() {
		return kind.Name()
	}
	return st.Spec().Source
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
func killedText(id string, kind stores.Kind, sessions int, known bool) string {
	switch kind {
	case stores.Memory:
		if !known {
			return fmt.Sprintf("%s killed — every cart that lived only there is gone", id)
		}
		if sessions == 0 {
			return fmt.Sprintf("%s killed — it held no carts, so none were lost", id)
		}
		return fmt.Sprintf("%s killed — %s lived only there", id, plural(sessions, "cart", "carts"))
	case stores.Replicated:
		if known && sessions == 1 {
			return fmt.Sprintf("%s killed — its one cart has a copy on another replica", id)
		}
		if known && sessions > 1 {
			return fmt.Sprintf("%s killed — its %d carts have copies on other replicas", id, sessions)
		}
		return fmt.Sprintf("%s killed — carts it held have copies on other replicas", id)
	case stores.Cookie:
		return fmt.Sprintf("%s killed — it held no carts: they live in the shoppers' cookies", id)
	default:
		return fmt.Sprintf("%s killed — it held no carts: they live in %s", id, kind.Name())
	}
}

// restartedText is the log line for a restarted replica.
func restartedText(id string, kind stores.Kind) string {
	if kind == stores.Memory {
		return fmt.Sprintf("%s restarted — it came back with empty memory: the carts it held are gone", id)
	}
	return fmt.Sprintf("%s restarted — it is ready again", id)
}
