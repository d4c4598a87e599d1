//go:build linux

package balancer

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

// econn is one socket of the event loop: a client connection, or a
// keep-alive connection to a backend.
type econn struct {
	fd      int
	buf     []byte // read buffer; a client's is nil while it is idle
	n       int    // bytes in buf
	out     []byte // bytes the socket did not take yet
	waitOut bool   // EPOLLOUT armed
	stopped bool   // EPOLLIN disarmed: the peer's output is full
	ex      *exchange
	spare   *exchange // a client's last exchange, reused for the next
	expires int64     // deadline (unix ns) of what the connection waits for; 0: none

	// client side
	ip        []byte
	closeWhen bool // close once the answer is written

	// backend side
	b          *Backend
	reused     bool
	connecting bool
}

// exchange is one request of a client, through its attempts.
type exchange struct {
	client  *econn
	bconn   *econn
	r       Request
	req     []byte // the request as sent to backends (kept for retries)
	cookie  []byte // the client's sticky cookie (a copy)
	key     []byte // the request's hash key (a copy)
	start   time.Time
	sent    time.Time
	idem    bool
	head    bool // no response body (HEAD)
	tries   int
	lastErr error
	// the response being relayed
	resp     respHead
	relaying bool
	left     int // body bytes left (Content-Length framing)
	chunks   chunkScanner
	redialed bool
	ended    bool // accounted for (endExchange)
	released bool // the backend's slot was given back
}

// eloop is the event loop of one Serve call.
type eloop struct {
	lb      *Balancer
	srv     *fasthttp.Server // serves the connections handed over
	ep, lfd int
	conns   []*econn // by descriptor
	idle    map[*Backend][]*econn
	addrs   map[string]resolved
	bufs    [][]byte
	events  []unix.EpollEvent
	scratch []byte
	active  int       // exchanges in flight
	now     time.Time // when epoll_wait last returned: the clock of deadlines
	served  int       // requests the loop answered
	handedN int       // connections handed to fasthttp
	handed  sync.WaitGroup
	handMu  sync.Mutex
	handCon map[net.Conn]struct{}

	clients atomic.Int32 // client connections this loop serves (or is passed)
	peers   []*eloop     // every loop of the listener, this one included
	in      *inbox       // clients passed by the other loops
	passed  []passed     // scratch for adoptPassed
}

// engineReason returns why the epoll engine cannot serve cfg's listener
// (then fasthttp serves it), or "".
func engineReason(cfg *Config) string {
	switch {
	case cfg.TLS != nil:
		return "TLS termination"
	case cfg.BackendMaxConn > 0:
		return "--backend-maxconn (its queue waits)"
	case cfg.AccessLog:
		return "the access log"
	case len(cfg.DenyPaths) > 0:
		return "deny paths"
	}
	return ""
}

// serveEpoll serves ln from event loops, one per CPU (as HAProxy's
// threads), until ctx is done or the balancer closes, then drains as Serve
// does.
func (lb *Balancer) serveEpoll(ctx context.Context, ln net.Listener, srv *fasthttp.Server) error {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return errors.New("balancer: the epoll engine needs a TCP listener")
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return err
	}
	var lfd int
	if err := rc.Control(func(fd uintptr) { lfd = int(fd) }); err != nil {
		return err
	}
	loops := make([]*eloop, max(1, runtime.NumCPU()))
	for i := range loops {
		if loops[i], err = newEloop(lb, srv, lfd); err != nil {
			for _, l := range loops[:i] {
				l.in.close()
				unix.Close(l.ep)
			}
			return err
		}
	}
	for _, l := range loops {
		l.peers = loops
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, l := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.run(stop)
		}()
	}
	select {
	case <-ctx.Done():
	case <-lb.done:
	}
	close(stop)
	wg.Wait()
	ln.Close()
	served, handed := 0, 0
	perLoop := make([]int, len(loops))
	for i, l := range loops {
		l.in.close()
		l.closeHanded()
		served, handed = served+l.served, handed+l.handedN
		perLoop[i] = l.served
	}
	lb.log.Info("balancer: epoll engine stopped", "listener", ln.Addr().String(), "loops", len(loops),
		"requests", served, "requests_per_loop", perLoop, "handed_to_fasthttp", handed)
	return nil
}

// newEloop returns an event loop accepting from lfd. Every loop waits on
// the listener with EPOLLEXCLUSIVE, so a new connection wakes one of them.
func newEloop(lb *Balancer, srv *fasthttp.Server, lfd int) (*eloop, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	l := &eloop{lb: lb, srv: srv, ep: ep, lfd: lfd, idle: map[*Backend][]*econn{},
		addrs: map[string]resolved{}, events: make([]unix.EpollEvent, 256), handCon: map[net.Conn]struct{}{}}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, lfd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE, Fd: int32(lfd)}); err != nil {
		unix.Close(ep)
		return nil, err
	}
	if l.in, err = newInbox(ep); err != nil {
		unix.Close(ep)
		return nil, err
	}
	return l, nil
}

