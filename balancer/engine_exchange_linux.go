//go:build linux

package balancer

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

// backendBufSize is a backend connection's read buffer: answers' bodies
// are relayed in reads of up to this much (their heads are still limited to
// MaxHeaderBytes).
const backendBufSize = 64 << 10

// backendIdle is how long an idle backend connection stays pooled, as
// the fasthttp path's MaxIdleConnDuration.
const backendIdle = 10 * time.Second

// nextRequest serves the request at the start of client c's buffer, once
// it has fully arrived, or hands c to fasthttp if the engine does not
// serve it.
func (l *eloop) nextRequest(c *econn) {
	h, complete, ok := parseReqHead(c.buf[:c.n])
	if !complete {
		if c.n == len(c.buf) {
			l.handOver(c)
		}
		return
	}
	lb := l.lb
	if !ok || h.headEnd+h.contentLength > len(c.buf) || h.contentLength > lb.cfg.MaxRequestBodySize {
		l.handOver(c)
		return
	}
	if c.n < h.headEnd+h.contentLength {
		return
	}
	if needsNormalising(h.target) || l.poolHasTLS(&h) {
		l.handOver(c) // fasthttp normalises paths and dials TLS
		return
	}
	ex := c.spare
	if ex == nil {
		ex = new(exchange)
		c.spare = ex
	}
	*ex = exchange{client: c, start: l.now, head: string(h.method) == "HEAD", req: ex.req[:0], cookie: ex.cookie[:0], key: ex.key[:0]}
	ex.r.group = l.groupOf(&h)
	switch ex.r.group.policy {
	case PolicySticky:
		ex.cookie = append(ex.cookie, cookieValue(h.cookie, lb.cfg.StickyCookie)...)
		ex.r.Cookie = ex.cookie
	case PolicyHash:
		ex.key = append(ex.key, lb.hashKey.engineKey(&h)...)
		ex.r.HashKey = ex.key
		if len(ex.r.HashKey) == 0 {
			ex.r.HashKey = c.ip
		}
	}
	m := string(h.method)
	ex.idem = ex.r.group.retryAll || m == "GET" || m == "HEAD" || m == "PUT" || m == "DELETE" || m == "OPTIONS" || m == "TRACE"
	ex.req = appendForwardedRequest(ex.req, c.buf[:c.n], &h, c.ip)
	c.closeWhen = h.closeConn
	used := h.headEnd + h.contentLength
	c.n = copy(c.buf, c.buf[used:c.n])
	c.ex = ex
	c.expires = 0
	l.active++
	lb.active.Add(1)
	l.attempt(ex)
}

// groupOf returns the pool group of a request by its path.
func (l *eloop) groupOf(h *reqHead) *poolGroup {
	if len(l.lb.routes) == 0 {
		return l.lb.defaultGroup
	}
	path, _, _ := bytes.Cut(h.target, []byte("?"))
	return l.lb.groupFor(path)
}

// poolHasTLS reports whether the request's pool has an HTTPS backend.
func (l *eloop) poolHasTLS(h *reqHead) bool {
	for _, b := range l.groupOf(h).pool.Load().backends {
		if b.isTLS {
			return true
		}
	}
	return false
}

// needsNormalising reports whether a request target has dot segments,
// doubled slashes or escapes, which fasthttp normalises before routing.
func needsNormalising(target []byte) bool {
	path, _, _ := bytes.Cut(target, []byte("?"))
	return bytes.Contains(path, []byte("/.")) || bytes.Contains(path, []byte("//")) || bytes.IndexByte(path, '%') >= 0
}

// attempt picks a backend for ex's next try and sends the request to it,
// or answers with the failure when no backend is left.
func (l *eloop) attempt(ex *exchange) {
	lb := l.lb
	pool := ex.r.group.pool.Load()
	if ex.tries >= lb.cfg.MaxTries {
		l.fail(ex)
		return
	}
	now := ex.start.UnixNano()
	if ex.tries > 0 {
		now = time.Now().UnixNano()
	}
	ex.r.Now = now
	b, _ := lb.pick(pool, &ex.r)
	if b == nil {
		l.fail(ex)
		return
	}
	if b.isTLS {
		lb.release(b)
		ex.lastErr = errors.New("the epoll engine does not dial TLS backends")
		l.fail(ex)
		return
	}
	ex.r.markTried(b)
	ex.tries++
	if ex.tries > 1 {
		lb.retries.Add(1)
	}
	if b.draining.Load() {
		b.lastUse.Store(now)
	}
	b.requests.Add(1)
	ex.sent = time.Unix(0, now)
	ex.redialed = false
	bc, err := l.backendConn(b)
	if err != nil {
		lb.release(b)
		l.failedOn(ex, b, &dialError{err})
		return
	}
	l.bind(ex, bc)
}

