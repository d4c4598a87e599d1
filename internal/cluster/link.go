package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"time"
)

// ErrNoStoreLink is returned by SlowStore, FlakyStore and HealStoreLink
// when the store has no network link the cluster can reach into: no
// external store, or SQLite (a file, not a server), or a cluster started
// without Config.StoreLink for a redis-server it runs itself.
var ErrNoStoreLink = errors.New("cluster: the store has no network link through the lab's proxy")

// maxDelay bounds the latency SlowStore adds, so that a typo cannot hang
// every store request of a run.
const maxDelay = time.Minute

// SlowStore adds delay to every round trip between the replicas and the
// store, from now on, on connections old and new, as a congested or distant
// link would. A delay of zero removes it.
func (c *Cluster) SlowStore(ctx context.Context, delay time.Duration) error {
	if delay < 0 || delay > maxDelay {
		return fmt.Errorf("%w: store delay %v: want 0..%v", ErrBadConfig, delay, maxDelay)
	}
	p, done, err := c.storeLink(ctx)
	if err != nil {
		return err
	}
	defer done()
	p.setDelay(int64(delay))
	c.event(EventLink, "", fmt.Sprintf("store link: every round trip takes %v longer", delay))
	return nil
}

// FlakyStore makes the link to the store reset a share (0..1) of its new
// connections at once (TCP RST), and resets that share of the connections
// open now, so that the replicas' pools have to dial again. A share of
// zero stops it.
func (c *Cluster) FlakyStore(ctx context.Context, share float64) error {
	if !(share >= 0 && share <= 1) {
		return fmt.Errorf("%w: reset share %v: want 0..1", ErrBadConfig, share)
	}
	p, done, err := c.storeLink(ctx)
	if err != nil {
		return err
	}
	defer done()
	p.setResets(int64(share * 1e6))
	n := p.resetOpen(share)
	c.event(EventLink, "", fmt.Sprintf("store link: %.0f%% of new connections reset; %d open connections reset", share*100, n))
	return nil
}

// HealStoreLink removes the delay and the resets of SlowStore and
// FlakyStore.
func (c *Cluster) HealStoreLink(ctx context.Context) error {
	p, done, err := c.storeLink(ctx)
	if err != nil {
		return err
	}
	defer done()
	p.setDelay(0)
	p.setResets(0)
	c.event(EventLink, "", "store link healed: no added delay, no resets")
	return nil
}

// StoreLinkResets returns how many connections the store's link has reset
// (FlakyStore) since the cluster started; 0 without a store link.
func (c *Cluster) StoreLinkResets() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.store == nil {
		return 0
	}
	return c.store.link.resets()
}

// StoreLink reports whether the replicas reach the store through the lab's
// proxy, so that SlowStore and FlakyStore can act on it.
func (c *Cluster) StoreLink() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.store != nil && len(c.store.link) > 0
}

// storeLink takes the operation lock for a control of the store's link and
// returns the proxy and the function that releases the lock.
func (c *Cluster) storeLink(ctx context.Context) (linkSet, func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	s, done, err := c.storeOp()
	if errors.Is(err, ErrNoStore) {
		return nil, nil, ErrNoStoreLink
	}
	if err != nil {
		return nil, nil, err
	}
	if len(s.link) == 0 {
		done()
		return nil, nil, ErrNoStoreLink
	}
	return s.link, done, nil
}

// resetNow decides whether the connection being accepted is reset.
func (p *faultProxy) resetNow() bool {
	ppm := p.reset.Load()
	return ppm > 0 && rand.Int64N(1_000_000) < ppm
}

// resetOpen resets each open connection with probability share and
// returns how many it reset.
func (p *faultProxy) resetOpen(share float64) int {
	p.mu.Lock()
	var victims []net.Conn
	for c := range p.conns {
		if share > 0 && rand.Float64() < share {
			victims = append(victims, c)
		}
	}
	p.mu.Unlock()
	for _, c := range victims {
		p.resetConn(c)
	}
	return len(victims)
}

// resetConn closes c with an RST instead of a FIN, as a middlebox or a
// crashed peer does: the other side's next read or write fails with
// "connection reset by peer".
func (p *faultProxy) resetConn(c net.Conn) {
	p.resets.Add(1)
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

// chunk is data read from one side of a link, due on the other at due.
type chunk struct {
	data []byte
	due  time.Time
}

// forward copies src to dst until either fails. With delayed, every chunk
// is written the proxy's current delay after it was read (so the delay
// adds to each round trip once, in the direction towards the store, and
// chunks keep their order); otherwise it is a plain copy.
func (p *faultProxy) forward(dst, src net.Conn, delayed bool) {
	if !delayed {
		io.Copy(dst, src)
		return
	}
	q := make(chan chunk, 64)
	go func() {
		defer close(q)
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{append([]byte(nil), buf[:n]...), time.Now().Add(time.Duration(p.delay.Load()))}
			}
			if err != nil {
				return
			}
		}
	}()
	failed := false
	for ch := range q {
		if failed {
			continue // drain, so the reader never blocks
		}
		if d := time.Until(ch.due); d > 0 {
			time.Sleep(d)
		}
		if _, err := dst.Write(ch.data); err != nil {
			failed = true
			src.Close()
		}
	}
}

// proxyManaged puts the lab's proxy between the replicas and a store
// server the cluster started at addr, when c's config asks for a store
// link (Config.StoreLink); otherwise the replicas reach it directly.
func (s *storeRuntime) proxyManaged(c *Cluster, addr string) error {
	if !c.cfg.StoreLink && !c.cfg.Hosts {
		return nil
	}
	p, err := c.newLinkProxy(addr)
	if err != nil {
		return err
	}
	s.link = linkSet{p}
	for i, a := range s.appArgs {
		s.appArgs[i] = strings.Replace(a, addr, p.addr, 1)
	}
	s.info.Detail += " (through the lab's link proxy at " + p.addr + ")"
	return nil
}