// closeHanded closes the connections handed to fasthttp and waits for
// their goroutines.
func (l *eloop) closeHanded() {
	l.handMu.Lock()
	for c := range l.handCon {
		c.Close()
	}
	l.handMu.Unlock()
	l.handed.Wait()
}

// run is the loop: wait for readiness, act, check deadlines every 50 ms.
// Once stop is closed it stops accepting and returns when no exchange is
// in flight or the shutdown timeout passed.
func (l *eloop) run(stop chan struct{}) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer l.closeAll()
	l.now = time.Now()
	var stopAt int64
	lastSweep := time.Now().UnixNano()
	for {
		n, err := epollPoll(l.ep, l.events)
		if n == 0 && err == nil {
			n, err = unix.EpollWait(l.ep, l.events, 50)
		}
		if err != nil && err != unix.EINTR {
			l.lb.log.Error("balancer: epoll_wait", "err", err)
			return
		}
		l.now = time.Now()
		for i := 0; i < n; i++ {
			l.event(l.events[i])
		}
		now := l.now.UnixNano()
		if stopAt == 0 {
			select {
			case <-stop:
				stopAt = now
				_ = unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, l.lfd, nil)
			default:
			}
		}
		if stopAt != 0 && (l.active == 0 || now-stopAt > int64(l.lb.cfg.ShutdownTimeout)) {
			return
		}
		if now-lastSweep > int64(50*time.Millisecond) {
			lastSweep = now
			l.sweep(now, stopAt != 0)
		}
	}
}

func (l *eloop) event(ev unix.EpollEvent) {
	fd := int(ev.Fd)
	switch fd {
	case l.lfd:
		l.accept()
		return
	case l.in.efd:
		l.adoptPassed()
		return
	}
	if fd >= len(l.conns) || l.conns[fd] == nil {
		return
	}
	c := l.conns[fd]
	if ev.Events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 && (c.connecting || c.waitOut) {
		if c.connecting {
			l.connected(c)
		} else {
			l.flush(c)
		}
	}
	if l.conns[fd] == c && !c.connecting && ev.Events&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		if c.b != nil {
			l.backendReadable(c)
		} else {
			l.clientReadable(c)
		}
	}
}

// sweep enforces the timeouts: idle and read timeouts of clients, dial and
// response timeouts of backends. While stopping it closes idle clients.
func (l *eloop) sweep(now int64, stopping bool) {
	for _, c := range l.conns {
		if c == nil {
			continue
		}
		switch {
		case c.b == nil && c.ex == nil && (stopping && c.n == 0 && len(c.out) == 0 || c.expires != 0 && now > c.expires):
			l.closeConn(c)
		case c.b != nil && c.ex == nil && c.expires != 0 && now > c.expires:
			l.closeConn(c) // idle too long in the pool
		case c.b != nil && c.ex != nil && c.expires != 0 && now > c.expires:
			err := error(fasthttp.ErrTimeout)
			if c.connecting {
				err = &dialError{fasthttp.ErrDialTimeout}
			}
			l.attemptFailed(c.ex, err)
		}
	}
}

func (l *eloop) register(c *econn, events uint32) error {
	for c.fd >= len(l.conns) {
		l.conns = append(l.conns, make([]*econn, len(l.conns)+64)...)
	}
	l.conns[c.fd] = c
	return unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, c.fd, &unix.EpollEvent{Events: events, Fd: int32(c.fd)})
}

func (l *eloop) arm(c *econn) {
	ev := uint32(0)
	if !c.stopped {
		ev |= unix.EPOLLIN
	}
	if c.waitOut || c.connecting {
		ev |= unix.EPOLLOUT
	}
	_ = unix.EpollCtl(l.ep, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: ev, Fd: int32(c.fd)})
}

func (l *eloop) accept() {
	for i := 0; i < 64; i++ {
		fd, sa, err := unix.Accept4(l.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			return
		}
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		to := l.placeFor()
		to.clients.Add(1)
		if to != l {
			to.in.put(passed{fd, sockaddrIP(sa)})
			continue
		}
		l.adopt(fd, sockaddrIP(sa))
	}
}

// sockaddrIP returns the IP of an accepted client's address (an IPv4
// address mapped into IPv6 as plain IPv4).
func sockaddrIP(sa unix.Sockaddr) []byte {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom4(a.Addr).AppendTo(nil)
	case *unix.SockaddrInet6:
		return netip.AddrFrom16(a.Addr).Unmap().AppendTo(nil)
	}
	return []byte("unknown")
}

// setIdle starts a client's idle (keep-alive) timeout.
func (l *eloop) setIdle(c *econn) {
	c.expires = 0
	if t := l.lb.cfg.IdleTimeout; t > 0 {
		c.expires = l.now.Add(t).UnixNano()
	}
}

func (l *eloop) getBuf() []byte {
	if n := len(l.bufs); n > 0 {
		b := l.bufs[n-1]
		l.bufs = l.bufs[:n-1]
		return b
	}
	return make([]byte, l.lb.cfg.MaxHeaderBytes)
}

