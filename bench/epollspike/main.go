//go:build linux

// Command epollspike is a benchmark tool, not part of statelab: a minimal
// HTTP/1.1 keep-alive reverse proxy on Linux epoll, written to measure what an
// event loop in Go (no goroutine per connection, no net package) costs per
// proxied request on this machine, against HAProxy in bench/lb.sh's setup.
// See docs/benchmarks.md, "What an epoll event loop in Go reaches".
//
// Each of -loops event loops runs on its own locked OS thread with its own
// SO_REUSEPORT listener, epoll set and pool of keep-alive backend connections.
// A loop reads a client's request head (and Content-Length body), appends an
// X-Forwarded-For header, writes it to an idle pooled backend connection
// (round robin over -backend), reads the answer's head and streams its
// Content-Length body back. Level-triggered epoll: a socket is read once per
// readiness event, never "just in case", so no read returns EAGAIN.
//
// Limits (it is a measuring tool): chunked bodies, upgrades and pipelined
// requests whose answers would interleave are refused or serialised; no
// timeouts; backend connections are dialled with a blocking connect.
//
//	epollspike -listen 127.0.0.1:18040 -backend 127.0.0.1:18081 -backend 127.0.0.1:18082
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// bufSize is each connection's read buffer: the largest request or response
// head, and the chunk in which bodies are streamed.
const bufSize = 16 << 10

type backendList []string

func (b *backendList) String() string     { return strings.Join(*b, ",") }
func (b *backendList) Set(s string) error { *b = append(*b, s); return nil }

func main() {
	listen := flag.String("listen", "127.0.0.1:18040", "address to listen on")
	loops := flag.Int("loops", 1, "event loops (one locked OS thread each)")
	var backends backendList
	flag.Var(&backends, "backend", "backend host:port (repeat)")
	flag.Parse()
	if len(backends) == 0 || *loops < 1 {
		fmt.Fprintln(os.Stderr, "epollspike: want at least one -backend and -loops >= 1")
		os.Exit(2)
	}
	la, err := sockaddr(*listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "epollspike:", err)
		os.Exit(2)
	}
	var bas []unix.Sockaddr
	for _, b := range backends {
		a, err := sockaddr(b)
		if err != nil {
			fmt.Fprintln(os.Stderr, "epollspike:", err)
			os.Exit(2)
		}
		bas = append(bas, a)
	}
	errc := make(chan error, *loops)
	for i := 0; i < *loops; i++ {
		l, err := newLoop(la, bas)
		if err != nil {
			fmt.Fprintln(os.Stderr, "epollspike:", err)
			os.Exit(1)
		}
		go func() { errc <- l.run() }()
	}
	fmt.Fprintln(os.Stderr, "epollspike: fatal:", <-errc)
	os.Exit(1)
}

func sockaddr(hostport string) (*unix.SockaddrInet4, error) {
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil || !ap.Addr().Is4() {
		return nil, fmt.Errorf("address %q: want IPv4 host:port", hostport)
	}
	return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}, nil
}

// conn is one client or backend socket.
type conn struct {
	fd      int
	backend bool
	idx     int // backend index, for a backend connection
	in      []byte
	n       int    // bytes in in
	out     []byte // bytes still to write
	peer    *conn  // the backend serving this client, or the client a backend serves
	left    int    // response body bytes still to forward (backend)
	inHead  bool   // a response head was parsed, body streaming (backend)
	closeAf bool   // close the client after this response
	waitOut bool   // EPOLLOUT is armed
	stopped bool   // EPOLLIN disarmed (peer's output is full)
}

type loop struct {
	ep       int
	lfd      int
	conns    []*conn // by fd
	backends []unix.Sockaddr
	idle     [][]*conn
	next     int
	events   []unix.EpollEvent
	scratch  []byte
}

