package balancer

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// newServer returns the fasthttp server of one Serve call.
func (lb *Balancer) newServer() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:                      lb.handle,
		ErrorHandler:                 lb.handleParseError,
		ReadTimeout:                  lb.cfg.ReadTimeout,
		IdleTimeout:                  lb.cfg.IdleTimeout,
		MaxRequestBodySize:           lb.cfg.MaxRequestBodySize,
		NoDefaultServerHeader:        true,
		NoDefaultDate:                true,
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
		Logger:                       fasthttpLogger{lb.log},
	}
}

// newHostClient returns a pooled keep-alive client of one backend. The
// proxy's client uses proxyTransport; the health checker's (transport nil)
// uses fasthttp's default one, which honours DoTimeout.
func (lb *Balancer) newHostClient(b *Backend, transport fasthttp.RoundTripper) *fasthttp.HostClient {
	dialer := &net.Dialer{Timeout: lb.cfg.DialTimeout, KeepAlive: 30 * time.Second}
	hc := &fasthttp.HostClient{
		Addr:                      b.addr,
		IsTLS:                     b.isTLS,
		NoDefaultUserAgentHeader:  true,
		DisablePathNormalizing:    true,
		MaxConns:                  lb.cfg.MaxConnsPerBackend,
		MaxIdleConnDuration:       10 * time.Second,
		MaxIdemponentCallAttempts: 2,
		RetryIfErr:                retryIfErr,
		Transport:                 transport,
		Dial: func(addr string) (net.Conn, error) {
			c, err := dialer.Dial("tcp", addr)
			if err != nil {
				return nil, &dialError{err}
			}
			return c, nil
		},
	}
	if lb.cfg.ResponseTimeout > 0 {
		hc.ReadTimeout = lb.cfg.ResponseTimeout
		hc.WriteTimeout = lb.cfg.ResponseTimeout
	}
	return hc
}

// maxBufferedBody is the largest response body, announced by Content-Length,
// that the proxy reads whole before answering the client. Larger bodies,
// chunked or close-delimited ones and event streams are streamed to the
// client as the backend sends them.
const maxBufferedBody = 64 << 10

// maxInterimResponses bounds the 1xx responses skipped before the final one.
const maxInterimResponses = 16

var errTooManyInterim = errors.New("balancer: too many interim (1xx) responses from the backend")

// proxyTransport is the RoundTripper of the proxy's backend clients. It
// does what fasthttp's default transport does, except that:
//
//   - it chooses per response, once the header is read, whether to stream
//     the body (fasthttp's StreamResponseBody streams every response, which
//     costs four allocations and a streamed write per request, and keeps the
//     backend connection busy until the client has the whole body);
//   - it marks a failed request write with sendError, so that a request that
//     never reached the backend can be retried elsewhere.
//
// It ignores a request's own timeout (DoTimeout): the health checker uses
// another client.
type proxyTransport struct{}

