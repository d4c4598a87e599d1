// Package cluster starts and drives a real statelab cluster on this machine:
// N replica processes (`statelab app`), one balancer process (`statelab lb`)
// in front of them, and the store the strategy needs (a redis-server it
// starts, a SQLite file in its temporary directory, or a fresh schema in a
// PostgreSQL database it is given).
//
// It injects the faults of the lab's scenarios (docs/lab.md) the way an
// operator would cause them: SIGKILL, SIGSTOP/SIGCONT, a graceful restart,
// scale out and in through the balancer's admin API, and a store outage. It talks to the processes only
// through signals and HTTP, exactly as a user would; it never runs the cart
// service or the balancer in process, and shares with them only the JSON
// they answer with (balancer.BackendStatus, cart.ReplicaStatus), so each
// wire type is declared once.
//
// The package owns process lifetimes and cleanup: Close kills every child and
// removes every temporary file, and a child that exits on its own is reported
// as a crash event, never ignored. It does not generate load or check
// results; that is package lab.
//
// What StopStore does depends on the store:
//
//   - Redis started by the cluster: the server is shut down with SHUTDOWN SAVE
//     (so no cart is lost by the restart itself) and StartStore starts it
//     again on the same port from its dump file.
//   - Redis or PostgreSQL given by URL: the cluster never stops a server it
//     does not own. Replicas reach such a store through a small TCP proxy in
//     this process; StopStore closes the proxy's connections and refuses new
//     ones, StartStore accepts again. To the replicas the store is down.
//   - SQLite (the embedded default of the database strategy): there is no
//     server to stop. StopStore takes an exclusive lock on the database file
//     and holds it, as a long migration or a backup tool would, so replicas'
//     writes fail with SQLITE_BUSY; reads may still succeed in WAL mode.
//     StartStore releases the lock.
//   - Memory, replicated and cookie strategies have no external store;
//     StopStore returns ErrNoStore.
package cluster