func newLoop(la unix.Sockaddr, backends []unix.Sockaddr) (*loop, error) {
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	_ = unix.SetsockoptInt(lfd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.SetsockoptInt(lfd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		return nil, err
	}
	if err := unix.Bind(lfd, la); err != nil {
		return nil, err
	}
	if err := unix.Listen(lfd, 4096); err != nil {
		return nil, err
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	l := &loop{ep: ep, lfd: lfd, backends: backends, idle: make([][]*conn, len(backends)),
		events: make([]unix.EpollEvent, 256), scratch: make([]byte, 0, bufSize+256)}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, lfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(lfd)}); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *loop) run() error {
	runtime.LockOSThread()
	for {
		n, err := unix.EpollWait(l.ep, l.events, -1)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return err
		}
		for i := 0; i < n; i++ {
			ev := l.events[i]
			fd := int(ev.Fd)
			if fd == l.lfd {
				l.accept()
				continue
			}
			if fd >= len(l.conns) || l.conns[fd] == nil {
				continue
			}
			c := l.conns[fd]
			if ev.Events&unix.EPOLLOUT != 0 {
				l.flush(c)
			}
			if l.conns[fd] == c && ev.Events&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				l.readable(c)
			}
		}
	}
}

func (l *loop) add(c *conn) error {
	for c.fd >= len(l.conns) {
		l.conns = append(l.conns, make([]*conn, len(l.conns)+64)...)
	}
	l.conns[c.fd] = c
	return unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, c.fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(c.fd)})
}

func (l *loop) arm(c *conn) {
	ev := uint32(0)
	if !c.stopped {
		ev |= unix.EPOLLIN
	}
	if c.waitOut {
		ev |= unix.EPOLLOUT
	}
	_ = unix.EpollCtl(l.ep, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: ev, Fd: int32(c.fd)})
}

func (l *loop) accept() {
	for i := 0; i < 64; i++ {
		fd, _, err := unix.Accept4(l.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			return
		}
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		c := &conn{fd: fd, in: make([]byte, bufSize)}
		if l.add(c) != nil {
			unix.Close(fd)
		}
	}
}

func (l *loop) close(c *conn) {
	if l.conns[c.fd] == c {
		l.conns[c.fd] = nil
	}
	_ = unix.Close(c.fd)
	if p := c.peer; p != nil {
		c.peer = nil
		p.peer = nil
		l.close(p)
	}
}

// readable reads once from c and acts on what arrived.
func (l *loop) readable(c *conn) {
	if c.n == len(c.in) {
		l.close(c) // head larger than the buffer
		return
	}
	n, err := unix.Read(c.fd, c.in[c.n:])
	if n <= 0 {
		if err == unix.EAGAIN {
			return
		}
		if c.backend && c.peer == nil {
			l.dropIdle(c)
		}
		l.close(c)
		return
	}
	c.n += n
	if c.backend {
		l.response(c)
	} else if c.peer == nil {
		l.request(c)
	}
}

