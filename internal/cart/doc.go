// Package cart is statelab's stateful service: a shopping cart whose state
// lives in a session, wherever the session layer keeps it.
//
// It owns the cart domain (lines, quantities 1..99, checkout), the cart's
// HTTP API and shop page and its Prometheus metrics. Products come from
// internal/catalog and prices from internal/pricing: in process (the
// monolith, the default) or, with Config.Products and Config.Pricer set to
// their clients, from the catalog and pricing services over HTTP. Opening
// the store a replica runs on is package stores' job (stores.Open).
//
// It does not own sessions: every change goes through
// session.Manager.Update, a compare-and-swap loop, so the same handler code
// runs on every store (memory, replicated memory, Redis, PostgreSQL, SQLite,
// sealed cookie) without knowing which one it is on. It does not own the
// stores either; they live in session/<store> packages and never import this
// one.
package cart
