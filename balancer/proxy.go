package balancer

import (
	"bufio"
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
		StreamRequestBody:            true,
		ReadBufferSize:               lb.cfg.MaxHeaderBytes,
		NoDefaultServerHeader:        true,
		NoDefaultDate:                true,
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
		// The handler never asks for the request time (ctx.Time): one
		// clock read fewer per request.
		LazyRequestTime: true,
		CloseOnShutdown: true,
		Logger:          fasthttpLogger{lb.log},
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
		TLSConfig:                 lb.cfg.BackendTLS,
		ReadBufferSize:            lb.cfg.MaxHeaderBytes,
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
//   - it marks a request write that failed before any byte reached the
//     backend with sendError, so that it can be retried elsewhere, and one
//     that failed half-way with partialSendError after trying to read the
//     backend's early answer (retry.go has the rules).
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
	wrote, connErr, err := writeRequest(hc, conn, req)
	var writeErr error
	if err != nil {
		if connErr == nil {
			// The connection did not fail: the request body's source (the
			// client) did. The backend got a truncated request; drop it.
			hc.CloseConn(cc)
			return false, &bodySourceError{err}
		}
		if wrote == 0 {
			hc.CloseConn(cc)
			return true, &sendError{err}
		}
		// Part of the request reached the backend: it may have answered
		// early (a 413, a redirect) and closed. Read that answer, if any;
		// never resend.
		writeErr = err
	}
	br := hc.AcquireReader(conn)
	fail := func(err error) (bool, error) {
		hc.ReleaseReader(br)
		hc.CloseConn(cc)
		if writeErr != nil {
			return false, &partialSendError{writeErr}
		}
		return err != fasthttp.ErrBodyTooLarge, err
	}
	if err := readResponseHeader(br, resp); err != nil {
		return fail(err)
	}
	if req.Header.IsHead() {
		resp.SkipBody = true
	}
	closeConn := req.ConnectionClose() || resp.ConnectionClose() || writeErr != nil
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

// writeRequest writes req to the backend connection conn and flushes it. It
// returns how many bytes reached the connection, the connection's own first
// write error (nil when only the request's body source failed), and the
// error of the write as a whole.
func writeRequest(hc *fasthttp.HostClient, conn net.Conn, req *fasthttp.Request) (wrote int64, connErr, err error) {
	cw := countingConnPool.Get().(*countingConn)
	cw.Conn, cw.n = conn, 0
	bw := hc.AcquireWriter(cw)
	err = req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	hc.ReleaseWriter(bw)
	wrote, connErr = cw.n, cw.err
	cw.Conn, cw.err = nil, nil
	countingConnPool.Put(cw)
	return wrote, connErr, err
}

// readResponseHeader reads the response header into resp, skipping interim
// (1xx) responses other than 101, at most maxInterimResponses of them.
func readResponseHeader(br *bufio.Reader, resp *fasthttp.Response) error {
	for n := 0; ; n++ {
		if err := resp.Header.Read(br); err != nil {
			return err
		}
		if code := resp.StatusCode(); code < 100 || code > 199 || code == fasthttp.StatusSwitchingProtocols {
			return nil
		}
		if n >= maxInterimResponses {
			return errTooManyInterim
		}
	}
}

// countingConn counts the bytes written to a backend connection, which
// tells a request that never reached the backend from one that may have.
type countingConn struct {
	net.Conn
	n   int64
	err error // the first write error
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n += int64(n)
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
}

var countingConnPool = sync.Pool{New: func() any { return new(countingConn) }}

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
	start := time.Now()
	if e := checkRequest(req); e != nil {
		lb.refuse(ctx, e, start)
		return
	}
	if len(lb.cfg.DenyPaths) > 0 && lb.denied(ctx.Path()) {
		lb.refused.Add(1)
		writeError(ctx, errDenied.status, errDenied.code, errDenied.msg)
		if lb.cfg.AccessLog {
			lb.logAccess(ctx, "", errDenied.status, 0, start)
		}
		return
	}
	r := requestPool.Get().(*Request)
	defer func() {
		*r = Request{}
		requestPool.Put(r)
	}()
	reserved, e := lb.prepareBody(req, r)
	defer lb.releaseBody(reserved)
	if e != nil {
		lb.refuse(ctx, e, start)
		return
	}
	if req.Header.ConnectionUpgrade() && len(req.Header.Peek("Upgrade")) > 0 {
		lb.serveUpgrade(ctx)
		return
	}
	clientClose := req.Header.ConnectionClose()
	stripHopHeaders(&req.Header)
	lb.setForwarded(ctx)
	lb.fillRequest(ctx, r)
	code, backend, tries := lb.forward(ctx, r, start)
	if clientClose {
		ctx.SetConnectionClose()
	}
	if lb.cfg.AccessLog {
		lb.logAccess(ctx, backend, code, tries, start)
	}
}

