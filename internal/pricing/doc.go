// Package pricing is the shop's stateless calculation: the price of a list
// of lines (subtotal, 8% tax rounded half up, flat shipping below a free
// threshold, total), computed from the request alone against the
// generated catalog's prices. It holds the rules (Price), the Pricer
// interface with its in-process (Local) and remote (Client)
// implementations, and the HTTP service statelab pricing runs (Server).
//
// The service keeps nothing between requests and reads nothing but the
// request: any replica gives the same answer to the same request, so a
// retried quote is harmless and replicas can be added, removed or
// restarted at will.
package pricing
