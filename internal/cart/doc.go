// Package cart is statelab's stateful service: a shopping cart whose state
// lives in a session, wherever the session layer keeps it.
//
// It owns the product catalog (deterministic, generated at start-up, no
// randomness), the cart domain (lines, quantities 1..99, totals, checkout),
// the cart's HTTP API and shop page, the replica's capacity model (Limiter),
// its Prometheus metrics, and the wiring from a store name to a
// session.Manager (OpenStore).
//
// It does not own sessions: every change goes through
// session.Manager.Update, a compare-and-swap loop, so the same handler code
// runs on every store (memory, replicated memory, Redis, PostgreSQL, SQLite,
// sealed cookie) without knowing which one it is on. It does not own the
// stores either; they live in session/<store> packages and never import this
// one.
package cart
