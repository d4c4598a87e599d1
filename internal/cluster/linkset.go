package cluster

import "net/netip"

// linkSet is the replicas' link to the store: one fault proxy per store
// server they talk to (one for a single server; one per redis-server of a
// Redis Cluster or Sentinel set). Every fault acts on all of them alike.
type linkSet []*faultProxy

// setDelay makes every round trip through the set take delay longer.
func (l linkSet) setDelay(delay int64) {
	for _, p := range l {
		p.delay.Store(delay)
	}
}

// setResets makes the set reset the share (in parts per million) of its
// new connections.
func (l linkSet) setResets(ppm int64) {
	for _, p := range l {
		p.reset.Store(ppm)
	}
}

// resetOpen resets each open connection with probability share and
// returns how many it reset.
func (l linkSet) resetOpen(share float64) int {
	n := 0
	for _, p := range l {
		n += p.resetOpen(share)
	}
	return n
}

// resets returns how many connections the set has reset.
func (l linkSet) resets() int64 {
	var n int64
	for _, p := range l {
		n += p.resets.Load()
	}
	return n
}

// block resets the connections of the client at addr on every proxy and
// refuses its new ones; it returns how many it reset.
func (l linkSet) block(addr netip.Addr) int {
	n := 0
	for _, p := range l {
		n += p.block(addr)
	}
	return n
}

// unblock lets the client at addr connect again.
func (l linkSet) unblock(addr netip.Addr) {
	for _, p := range l {
		p.unblock(addr)
	}
}

// close closes every proxy of the set.
func (l linkSet) close() {
	for _, p := range l {
		p.close()
	}
}