func (proxyTransport) RoundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) (bool, error) {
	cc, err := hc.AcquireConn(0, req.ConnectionClose())
	if err != nil {
		return false, err
	}
	conn := cc.Conn()
	// ResponseTimeout bounds the whole attempt, from writing the request to
	// the last byte of the response, so one deadline set once covers both
	// directions (newHostClient sets ReadTimeout = WriteTimeout).
	if hc.ReadTimeout > 0 {
		if err := conn.SetDeadline(time.Now().Add(hc.ReadTimeout)); err != nil {
			hc.CloseConn(cc)
			return true, &sendError{err}
		}
	}
	bw := hc.AcquireWriter(conn)
	err = req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	hc.ReleaseWriter(bw)
	if err != nil {
		hc.CloseConn(cc)
		return true, &sendError{err}
	}
	br := hc.AcquireReader(conn)
	fail := func(err error) (bool, error) {
		hc.ReleaseReader(br)
		hc.CloseConn(cc)
		return err != fasthttp.ErrBodyTooLarge, err
	}
	for n := 0; ; n++ {
		if err := resp.Header.Read(br); err != nil {
			return fail(err)
		}
		if code := resp.StatusCode(); code < 100 || code > 199 || code == fasthttp.StatusSwitchingProtocols {
			break
		}
		if n >= maxInterimResponses {
			return fail(errTooManyInterim)
		}
	}
	if req.Header.IsHead() {
		resp.SkipBody = true
	}
	closeConn := req.ConnectionClose() || resp.ConnectionClose()
	code := resp.StatusCode()
	cl := resp.Header.ContentLength()
	switch {
	case resp.SkipBody || code < 200 || code == fasthttp.StatusNoContent || code == fasthttp.StatusNotModified:
		// no body
	case cl >= 0 && cl <= maxBufferedBody && !bytes.HasPrefix(resp.Header.ContentType(), []byte("text/event-stream")):
		resp.StreamBody = false
		if err := resp.ReadBody(br, hc.MaxResponseBodySize); err != nil {
			return fail(err)
		}
	default:
		// Stream: a separate Response owns fasthttp's body reader, so that
		// resp can carry a stream that returns the connection when closed.
		sr := fasthttp.AcquireResponse()
		resp.Header.CopyTo(&sr.Header)
		sr.StreamBody = true
		if err := sr.ReadBody(br, 0); err != nil {
			fasthttp.ReleaseResponse(sr)
			return fail(err)
		}
		reusable := !closeConn && cl != -2 // a close-delimited body ends with the connection
		resp.SetBodyStream(&upstreamStream{r: sr.BodyStream(), release: func(eof bool) {
			_ = sr.CloseBodyStream()
			fasthttp.ReleaseResponse(sr)
			hc.ReleaseReader(br)
			if eof && reusable {
				hc.ReleaseConn(cc)
			} else {
				hc.CloseConn(cc)
			}
		}}, cl)
		return false, nil
	}
	hc.ReleaseReader(br)
	if closeConn {
		hc.CloseConn(cc)
	} else {
		hc.ReleaseConn(cc)
	}
	return false, nil
}

// upstreamStream is a streamed backend response body. Closing it returns
// the backend connection to the pool if the body was read to its end, and
// closes the connection otherwise.
type upstreamStream struct {
	r       io.Reader
	eof     bool
	release func(eof bool)
}

func (s *upstreamStream) Read(p []byte) (int, error) {
	if s.release == nil {
		return 0, io.ErrClosedPipe
	}
	n, err := s.r.Read(p)
	if err == io.EOF {
		s.eof = true
	}
	return n, err
}

func (s *upstreamStream) Close() error {
	if s.release != nil {
		s.release(s.eof)
		s.release = nil
	}
	return nil
}

// requestPool recycles the per-request selection state.
var requestPool = sync.Pool{New: func() any { return new(Request) }}

// Hop-by-hop headers (RFC 9110 section 7.6.1), removed in both directions.
// Connection itself is handled separately; fasthttp frames bodies itself, so
// Transfer-Encoding never passes through.
var hopHeaders = []string{"Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Upgrade"}