// request forwards a complete request buffered on client c, if there is one.
func (l *loop) request(c *conn) {
	head := bytes.Index(c.in[:c.n], []byte("\r\n\r\n"))
	if head < 0 {
		return
	}
	head += 4
	cl, chunked, closeReq, ok := parseHead(c.in[:head], true)
	if !ok || chunked {
		_, _ = unix.Write(c.fd, []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
		l.close(c)
		return
	}
	if head+cl > len(c.in) {
		l.close(c) // bodies larger than the buffer: not in the spike
		return
	}
	if c.n < head+cl {
		return
	}
	b, err := l.backendConn()
	if err != nil {
		_, _ = unix.Write(c.fd, []byte("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
		l.close(c)
		return
	}
	c.closeAf = closeReq
	b.peer, c.peer = c, b
	// the head without its final CRLF, X-Forwarded-For, CRLF, body
	msg := append(l.scratch[:0], c.in[:head-2]...)
	msg = append(msg, "X-Forwarded-For: 127.0.0.1\r\n\r\n"...)
	msg = append(msg, c.in[head:head+cl]...)
	rest := copy(c.in, c.in[head+cl:c.n])
	c.n = rest
	l.write(b, msg)
}

// write writes p to c, keeping what the socket does not take.
func (l *loop) write(c *conn, p []byte) {
	if len(c.out) == 0 {
		n, err := unix.Write(c.fd, p)
		if n == len(p) {
			return
		}
		if err != nil && err != unix.EAGAIN {
			l.close(c)
			return
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
	if p := c.peer; p != nil && c.backend == false && !p.stopped {
		p.stopped = true // backpressure: stop reading the backend
		l.arm(p)
	}
}

func (l *loop) flush(c *conn) {
	n, err := unix.Write(c.fd, c.out)
	if n < 0 {
		n = 0
	}
	if err != nil && err != unix.EAGAIN {
		l.close(c)
		return
	}
	c.out = c.out[:copy(c.out, c.out[n:])]
	if len(c.out) == 0 {
		c.waitOut = false
		l.arm(c)
		if p := c.peer; p != nil && p.stopped {
			p.stopped = false
			l.arm(p)
		}
		if !c.backend && c.peer == nil {
			l.afterResponse(c)
		}
	}
}

// response handles bytes that arrived on backend connection b.
func (l *loop) response(b *conn) {
	c := b.peer
	if c == nil {
		l.dropIdle(b)
		l.close(b)
		return
	}
	data := b.in[:b.n]
	if !b.inHead {
		head := bytes.Index(data, []byte("\r\n\r\n"))
		if head < 0 {
			return
		}
		head += 4
		cl, chunked, _, ok := parseHead(data[:head], false)
		if !ok || chunked {
			l.close(b)
			return
		}
		b.inHead = true
		b.left = head + cl
	}
	take := len(data)
	if take > b.left {
		take = b.left
	}
	b.left -= take
	b.n = 0
	done := b.left == 0
	if done {
		b.inHead = false
		b.peer, c.peer = nil, nil
		l.idle[b.idx] = append(l.idle[b.idx], b)
	}
	l.write(c, data[:take])
	if done && l.conns[c.fd] == c && len(c.out) == 0 {
		l.afterResponse(c)
	}
}

// afterResponse closes c if it asked so, or forwards its next request.
func (l *loop) afterResponse(c *conn) {
	if c.closeAf {
		l.close(c)
		return
	}
	if c.n > 0 {
		l.request(c)
	}
}

func (l *loop) dropIdle(b *conn) {
	pool := l.idle[b.idx]
	for i, x := range pool {
		if x == b {
			l.idle[b.idx] = append(pool[:i], pool[i+1:]...)
			return
		}
	}
}

// backendConn returns an idle connection to the next backend in round
// robin, or dials one.
func (l *loop) backendConn() (*conn, error) {
	i := l.next
	l.next = (l.next + 1) % len(l.backends)
	if pool := l.idle[i]; len(pool) > 0 {
		b := pool[len(pool)-1]
		l.idle[i] = pool[:len(pool)-1]
		return b, nil
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Connect(fd, l.backends[i]); err != nil {
		unix.Close(fd)
		return nil, err
	}
	_ = unix.SetNonblock(fd, true)
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	b := &conn{fd: fd, backend: true, idx: i, in: make([]byte, bufSize)}
	if err := l.add(b); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return b, nil
}

// parseHead reads Content-Length, Transfer-Encoding: chunked and
// Connection: close from a request or response head.
func parseHead(h []byte, req bool) (cl int, chunked, closeConn, ok bool) {
	eol := bytes.IndexByte(h, '\n')
	if eol < 0 {
		return 0, false, false, false
	}
	if req && bytes.HasSuffix(bytes.TrimRight(h[:eol], "\r"), []byte("HTTP/1.0")) {
		closeConn = true
	}
	h = h[eol+1:]
	for len(h) > 2 {
		eol = bytes.IndexByte(h, '\n')
		if eol < 0 {
			break
		}
		line := bytes.TrimRight(h[:eol], "\r")
		h = h[eol+1:]
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return 0, false, false, false
		}
		name, val := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch {
		case len(name) == 14 && bytes.EqualFold(name, []byte("Content-Length")):
			v, err := strconv.Atoi(string(val))
			if err != nil || v < 0 {
				return 0, false, false, false
			}
			cl = v
		case len(name) == 17 && bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = true
		case len(name) == 10 && bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(val, []byte("close")) {
				closeConn = true
			}
		case len(name) == 7 && bytes.EqualFold(name, []byte("Upgrade")):
			return 0, false, false, false
		}
	}
	return cl, chunked, closeConn, true
}