// bind starts ex's attempt on backend connection bc.
func (l *eloop) bind(ex *exchange, bc *econn) {
	ex.bconn, bc.ex = bc, ex
	ex.relaying, ex.left, ex.chunks = false, 0, chunkScanner{}
	bc.n, bc.expires = 0, 0
	if t := l.lb.cfg.ResponseTimeout; t > 0 {
		bc.expires = l.now.Add(t).UnixNano()
	}
	if bc.connecting {
		if t := l.lb.cfg.DialTimeout; t > 0 {
			bc.expires = l.now.Add(t).UnixNano()
		}
		return
	}
	l.send(ex, bc)
}

func (l *eloop) send(ex *exchange, bc *econn) {
	n, err := rawWrite(bc.fd, ex.req)
	switch {
	case n == len(ex.req):
	case err == unix.EAGAIN || err == nil && n > 0:
		bc.out = append(bc.out[:0], ex.req[max(n, 0):]...)
		bc.waitOut = true
		l.arm(bc)
	case n <= 0 && bc.reused && !ex.redialed:
		l.redial(ex, bc)
	case n <= 0:
		l.attemptFailed(ex, &sendError{err})
	default:
		l.attemptFailed(ex, &partialSendError{err})
	}
}

// redial replaces a pooled connection the backend had closed, before any
// of the request was read from it, with a new one (the HostClient does the
// same): it is not a new attempt.
func (l *eloop) redial(ex *exchange, bc *econn) {
	b := bc.b
	ex.bconn, bc.ex = nil, nil
	l.closeConn(bc)
	ex.redialed = true
	nc, err := l.backendConn(b)
	if err != nil {
		l.lb.release(b)
		l.failedOn(ex, b, &dialError{err})
		return
	}
	l.bind(ex, nc)
	ex.redialed = true
}

// backendConn returns an idle connection to b, or starts dialling one.
func (l *eloop) backendConn(b *Backend) (*econn, error) {
	for pool := l.idle[b]; len(pool) > 0; pool = l.idle[b] {
		bc := pool[len(pool)-1]
		l.idle[b] = pool[:len(pool)-1]
		if bc.fd >= 0 {
			bc.reused = true
			return bc, nil
		}
	}
	if b.engineConns.Load() >= int64(l.lb.cfg.MaxConnsPerBackend) {
		return nil, fasthttp.ErrNoFreeConns // as fasthttp's HostClient at MaxConns
	}
	sa, err := l.sockaddr(b.addr)
	if err != nil {
		return nil, err
	}
	family := unix.AF_INET
	if _, ok := sa.(*unix.SockaddrInet6); ok {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	bc := &econn{fd: fd, b: b, buf: make([]byte, max(l.lb.cfg.MaxHeaderBytes, backendBufSize))}
	err = unix.Connect(fd, sa)
	if err == unix.EINPROGRESS {
		bc.connecting = true
	} else if err != nil {
		unix.Close(fd)
		return nil, err
	}
	events := uint32(unix.EPOLLIN)
	if bc.connecting {
		events = unix.EPOLLOUT
	}
	if err := l.register(bc, events); err != nil {
		l.conns[fd] = nil
		unix.Close(fd)
		return nil, err
	}
	b.engineConns.Add(1)
	return bc, nil
}

// resolveTTL is how long the loop keeps a backend host's address.
const resolveTTL = 30 * time.Second

// resolved is a backend address the loop looked up.
type resolved struct {
	sa    unix.Sockaddr
	until int64
}

// sockaddr resolves a backend's host:port, again after resolveTTL (an IP
// literal costs nothing; a name is looked up in the loop, blocking it for
// the lookup).
func (l *eloop) sockaddr(addr string) (unix.Sockaddr, error) {
	now := l.now.UnixNano()
	if r, ok := l.addrs[addr]; ok && now < r.until {
		return r.sa, nil
	}
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, err
	}
	var sa unix.Sockaddr
	if ip4 := ta.IP.To4(); ip4 != nil {
		a := &unix.SockaddrInet4{Port: ta.Port}
		copy(a.Addr[:], ip4)
		sa = a
	} else {
		a := &unix.SockaddrInet6{Port: ta.Port}
		copy(a.Addr[:], ta.IP.To16())
		sa = a
	}
	l.addrs[addr] = resolved{sa, now + int64(resolveTTL)}
	return sa, nil
}