// handle proxies one request.
func (lb *Balancer) handle(ctx *fasthttp.RequestCtx) {
	req := &ctx.Request
	if req.Header.ConnectionUpgrade() && len(req.Header.Peek("Upgrade")) > 0 {
		lb.serveUpgrade(ctx)
		return
	}
	start := time.Now()
	clientClose := req.Header.ConnectionClose()
	stripHopHeaders(&req.Header)
	lb.setForwarded(ctx)

	pool := lb.pool.Load()
	r := requestPool.Get().(*Request)
	defer func() {
		*r = Request{}
		requestPool.Put(r)
	}()
	lb.fillRequest(ctx, r)
	isIdem := idempotent(&req.Header)
	resp := &ctx.Response

	var (
		lastErr error
		tries   int
	)
	for tries < lb.cfg.MaxTries {
		now := start.UnixNano()
		if tries > 0 {
			now = time.Now().UnixNano()
		}
		r.Now = now
		r.Panic = pool.panicking(now, lb.cfg.PanicThreshold)
		b := lb.selector.Select(pool, r)
		if b == nil {
			break
		}
		r.markTried(b)
		tries++
		if tries > 1 {
			lb.retries.Add(1)
		}
		if b.draining.Load() {
			b.lastUse.Store(now)
		}
		b.inflight.Add(1)
		b.requests.Add(1)
		err := b.client.Do(req, resp)
		b.inflight.Add(-1)
		done := time.Now()
		if err != nil {
			lastErr = err
			b.statusClass[0].Add(1)
			switch {
			case notReached(err):
				b.errDial.Add(1)
			case isTimeout(err):
				b.errTimeout.Add(1)
			default:
				b.errUpstream.Add(1)
			}
			lb.failed(b, done.UnixNano(), err)
			if notReached(err) || isIdem {
				continue
			}
			break
		}
		code := resp.StatusCode()
		b.latency.Observe(done.Sub(start).Seconds())
		b.statusClass[min(max(code/100, 1), 5)].Add(1)
		if code >= 500 {
			lb.failed(b, done.UnixNano(), nil)
			if isIdem && retryStatus(code) && tries < lb.cfg.MaxTries && lb.hasCandidate(pool, r) {
				_ = resp.CloseBodyStream()
				resp.Reset()
				continue
			}
		} else {
			b.recordSuccess(done.UnixNano())
		}
		lb.finish(ctx, r, b)
		if clientClose {
			ctx.SetConnectionClose()
		}
		if lb.cfg.AccessLog {
			lb.logAccess(ctx, b.id, code, tries, start)
		}
		return
	}

	// No attempt succeeded.
	_ = resp.CloseBodyStream()
	var code int
	switch {
	case lastErr == nil || notReached(lastErr):
		lb.noBackend.Add(1)
		code = fasthttp.StatusServiceUnavailable
		writeError(ctx, code, "no_backend", "no backend is available; retry later")
	case isTimeout(lastErr):
		code = fasthttp.StatusGatewayTimeout
		writeError(ctx, code, "upstream_timeout", "the backend did not answer in time")
	default:
		code = fasthttp.StatusBadGateway
		writeError(ctx, code, "bad_gateway", "the backend failed to answer")
	}
	if clientClose {
		ctx.SetConnectionClose()
	}
	if lb.cfg.AccessLog {
		lb.logAccess(ctx, "", code, tries, start)
	}
}

// fillRequest sets the selection keys of r from the client request.
func (lb *Balancer) fillRequest(ctx *fasthttp.RequestCtx, r *Request) {
	switch lb.cfg.Policy {
	case PolicySticky:
		r.Cookie = ctx.Request.Header.Cookie(lb.cfg.StickyCookie)
	case PolicyHash:
		r.HashKey = ctx.Request.Header.Cookie(lb.cfg.HashCookie)
		if len(r.HashKey) == 0 {
			r.HashKey = clientIP(ctx)
		}
	}
}

// hasCandidate reports whether another attempt of r could find a backend.
func (lb *Balancer) hasCandidate(pool *Pool, r *Request) bool {
	for _, b := range pool.backends {
		if r.Eligible(b) {
			return true
		}
	}
	return false
}

// failed records a failed attempt on b for passive health checking.
func (lb *Balancer) failed(b *Backend, now int64, err error) {
	if d, ejected := b.recordFailure(now, &lb.cfg); ejected {
		attrs := []any{"backend", b.id, "for", d}
		if err != nil {
			attrs = append(attrs, "err", err)
		}
		lb.log.Warn("balancer: backend ejected", attrs...)
	}
}

// finish adjusts a backend response before it is sent to the client.
func (lb *Balancer) finish(ctx *fasthttp.RequestCtx, r *Request, b *Backend) {
	h := &ctx.Response.Header
	// The backend's Connection header is about the backend connection,
	// which the HostClient already handled.
	h.Del("Connection")
	if hasHopHeader(h.All()) {
		for _, k := range hopHeaders {
			h.Del(k)
		}
	}
	if lb.cfg.Policy == PolicySticky && string(r.Cookie) != b.stickyValue {
		c := fasthttp.AcquireCookie()
		c.SetKey(lb.cfg.StickyCookie)
		c.SetValue(b.stickyValue)
		c.SetPath("/")
		c.SetHTTPOnly(true)
		c.SetSameSite(fasthttp.CookieSameSiteLaxMode)
		h.SetCookie(c)
		fasthttp.ReleaseCookie(c)
	}
}

