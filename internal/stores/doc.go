// Package stores owns the vocabulary of session stores (Kind: memory,
// replicated, redis, postgres, sqlite, cookie) and the one place that opens
// them (Open). Every service that keeps sessions — the shopping cart today,
// the game server next — opens its store here, so a new store kind is one
// row in the kind table and one case in Open.
//
// It does not own the stores themselves (they live in session/<kind>store)
// nor which strategy uses which store (package strategy does).
package stores