// connected completes a non-blocking connect.
func (l *eloop) connected(bc *econn) {
	bc.connecting = false
	errno, err := unix.GetsockoptInt(bc.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err == nil && errno != 0 {
		err = unix.Errno(errno)
	}
	ex := bc.ex
	if err != nil {
		if ex != nil {
			l.attemptFailed(ex, &dialError{err})
		} else {
			l.closeConn(bc)
		}
		return
	}
	l.arm(bc)
	bc.expires = 0
	if ex != nil {
		if t := l.lb.cfg.ResponseTimeout; t > 0 {
			bc.expires = l.now.Add(t).UnixNano()
		}
		l.send(ex, bc)
	}
}

// attemptFailed ends the attempt on ex's backend connection with err and
// retries under the retry rules, or answers with the failure.
func (l *eloop) attemptFailed(ex *exchange, err error) {
	bc := ex.bconn
	b := bc.b
	if bc.reused && !ex.redialed && !ex.relaying && bc.n == 0 && ex.idem && !errors.As(err, new(*dialError)) && err != fasthttp.ErrTimeout {
		l.redial(ex, bc) // a keep-alive connection closed under us
		return
	}
	ex.bconn, bc.ex = nil, nil
	l.closeConn(bc)
	l.lb.release(b)
	if ex.relaying {
		// part of the answer is out: nothing to do but cut the client off
		l.lb.recordError(b, time.Now().UnixNano(), err)
		c := ex.client
		c.ex = nil
		l.endExchange(ex)
		c.closeWhen = true
		if len(c.out) == 0 {
			l.closeConn(c)
		}
		return
	}
	l.failedOn(ex, b, err)
}

// failedOn records a failed attempt on b and tries again if allowed.
func (l *eloop) failedOn(ex *exchange, b *Backend, err error) {
	lb := l.lb
	ex.lastErr = err
	lb.recordError(b, time.Now().UnixNano(), err)
	if retryable(err, ex.idem, false) && ex.tries < lb.cfg.MaxTries && lb.takeRetry(&ex.r) {
		l.attempt(ex)
		return
	}
	l.fail(ex)
}

// fail answers ex after no attempt succeeded, as answerFailure does.
func (l *eloop) fail(ex *exchange) {
	status, code, msg := fasthttp.StatusBadGateway, "bad_gateway", "the backend failed to answer"
	switch err := ex.lastErr; {
	case err == nil || notReached(err):
		l.lb.noBackend.Add(1)
		status, code, msg = fasthttp.StatusServiceUnavailable, "no_backend", "no backend is available; retry later"
	case isTimeout(err):
		status, code, msg = fasthttp.StatusGatewayTimeout, "upstream_timeout", "the backend did not answer in time"
	}
	body := `{"error":{"code":"` + code + `","message":"` + msg + `"}}` + "\n"
	p := append(l.scratch[:0], "HTTP/1.1 "...)
	p = strconv.AppendInt(p, int64(status), 10)
	p = append(append(append(p, ' '), fasthttp.StatusMessage(status)...), "\r\nContent-Type: application/json\r\n"...)
	if status == fasthttp.StatusServiceUnavailable {
		p = append(p, "Retry-After: 1\r\n"...)
	}
	if ex.client.closeWhen {
		p = append(p, "Connection: close\r\n"...)
	}
	p = strconv.AppendInt(append(p, "Content-Length: "...), int64(len(body)), 10)
	p = append(append(p, "\r\n\r\n"...), body...)
	l.scratch = p
	c := ex.client
	c.ex = nil
	l.endExchange(ex)
	if !l.write(c, p) {
		l.closeConn(c)
		return
	}
	if len(c.out) == 0 {
		l.answered(c)
	}
}

// endExchange accounts for the end of ex.
func (l *eloop) endExchange(ex *exchange) {
	if ex.ended {
		return
	}
	ex.ended = true
	l.served++
	l.lb.releaseRetries(&ex.r)
	l.lb.active.Add(-1)
	l.active--
}

func (l *eloop) dropIdle(bc *econn) {
	pool := l.idle[bc.b]
	for i, x := range pool {
		if x == bc {
			l.idle[bc.b] = append(pool[:i], pool[i+1:]...)
			return
		}
	}
}

// backendReadable reads from a backend connection once: an idle one may
// only report that the backend closed it.
func (l *eloop) backendReadable(bc *econn) {
	ex := bc.ex
	if ex == nil {
		l.closeConn(bc)
		return
	}
	if !ex.relaying && bc.n >= l.lb.cfg.MaxHeaderBytes {
		l.attemptFailed(ex, errors.New("response head too large"))
		return
	}
	n, err := rawRead(bc.fd, bc.buf[bc.n:])
	if n <= 0 {
		if err == unix.EAGAIN {
			return
		}
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		if ex.relaying && ex.left < 0 && !ex.resp.chunked {
			l.relayDone(ex, bc, true) // the body ran to the end of the connection
			return
		}
		l.attemptFailed(ex, err)
		return
	}
	bc.n += n
	if !ex.relaying {
		l.responseHead(ex, bc)
		return
	}
	l.relay(ex, bc)
}

// responseHead handles a backend's answer once its head has arrived:
// accounting, a retry on 502/503/504 as the fasthttp path does, or the
// start of relaying it to the client.
func (l *eloop) responseHead(ex *exchange, bc *econn) {
	h, complete, ok := parseRespHead(bc.buf[:bc.n])
	if !complete {
		return
	}
	if !ok {
		l.attemptFailed(ex, errors.New("malformed response from the backend"))
		return
	}
	lb, b, c := l.lb, bc.b, ex.client
	done := time.Now()
	b.latency.Observe(done.Sub(ex.start).Seconds())
	b.statusClass[min(max(h.code/100, 1), 5)].Add(1)
	lb.recordStatus(b, done.UnixNano(), h.code, done.Sub(ex.sent))
	if h.code >= 500 && ex.idem && retryStatus(h.code) && ex.tries < lb.cfg.MaxTries &&
		lb.hasCandidate(ex.r.group.pool.Load(), &ex.r) && lb.takeRetry(&ex.r) {
		ex.bconn, bc.ex = nil, nil
		l.closeConn(bc)
		lb.release(b)
		l.attempt(ex)
		return
	}
	ex.resp, ex.relaying = h, true
	switch {
	case ex.head || h.code == 204 || h.code == 304:
		ex.left = 0
		ex.resp.chunked = false
	case h.chunked:
	case h.contentLength >= 0:
		ex.left = h.contentLength
	default:
		ex.left = -1 // until the backend closes
		c.closeWhen = true
	}
	var cookie []byte
	if ex.r.group.policy == PolicySticky && string(ex.cookie) != b.stickyValue {
		cookie = append(append(append(append(cookie, "Set-Cookie: "...), lb.cfg.StickyCookie...), '='), b.stickyValue...)
		cookie = append(cookie, "; path=/; HttpOnly; SameSite=Lax\r\n"...)
	}
	p := appendResponseHead(l.scratch[:0], bc.buf[:bc.n], &ex.resp, cookie, c.closeWhen)
	l.scratch = p
	rest := bc.buf[h.headEnd:bc.n]
	l.relayBody(ex, bc, p, rest)
}

// relay passes on body bytes that arrived from the backend.
func (l *eloop) relay(ex *exchange, bc *econn) {
	l.relayBody(ex, bc, l.scratch[:0], bc.buf[:bc.n])
}

// relayBody writes head (maybe empty) and the part of data that belongs to
// the answer's body to the client, and ends the exchange with the body.
func (l *eloop) relayBody(ex *exchange, bc *econn, head, data []byte) {
	take, done := len(data), false
	switch {
	case ex.resp.chunked:
		n, end, ok := ex.chunks.scan(data)
		if !ok {
			l.attemptFailed(ex, errors.New("malformed chunked body from the backend"))
			return
		}
		take, done = n, end
	case ex.left >= 0:
		take = min(ex.left, len(data))
		ex.left -= take
		done = ex.left == 0
	}
	extra := take < len(data)
	bc.n = 0
	c := ex.client
	if done {
		// before the client can see the answer, as in the fasthttp path
		l.lb.release(bc.b)
		ex.released = true
		l.endExchange(ex)
	}
	out := append(head, data[:take]...)
	if len(head) > 0 {
		l.scratch = out
	}
	if !l.write(c, out) {
		l.closeConn(c)
		return
	}
	if done {
		l.relayDone(ex, bc, extra)
		return
	}
	if len(c.out) > 64<<10 && !bc.stopped {
		bc.stopped = true // the client is slower than the backend
		l.arm(bc)
	}
}

// relayDone ends an exchange whose answer was fully relayed: the backend
// connection goes back to the pool (unless it cannot be reused) and the
// client is served on.
func (l *eloop) relayDone(ex *exchange, bc *econn, noReuse bool) {
	c, b := ex.client, bc.b
	ex.bconn, bc.ex = nil, nil
	if !ex.released {
		l.lb.release(b)
	}
	// At the backend's connection cap an idle connection is closed rather
	// than pooled: each loop pools its own, and a slot idle in this loop
	// must not turn another loop's request away.
	atCap := b.engineConns.Load() >= int64(l.lb.cfg.MaxConnsPerBackend)
	if noReuse || atCap || ex.resp.closeConn || ex.left < 0 && !ex.resp.chunked {
		l.closeConn(bc)
	} else {
		bc.expires, bc.n = l.now.Add(backendIdle).UnixNano(), 0
		if bc.stopped {
			bc.stopped = false
			l.arm(bc)
		}
		l.idle[b] = append(l.idle[b], bc)
	}
	c.ex = nil
	l.endExchange(ex)
	if c.fd >= 0 && len(c.out) == 0 {
		l.answered(c)
	}
}