// stripHopHeaders removes hop-by-hop headers from a request, including
// those the Connection header names.
func stripHopHeaders(h *fasthttp.RequestHeader) {
	if conn := h.Peek("Connection"); len(conn) > 0 {
		for tok := range bytes.SplitSeq(conn, []byte{','}) {
			tok = bytes.TrimSpace(tok)
			if len(tok) > 0 && !bytes.EqualFold(tok, []byte("close")) && !bytes.EqualFold(tok, []byte("keep-alive")) {
				h.DelBytes(tok)
			}
		}
		h.Del("Connection") // also clears "close": the backend connection is ours
	}
	if hasHopHeader(h.All()) {
		for _, k := range hopHeaders {
			h.Del(k)
		}
	}
}

// hasHopHeader reports whether headers hold one of hopHeaders. Scanning
// once is cheaper than a Del per name on the common header without any.
func hasHopHeader(headers iter.Seq2[[]byte, []byte]) bool {
	for k := range headers {
		for _, hop := range hopHeaders {
			if len(k) == len(hop) && bytes.EqualFold(k, []byte(hop)) {
				return true
			}
		}
	}
	return false
}

// setForwarded appends the client address to X-Forwarded-For and sets
// X-Forwarded-Proto and X-Forwarded-Host.
func (lb *Balancer) setForwarded(ctx *fasthttp.RequestCtx) {
	h := &ctx.Request.Header
	var buf [128]byte
	v := buf[:0]
	if prior := h.Peek("X-Forwarded-For"); len(prior) > 0 {
		v = append(append(v, prior...), ", "...)
	}
	v = appendClientIP(v, ctx)
	h.SetBytesV("X-Forwarded-For", v)
	if ctx.IsTLS() {
		h.Set("X-Forwarded-Proto", "https")
	} else {
		h.Set("X-Forwarded-Proto", "http")
	}
	h.SetBytesV("X-Forwarded-Host", h.Host())
}

func appendClientIP(dst []byte, ctx *fasthttp.RequestCtx) []byte {
	if a, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap().AppendTo(dst)
	}
	return append(dst, ctx.RemoteAddr().String()...)
}

func clientIP(ctx *fasthttp.RequestCtx) []byte { return appendClientIP(nil, ctx) }

// writeError replaces the response with a JSON error.
func writeError(ctx *fasthttp.RequestCtx, status int, code, msg string) {
	ctx.Response.Reset()
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	if status == fasthttp.StatusServiceUnavailable {
		ctx.Response.Header.Set("Retry-After", "1")
	}
	ctx.SetBodyString(`{"error":{"code":"` + code + `","message":"` + msg + `"}}` + "\n")
}

// handleParseError answers requests fasthttp could not read.
func (lb *Balancer) handleParseError(ctx *fasthttp.RequestCtx, err error) {
	switch {
	case isBodyTooLarge(err):
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge, "body_too_large", "request body too large")
	case isTimeout(err):
		writeError(ctx, fasthttp.StatusRequestTimeout, "request_timeout", "request not received in time")
	default:
		writeError(ctx, fasthttp.StatusBadRequest, "bad_request", "malformed HTTP request")
	}
	ctx.SetConnectionClose()
}

func isBodyTooLarge(err error) bool {
	return err == fasthttp.ErrBodyTooLarge || bytes.Contains([]byte(err.Error()), []byte("body size exceeds"))
}

