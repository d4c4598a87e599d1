// Package catalog is the shop's product catalog: the deterministic
// generator of its products (Catalog, New), the Source interface every
// reader of products uses, its database-backed implementation (DB:
// SQLite or PostgreSQL, seeded from the generator on first start), the
// stateless HTTP service that serves it (Server, run by statelab catalog)
// and the client the cart calls it through (Client).
//
// The catalog service keeps no session state: every request carries all it
// needs (a search query and a page), every replica reads the same shared
// database, and any replica gives the same answer.
package catalog