// refuse answers a request that checkRequest refused, and closes the
// connection: what follows a malformed request cannot be trusted.
func (lb *Balancer) refuse(ctx *fasthttp.RequestCtx, e *requestError, start time.Time) {
	lb.refused.Add(1)
	writeError(ctx, e.status, e.code, e.msg)
	ctx.SetConnectionClose()
	if lb.cfg.AccessLog {
		lb.logAccess(ctx, "", e.status, 0, start)
	}
}

// forward sends the request to backends under the retry rules (retry.go)
// until one answers or the try budget is spent, and leaves the answer in
// ctx.Response. It returns the status, the backend that answered (empty if
// none) and the number of attempts.
func (lb *Balancer) forward(ctx *fasthttp.RequestCtx, r *Request, start time.Time) (int, string, int) {
	req, resp := &ctx.Request, &ctx.Response
	pool := r.group.pool.Load()
	isIdem := r.group.retryAll || idempotent(&req.Header)
	streamed := req.IsBodyStream()
	var (
		lastErr error
		tries   int
	)
	lb.active.Add(1)
	defer func() {
		lb.releaseRetries(r)
		lb.active.Add(-1)
	}()
	for tries < lb.cfg.MaxTries {
		now := start.UnixNano()
		if tries > 0 {
			now = time.Now().UnixNano()
		}
		r.Now = now
		b, qerr := lb.pick(pool, r)
		if qerr != nil {
			_ = resp.CloseBodyStream()
			writeError(ctx, fasthttp.StatusServiceUnavailable, "queue_timeout", "every backend is at its connection limit; retry later")
			return fasthttp.StatusServiceUnavailable, "", tries
		}
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
		req.URI().SetScheme(b.scheme)
		b.requests.Add(1)
		sent := start
		if tries > 1 {
			sent = time.Now()
		}
		err := b.client.Do(req, resp)
		lb.release(b)
		done := time.Now()
		if err != nil {
			if e := r.body.failure(); e != nil || clientFault(err) {
				// The request, not the backend, is at fault: no mark.
				if e == nil {
					e = errCannotForward
				}
				_ = resp.CloseBodyStream()
				lb.refused.Add(1)
				writeError(ctx, e.status, e.code, e.msg)
				ctx.SetConnectionClose()
				return e.status, "", tries
			}
			lastErr = err
			lb.recordError(b, done.UnixNano(), err)
			if retryable(err, isIdem, streamed) && tries < lb.cfg.MaxTries && lb.takeRetry(r) {
				continue
			}
			break
		}
		code := resp.StatusCode()
		b.latency.Observe(done.Sub(start).Seconds())
		b.statusClass[min(max(code/100, 1), 5)].Add(1)
		lb.recordStatus(b, done.UnixNano(), code, done.Sub(sent))
		if code >= 500 && isIdem && !streamed && retryStatus(code) && tries < lb.cfg.MaxTries && lb.hasCandidate(pool, r) && lb.takeRetry(r) {
			_ = resp.CloseBodyStream()
			resp.Reset()
			continue
		}
		lb.finish(ctx, r, b)
		if streamed {
			r.body.drain(ctx)
		}
		return code, b.id, tries
	}
	if streamed {
		// The client may still be sending a body no backend will read:
		// read it (bounded by the body limit) so that it gets the answer
		// instead of a reset.
		r.body.drain(ctx)
	}
	return lb.answerFailure(ctx, lastErr), "", tries
}

// recordError counts a failed attempt on b and marks it for passive health.
func (lb *Balancer) recordError(b *Backend, now int64, err error) {
	b.statusClass[0].Add(1)
	switch {
	case notReached(err):
		b.errDial.Add(1)
		if connRefused(err) {
			b.sawRefused.Store(true)
		}
	case isTimeout(err):
		b.errTimeout.Add(1)
	default:
		b.errUpstream.Add(1)
	}
	lb.failed(b, now, err)
}