func (l *eloop) putBuf(c *econn) {
	if c.buf != nil && len(l.bufs) < 1024 {
		l.bufs = append(l.bufs, c.buf)
	}
	c.buf, c.n = nil, 0
}

// closeConn closes c; a backend connection's exchange fails with it, a
// client's in-flight exchange is abandoned (its backend connection closed).
func (l *eloop) closeConn(c *econn) {
	if c.fd < 0 {
		return
	}
	if l.conns[c.fd] == c {
		l.conns[c.fd] = nil
	}
	_ = unix.Close(c.fd)
	c.fd = -1
	if c.b != nil {
		c.b.engineConns.Add(-1)
		l.dropIdle(c)
		return
	}
	l.clients.Add(-1)
	if ex := c.ex; ex != nil {
		c.ex = nil
		if bc := ex.bconn; bc != nil {
			ex.bconn, bc.ex = nil, nil
			l.closeConn(bc)
			if !ex.released {
				l.lb.release(bc.b)
			}
		}
		l.endExchange(ex)
	}
	l.putBuf(c)
}

func (l *eloop) closeAll() {
	for _, c := range l.conns {
		if c != nil {
			l.closeConn(c)
		}
	}
	unix.Close(l.ep)
}

// handOver gives client c, with the bytes it sent that were not served,
// to the fasthttp server for the rest of its life.
func (l *eloop) handOver(c *econn) {
	_ = unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, c.fd, nil)
	l.conns[c.fd] = nil
	l.clients.Add(-1)
	l.handedN++
	f := os.NewFile(uintptr(c.fd), "client")
	nc, err := net.FileConn(f)
	f.Close()
	c.fd = -1
	if err != nil {
		l.putBuf(c)
		return
	}
	pc := &prefixConn{Conn: nc, prefix: append([]byte(nil), c.buf[:c.n]...)}
	l.putBuf(c)
	l.handMu.Lock()
	l.handCon[pc] = struct{}{}
	l.handMu.Unlock()
	l.handed.Add(1)
	go func() {
		defer l.handed.Done()
		_ = l.srv.ServeConn(pc)
		l.handMu.Lock()
		delete(l.handCon, pc)
		l.handMu.Unlock()
	}()
}

// prefixConn is a connection whose first reads return prefix.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// write writes p to c, keeping what the socket does not take; it reports
// false if c failed (and was closed, for a client).
func (l *eloop) write(c *econn, p []byte) bool {
	if len(c.out) == 0 {
		n, err := rawWrite(c.fd, p)
		if n == len(p) {
			return true
		}
		if err != nil && err != unix.EAGAIN {
			return false
		}
		if n > 0 {
			p = p[n:]
		}
	}
	c.out = append(c.out, p...)
	if !c.waitOut {
		c.waitOut = true
		l.arm(c)
	}
	return true
}

// flush writes what c's socket did not take before.
func (l *eloop) flush(c *econn) {
	n, err := rawWrite(c.fd, c.out)
	if err != nil && err != unix.EAGAIN {
		if c.b != nil && c.ex != nil {
			l.attemptFailed(c.ex, &partialSendError{err})
		} else {
			l.closeConn(c)
		}
		return
	}
	n = max(n, 0)
	c.out = c.out[:copy(c.out, c.out[n:])]
	if len(c.out) > 0 {
		return
	}
	c.waitOut = false
	l.arm(c)
	if c.b != nil {
		return
	}
	if ex := c.ex; ex != nil && ex.bconn != nil && ex.bconn.stopped {
		ex.bconn.stopped = false
		l.arm(ex.bconn)
	}
	if c.ex == nil {
		l.answered(c)
	}
}

// answered runs when a client's answer is fully written: close if it
// must, serve the next request it sent, or let it idle without a buffer.
func (l *eloop) answered(c *econn) {
	if c.closeWhen {
		l.closeConn(c)
		return
	}
	l.setIdle(c)
	if c.stopped {
		c.stopped = false
		l.arm(c)
	}
	if c.n > 0 {
		l.nextRequest(c)
		return
	}
	l.putBuf(c)
}

func (l *eloop) clientReadable(c *econn) {
	if c.buf == nil {
		c.buf = l.getBuf()
	}
	if c.n == len(c.buf) {
		if c.ex == nil {
			l.handOver(c) // a head or body larger than the buffer
			return
		}
		// pipelined bytes while a request is in flight: wait for room
		c.stopped = true
		l.arm(c)
		return
	}
	n, err := rawRead(c.fd, c.buf[c.n:])
	if n <= 0 {
		if err == unix.EAGAIN {
			return
		}
		l.closeConn(c)
		return
	}
	if c.n == 0 && c.ex == nil && l.lb.cfg.ReadTimeout > 0 {
		c.expires = l.now.Add(l.lb.cfg.ReadTimeout).UnixNano()
	}
	c.n += n
	if c.ex == nil && len(c.out) == 0 {
		l.nextRequest(c)
	}
}
