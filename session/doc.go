// Package session owns where a web session's state lives and how it changes.
//
// It defines the Store contract (server-side records with optimistic
// concurrency: versioned reads, compare-and-swap writes), the Sealer contract
// (state sealed in the client's cookie), and the Manager with its net/http
// middleware that issues, reads, updates, renews and destroys sessions on top
// of either. Concrete stores live in subpackages (memstore, redisstore,
// pgstore, sqlitestore, replstore, cookiestore) and all pass the one
// conformance suite in storetest.
//
// The package does not know what a session holds: data is opaque bytes.
package session
