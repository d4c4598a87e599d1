// Package replstore is a session.Store that keeps session records in the
// memory of the replicas themselves and copies each one to peer replicas, so
// that a session survives the loss of the replica that served it.
//
// Replicas find each other and detect failures with hashicorp/memberlist
// (SWIM gossip on Config.BindAddr, joined through Config.Peers). Every session
// key has an owner set over the live members, chosen by rendezvous hashing: a
// primary and Config.Backups backups. A write (Put, Touch, Delete) received by
// any replica is forwarded to the key's primary, which checks the
// compare-and-swap against its copy, sends the new record to the backups and
// acknowledges only when they have it (or, with Config.Async, acknowledges at
// once and replicates in the background). A read is served from the local copy
// when this replica owns the key, otherwise fetched from the owners, primary
// first.
//
// When a member joins or dies, every replica pushes the records it holds to
// their new owners, so every session again has Backups+1 live copies. Close
// hands this replica's records over to their new owners before leaving.
// Replicas talk to each other over a small binary RPC (one multiplexed TCP
// connection per pair, a deadline on every call) whose address travels in the
// memberlist node metadata; gossip is encrypted, and RPC connections are
// mutually authenticated and every frame MACed, with keys derived from
// Config.Secret.
//
// The package does not persist anything: a cluster that loses every copy of a
// session (all owners killed at once, or every replica restarted) loses the
// session. It does not interpret session data, and it does not elect leaders:
// during a membership change two replicas may briefly disagree on a key's
// primary; a backup that holds a newer record than the primary's rejects the
// primary's write, which then fails with session.ErrConflict and is retried
// by the caller.
package replstore
