package cluster

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// faultProxy is a TCP proxy in front of a store. Cutting it makes the store
// unreachable for the replicas without touching the server, which other
// programs may be using; it can also slow the link down and reset a share
// of its new connections (link.go).
type faultProxy struct {
	target string
	addr   string

	delay  atomic.Int64 // added to every round trip, in nanoseconds
	reset  atomic.Int64 // share of new connections reset, in parts per million
	resets atomic.Int64 // connections reset so far

	mu      sync.Mutex
	ln      net.Listener
	conns   map[net.Conn]struct{}
	blocked map[netip.Addr]bool // clients whose connections are reset (Isolate)
	wg      sync.WaitGroup
}

// newFaultProxy listens on a free loopback port and forwards to target.
func newFaultProxy(target string) (*faultProxy, error) { return newFaultProxyAt("127.0.0.1", target) }

// newFaultProxyAt listens on a free port of the address host and forwards
// to target.
func newFaultProxyAt(host, target string) (*faultProxy, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, fmt.Errorf("cluster: store proxy: %w", err)
	}
	p := &faultProxy{target: target, addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}, blocked: map[netip.Addr]bool{}}
	p.serve(ln)
	return p, nil
}

func (p *faultProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() { defer p.wg.Done(); p.pipe(c) }()
		}
	}()
}

func (p *faultProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *faultProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *faultProxy) pipe(client net.Conn) {
	if !p.track(client) {
		client.Close()
		return
	}
	defer p.untrack(client)
	if p.resetNow() || p.isBlocked(client) {
		p.resetConn(client)
		return
	}
	server, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil {
		return
	}
	if !p.track(server) {
		server.Close()
		return
	}
	defer p.untrack(server)
	done := make(chan struct{}, 2)
	go func() { p.forward(server, client, true); done <- struct{}{} }()
	go func() { p.forward(client, server, false); done <- struct{}{} }()
	<-done
}

// cut closes the listener and every proxied connection: new connections are
// refused and existing ones break, as when a server goes down.
func (p *faultProxy) cut() {
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	conns := p.conns
	p.conns = map[net.Conn]struct{}{}
	p.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for c := range conns {
		c.Close()
	}
}

// restore listens again on the same address.
func (p *faultProxy) restore() error {
	p.mu.Lock()
	up := p.ln != nil
	p.mu.Unlock()
	if up {
		return nil
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return fmt.Errorf("cluster: store proxy: listen again on %s: %w", p.addr, err)
	}
	p.serve(ln)
	return nil
}

// close cuts the proxy for good and waits for its goroutines.
func (p *faultProxy) close() {
	p.cut()
	p.wg.Wait()
}