// logAccess writes one access-log record.
func (lb *Balancer) logAccess(ctx *fasthttp.RequestCtx, backend string, code, tries int, start time.Time) {
	lb.log.LogAttrs(context.Background(), slog.LevelInfo, "request",
		slog.String("method", string(ctx.Method())),
		slog.String("uri", string(ctx.RequestURI())),
		slog.Int("status", code),
		slog.String("backend", backend),
		slog.Int("tries", tries),
		slog.Duration("duration", time.Since(start)),
		slog.String("client", string(clientIP(ctx))),
	)
}

// serveUpgrade passes an Upgrade request (WebSocket and the like) through to
// a backend over a dedicated connection, then splices the two connections
// until either side closes. The backend's answer, 101 or not, goes to the
// client unchanged (so a sticky cookie is not set on it).
func (lb *Balancer) serveUpgrade(ctx *fasthttp.RequestCtx) {
	lb.setForwarded(ctx)
	pool := lb.pool.Load()
	r := &Request{}
	lb.fillRequest(ctx, r)
	var (
		b    *Backend
		conn net.Conn
	)
	for tries := 0; tries < lb.cfg.MaxTries; tries++ {
		now := time.Now().UnixNano()
		r.Now = now
		r.Panic = pool.panicking(now, lb.cfg.PanicThreshold)
		b = lb.selector.Select(pool, r)
		if b == nil {
			break
		}
		r.markTried(b)
		b.requests.Add(1)
		c, err := lb.dialBackend(b)
		if err == nil {
			conn = c
			break
		}
		b.errDial.Add(1)
		b.statusClass[0].Add(1)
		lb.failed(b, time.Now().UnixNano(), err)
	}
	if conn == nil {
		lb.noBackend.Add(1)
		writeError(ctx, fasthttp.StatusServiceUnavailable, "no_backend", "no backend is available; retry later")
		return
	}
	head := append([]byte(nil), ctx.Request.Header.Header()...)
	body := append([]byte(nil), ctx.Request.Body()...)
	b.inflight.Add(1)
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(client net.Conn) {
		defer b.inflight.Add(-1)
		defer conn.Close()
		_ = client.SetDeadline(time.Time{})
		_ = conn.SetWriteDeadline(time.Now().Add(lb.cfg.DialTimeout + time.Second))
		if _, err := conn.Write(append(head, body...)); err != nil {
			lb.failed(b, time.Now().UnixNano(), err)
			return
		}
		_ = conn.SetWriteDeadline(time.Time{})
		b.recordSuccess(time.Now().UnixNano())
		splice(client, conn)
	})
}

// dialBackend opens a dedicated connection to b.
func (lb *Balancer) dialBackend(b *Backend) (net.Conn, error) {
	d := &net.Dialer{Timeout: lb.cfg.DialTimeout}
	if b.isTLS {
		host, _, _ := net.SplitHostPort(b.addr)
		return (&tls.Dialer{NetDialer: d, Config: &tls.Config{ServerName: host}}).Dial("tcp", b.addr)
	}
	return d.Dial("tcp", b.addr)
}

// splice copies both ways between a and b until both directions end. When
// one side stops sending, the other side's write half is closed so it sees
// EOF; when either copy fails, both connections are closed.
func splice(a, b net.Conn) {
	errc := make(chan error, 1)
	go func() {
		_, err := io.Copy(b, a)
		closeWrite(b, err)
		errc <- err
	}()
	_, err := io.Copy(a, b)
	closeWrite(a, err)
	if err != nil {
		rawConn(a).Close()
		b.Close()
	}
	<-errc
}

// rawConn returns the network connection under a fasthttp hijacked
// connection, whose own Close does nothing.
func rawConn(c net.Conn) net.Conn {
	if u, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
		return u.UnsafeConn()
	}
	return c
}

func closeWrite(c net.Conn, err error) {
	c = rawConn(c)
	if err != nil {
		c.Close()
		return
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	c.Close()
}

// fasthttpLogger sends fasthttp's internal messages to slog at Debug level.
type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	if f.l.Enabled(context.Background(), slog.LevelDebug) {
		f.l.Debug("balancer: fasthttp", "msg", fmt.Sprintf(format, args...))
	}
}
