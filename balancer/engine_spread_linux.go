//go:build linux

package balancer

import (
	"encoding/binary"
	"sync"

	"golang.org/x/sys/unix"
)

// Spreading clients over the event loops. Every loop waits on the listener
// with EPOLLEXCLUSIVE, which wakes one loop for a burst of new connections;
// that loop accepted the whole burst, so one loop could serve all of a
// benchmark's 64 clients while the other idled (measured: 0 and 259 012
// requests in one run). As HAProxy does between its threads, the loop that
// accepts a connection keeps it unless another loop holds at least two
// clients fewer; then it passes the descriptor to that loop.

// passed is an accepted client descriptor on its way to another loop.
type passed struct {
	fd int
	ip []byte
}

// inbox receives the clients other loops pass to a loop. Its eventfd, in
// the loop's epoll set, wakes the loop when the inbox stops being empty.
type inbox struct {
	efd int
	mu  sync.Mutex
	fds []passed
}

// newInbox returns an inbox whose eventfd is registered in epoll set ep.
func newInbox(ep int) (*inbox, error) {
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, efd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(efd)}); err != nil {
		unix.Close(efd)
		return nil, err
	}
	return &inbox{efd: efd}, nil
}

// put adds a client and wakes the loop if the inbox was empty.
func (in *inbox) put(p passed) {
	in.mu.Lock()
	in.fds = append(in.fds, p)
	first := len(in.fds) == 1
	in.mu.Unlock()
	if first {
		var one [8]byte // an eventfd takes a counter increment in host byte order
		binary.NativeEndian.PutUint64(one[:], 1)
		_, _ = rawWrite(in.efd, one[:])
	}
}

// take empties the inbox (after resetting its eventfd) and returns what it
// held, appended to into.
func (in *inbox) take(into []passed) []passed {
	var b [8]byte
	_, _ = rawRead(in.efd, b[:])
	in.mu.Lock()
	into = append(into, in.fds...)
	clear(in.fds)
	in.fds = in.fds[:0]
	in.mu.Unlock()
	return into
}

// close closes the clients still in the inbox and its eventfd; the loops
// have stopped.
func (in *inbox) close() {
	for _, p := range in.take(nil) {
		unix.Close(p.fd)
	}
	unix.Close(in.efd)
}

// placeFor returns the loop that should serve a client l just accepted: l,
// unless another loop has at least two clients fewer.
func (l *eloop) placeFor() *eloop {
	best, least := l, l.clients.Load()-1
	for _, o := range l.peers {
		if n := o.clients.Load(); n < least {
			best, least = o, n
		}
	}
	return best
}

// adoptPassed registers the clients other loops passed to l.
func (l *eloop) adoptPassed() {
	l.passed = l.in.take(l.passed[:0])
	for _, p := range l.passed {
		l.adopt(p.fd, p.ip)
	}
	clear(l.passed)
}

// adopt registers client fd (counted in l.clients already) as idle.
func (l *eloop) adopt(fd int, ip []byte) {
	c := &econn{fd: fd, ip: ip}
	l.setIdle(c)
	if l.register(c, unix.EPOLLIN) != nil {
		l.conns[fd] = nil
		unix.Close(fd)
		l.clients.Add(-1)
	}
}
