package replstore

import (
	"context"
	"fmt"
	"log"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// faultNet is a test hook that partitions replicas running in one process:
// traffic a replica sends to an address cut off from it is dropped, as on a
// network that loses every packet between two hosts. Gossip packets vanish,
// gossip stream dials time out, and RPCs hang until their deadline, so the
// replicas see exactly what a real partition shows them. Cuts are
// symmetric: each side drops what it sends to the other.
type faultNet struct {
	mu  sync.Mutex
	cut map[string]map[string]bool // sender's node name -> addresses dropped
}

func newFaultNet() *faultNet { return &faultNet{cut: make(map[string]map[string]bool)} }

// partition cuts a off from b, both ways: their gossip and RPC addresses.
func (f *faultNet) partition(a, b *Store) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.add(a.name, b.ClusterAddr(), b.rpcAddr)
	f.add(b.name, a.ClusterAddr(), a.rpcAddr)
}

func (f *faultNet) add(from string, addrs ...string) {
	if f.cut[from] == nil {
		f.cut[from] = make(map[string]bool)
	}
	for _, a := range addrs {
		f.cut[from][a] = true
	}
}

// heal removes every cut.
func (f *faultNet) heal() {
	f.mu.Lock()
	f.cut = make(map[string]map[string]bool)
	f.mu.Unlock()
}

// dropped reports whether traffic from the named replica to addr is lost.
// A nil faultNet drops nothing.
func (f *faultNet) dropped(from, addr string) bool {
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cut[from][addr]
}

// errPartitioned is what a dropped gossip stream dial fails with once its
// timeout has passed.
var errPartitioned = fmt.Errorf("replstore: test partition: %w", context.DeadlineExceeded)

// faultTransport is memberlist's network transport with faultNet's drops.
type faultTransport struct {
	*memberlist.NetTransport
	from   string
	faults *faultNet
}

// newFaultTransport binds a memberlist network transport on host:port.
func newFaultTransport(host string, port int, from string, faults *faultNet, logger *log.Logger) (*faultTransport, error) {
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{host}, BindPort: port, Logger: logger})
	if err != nil {
		return nil, err
	}
	return &faultTransport{NetTransport: nt, from: from, faults: faults}, nil
}

// WriteTo implements memberlist.Transport: a dropped packet is reported
// sent.
func (t *faultTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if t.faults.dropped(t.from, addr) {
		return time.Now(), nil
	}
	return t.NetTransport.WriteTo(b, addr)
}

// WriteToAddress implements memberlist.NodeAwareTransport.
func (t *faultTransport) WriteToAddress(b []byte, addr memberlist.Address) (time.Time, error) {
	return t.WriteTo(b, addr.Addr)
}

// DialTimeout implements memberlist.Transport: a dropped dial fails after
// its timeout, as a SYN into the void does.
func (t *faultTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if t.faults.dropped(t.from, addr) {
		time.Sleep(timeout)
		return nil, errPartitioned
	}
	return t.NetTransport.DialTimeout(addr, timeout)
}

// DialAddressTimeout implements memberlist.NodeAwareTransport.
func (t *faultTransport) DialAddressTimeout(addr memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(addr.Addr, timeout)
}