// answerFailure answers a request no attempt succeeded for, after lastErr
// (nil: no backend was available), and returns the status.
func (lb *Balancer) answerFailure(ctx *fasthttp.RequestCtx, lastErr error) int {
	_ = ctx.Response.CloseBodyStream()
	switch {
	case lastErr == nil || notReached(lastErr):
		lb.noBackend.Add(1)
		writeError(ctx, fasthttp.StatusServiceUnavailable, "no_backend", "no backend is available; retry later")
		return fasthttp.StatusServiceUnavailable
	case isTimeout(lastErr):
		writeError(ctx, fasthttp.StatusGatewayTimeout, "upstream_timeout", "the backend did not answer in time")
		return fasthttp.StatusGatewayTimeout
	default:
		writeError(ctx, fasthttp.StatusBadGateway, "bad_gateway", "the backend failed to answer")
		return fasthttp.StatusBadGateway
	}
}

// fillRequest picks r's pool by the request path and sets the selection
// keys its policy needs.
func (lb *Balancer) fillRequest(ctx *fasthttp.RequestCtx, r *Request) {
	r.group = lb.defaultGroup
	if len(lb.routes) > 0 {
		r.group = lb.groupFor(ctx.Path())
	}
	switch r.group.policy {
	case PolicySticky:
		r.Cookie = ctx.Request.Header.Cookie(lb.cfg.StickyCookie)
	case PolicyHash:
		r.HashKey = lb.hashKey.extract(&ctx.Request)
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
	lb.ejectMu.Lock()
	d, ejected := b.recordFailure(now, &lb.cfg, func() bool { return lb.mayEject(b, now) })
	lb.ejectMu.Unlock()
	if ejected {
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
	if r.group.policy == PolicySticky && string(r.Cookie) != b.stickyValue {
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

// Canonical names and values of the X-Forwarded-* headers: SetCanonical
// with them skips the copy and case normalisation of a name per call.
var (
	hdrForwardedFor   = []byte("X-Forwarded-For")
	hdrForwardedProto = []byte("X-Forwarded-Proto")
	hdrForwardedHost  = []byte("X-Forwarded-Host")
	protoHTTP         = []byte("http")
	protoHTTPS        = []byte("https")
)

// setForwarded appends the client address to X-Forwarded-For and sets
// X-Forwarded-Proto and X-Forwarded-Host.
func (lb *Balancer) setForwarded(ctx *fasthttp.RequestCtx) {
	h := &ctx.Request.Header
	var buf [128]byte
	v := buf[:0]
	if prior := h.PeekBytes(hdrForwardedFor); len(prior) > 0 {
		v = append(append(v, prior...), ", "...)
	}
	v = appendClientIP(v, ctx)
	h.SetCanonical(hdrForwardedFor, v)
	if ctx.IsTLS() {
		h.SetCanonical(hdrForwardedProto, protoHTTPS)
	} else {
		h.SetCanonical(hdrForwardedProto, protoHTTP)
	}
	h.SetCanonical(hdrForwardedHost, h.Host())
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
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.As(err, &small):
		writeError(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, "header_too_large", "request header block too large")
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

// serveUpgrade passes an Upgrade request (WebSocket and the like) to a
// backend over a dedicated connection. Only if the backend answers 101
// Switching Protocols are the two connections spliced until either side
// closes (the 101 goes to the client unchanged, so a sticky cookie is not
// set on it). Any other answer is an ordinary response: it is passed on,
// the backend connection is closed, and the client connection goes on being
// parsed as HTTP, with the balancer's limits, timeouts and X-Forwarded-*.
func (lb *Balancer) serveUpgrade(ctx *fasthttp.RequestCtx) {
	lb.setForwarded(ctx)
	r := &Request{}
	lb.fillRequest(ctx, r)
	b, conn := lb.dialUpgrade(r)
	if conn == nil {
		lb.noBackend.Add(1)
		writeError(ctx, fasthttp.StatusServiceUnavailable, "no_backend", "no backend is available; retry later")
		return
	}
	b.inflight.Add(1)
	defer b.inflight.Add(-1)
	if lb.cfg.ResponseTimeout > 0 {
		_ = conn.SetDeadline(time.Now().Add(lb.cfg.ResponseTimeout))
	}
	br := bufio.NewReaderSize(conn, lb.cfg.MaxHeaderBytes)
	rh, err := sendUpgrade(conn, br, &ctx.Request)
	if err != nil {
		conn.Close()
		lb.recordError(b, time.Now().UnixNano(), &partialSendError{err})
		lb.answerFailure(ctx, &partialSendError{err})
		return
	}
	code := rh.StatusCode()
	b.statusClass[min(max(code/100, 1), 5)].Add(1)
	if code != fasthttp.StatusSwitchingProtocols {
		lb.relayNotUpgraded(ctx, r, b, conn, br, rh)
		return
	}
	b.recordSuccess(time.Now().UnixNano())
	buffered, _ := br.Peek(br.Buffered())
	early := append(append([]byte(nil), rh.Header()...), buffered...)
	fasthttp.ReleaseResponse(rh.resp)
	b.inflight.Add(1) // the tunnel outlives the handler
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(client net.Conn) {
		defer b.inflight.Add(-1)
		defer conn.Close()
		_ = client.SetDeadline(time.Time{})
		_ = conn.SetDeadline(time.Time{})
		if _, err := client.Write(early); err != nil {
			return
		}
		splice(client, conn)
	})
}

// dialUpgrade picks a backend for an Upgrade request and opens a dedicated
// connection to it, trying up to Config.MaxTries backends. It returns a nil
// connection if none could be reached.
func (lb *Balancer) dialUpgrade(r *Request) (*Backend, net.Conn) {
	pool := r.group.pool.Load()
	for tries := 0; tries < lb.cfg.MaxTries; tries++ {
		now := time.Now().UnixNano()
		r.Now = now
		r.Panic = pool.panicking(now, lb.cfg.PanicThreshold)
		b := r.group.selector.Select(pool, r)
		if b == nil {
			break
		}
		r.markTried(b)
		b.requests.Add(1)
		c, err := lb.dialBackend(b)
		if err == nil {
			return b, c
		}
		lb.recordError(b, time.Now().UnixNano(), &dialError{err})
	}
	return nil, nil
}

// upgradeHead is a backend's answer header to an Upgrade request.
type upgradeHead struct {
	*fasthttp.ResponseHeader
	resp *fasthttp.Response
}

// sendUpgrade writes req to conn and reads the final response header (or a
// 101) from br.
func sendUpgrade(conn net.Conn, br *bufio.Reader, req *fasthttp.Request) (upgradeHead, error) {
	head := req.Header.Header()
	if _, err := conn.Write(append(append([]byte(nil), head...), req.Body()...)); err != nil {
		return upgradeHead{}, err
	}
	resp := fasthttp.AcquireResponse()
	resp.Header.SetNoDefaultContentType(true)
	for n := 0; ; n++ {
		if err := resp.Header.Read(br); err != nil {
			fasthttp.ReleaseResponse(resp)
			return upgradeHead{}, err
		}
		if code := resp.StatusCode(); code < 100 || code > 199 || code == fasthttp.StatusSwitchingProtocols {
			return upgradeHead{&resp.Header, resp}, nil
		}
		if n >= maxInterimResponses {
			fasthttp.ReleaseResponse(resp)
			return upgradeHead{}, errTooManyInterim
		}
	}
}

// relayNotUpgraded passes on a backend's non-101 answer to an Upgrade
// request as an ordinary response, streaming its body, and closes the
// backend connection once the body is sent.
func (lb *Balancer) relayNotUpgraded(ctx *fasthttp.RequestCtx, r *Request, b *Backend, conn net.Conn, br *bufio.Reader, rh upgradeHead) {
	resp := &ctx.Response
	rh.CopyTo(&resp.Header)
	src := rh.resp
	code := rh.StatusCode()
	if ctx.Request.Header.IsHead() || code == fasthttp.StatusNoContent || code == fasthttp.StatusNotModified {
		src.SkipBody = true
	}
	src.StreamBody = true
	if err := src.ReadBody(br, 0); err != nil {
		fasthttp.ReleaseResponse(src)
		conn.Close()
		lb.recordError(b, time.Now().UnixNano(), err)
		lb.answerFailure(ctx, err)
		return
	}
	if src.SkipBody {
		fasthttp.ReleaseResponse(src)
		conn.Close()
	} else {
		resp.SetBodyStream(&upstreamStream{r: src.BodyStream(), release: func(bool) {
			_ = src.CloseBodyStream()
			fasthttp.ReleaseResponse(src)
			conn.Close()
		}}, resp.Header.ContentLength())
	}
	lb.recordStatus(b, time.Now().UnixNano(), code, 0)
	lb.finish(ctx, r, b)
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
