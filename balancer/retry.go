package balancer

import (
	"errors"
	"net"

	"github.com/valyala/fasthttp"
)

// The retry rules, in the order the proxy applies them:
//
//  1. An attempt that never reached a backend — the dial failed, or not one
//     byte of the request could be written to the connection (a pooled
//     connection the backend had closed) — is retried whatever the method,
//     unless the request body is streamed and writing had begun: a
//     streamed body cannot be read twice.
//  2. An idempotent request (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) with a
//     buffered body is also retried on another backend after a connection
//     error, a timeout, or a 502/503/504 response.
//  3. Anything else whose bytes may have reached a backend (a POST or PATCH
//     of which any byte was written) is never re-sent: the backend may have
//     acted on it. This includes a write that failed half-way because the
//     backend answered early and closed the connection: the balancer then
//     reads that early answer and passes it on (it is the backend's
//     answer, not a failure; a 4xx does not count against the backend).
//
// Every retry needs an untried eligible backend and counts against
// Config.MaxTries. As in net/http, a non-idempotent request whose reused
// keep-alive connection turns out to be closed by the backend after the
// write is not retried: it cannot be told apart from a backend that failed
// while handling it. Requests refused by checkRequest, and errors the
// request itself causes (clientFault), never count against a backend.

// dialError marks an error from connecting to a backend: the request never
// left the balancer.
type dialError struct{ err error }

func (e *dialError) Error() string { return "dial backend: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// sendError marks an error from writing the request to a backend before a
// single byte reached the connection: the backend cannot have seen it.
type sendError struct{ err error }

func (e *sendError) Error() string { return "write to backend: " + e.err.Error() }
func (e *sendError) Unwrap() error { return e.err }

// partialSendError marks an error from writing the request after some of
// its bytes reached the backend, when no early answer could be read: the
// backend may have acted on the request.
type partialSendError struct{ err error }

func (e *partialSendError) Error() string { return "write to backend (partly sent): " + e.err.Error() }
func (e *partialSendError) Unwrap() error { return e.err }

// notReached reports whether err means the request never reached the
// backend, so that any method may be retried elsewhere.
func notReached(err error) bool {
	var de *dialError
	var we *sendError
	return errors.As(err, &de) || errors.As(err, &we) ||
		errors.Is(err, fasthttp.ErrDialTimeout) || errors.Is(err, fasthttp.ErrNoFreeConns)
}

// beforeWrite reports whether err happened before the request was handed
// to a connection (so even a streamed body is untouched).
func beforeWrite(err error) bool {
	var de *dialError
	return errors.As(err, &de) || errors.Is(err, fasthttp.ErrDialTimeout) || errors.Is(err, fasthttp.ErrNoFreeConns)
}

// retryable reports whether a request that failed with err may be sent to
// another backend: see the rules above.
func retryable(err error, idem, streamed bool) bool {
	if streamed {
		return beforeWrite(err)
	}
	return notReached(err) || idem
}

// isTimeout reports whether err is an upstream timeout.
func isTimeout(err error) bool {
	if errors.Is(err, fasthttp.ErrTimeout) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// idempotent reports whether a request with this method may be sent twice.
func idempotent(h *fasthttp.RequestHeader) bool {
	return h.IsGet() || h.IsHead() || h.IsPut() || h.IsDelete() || h.IsOptions() || h.IsTrace()
}

// retryStatus reports whether a response status makes an idempotent request
// worth retrying on another backend.
func retryStatus(code int) bool {
	return code == fasthttp.StatusBadGateway || code == fasthttp.StatusServiceUnavailable || code == fasthttp.StatusGatewayTimeout
}

// retryIfErr is the HostClient's own retry rule, for a second attempt on
// the same backend: only a request of which nothing was written (typically
// on a pooled connection the backend had closed) is resent, on a fresh
// connection; the HostClient never retries a streamed body. Every
// other failure returns to the proxy, which moves on to another backend
// under the rules above.
func retryIfErr(req *fasthttp.Request, attempts int, err error) (resetTimeout, retry bool) {
	var we *sendError
	return false, errors.As(err, &we)
}

// takeRetry reports whether r may be retried under the retry budget
// (Config.RetryBudget) and, if so, holds a budget slot for it until the
// request ends (releaseRetries). A request holds at most one slot however
// many retries it makes.
func (lb *Balancer) takeRetry(r *Request) bool {
	if lb.cfg.RetryBudget < 0 || r.retrySlot {
		return true
	}
	limit := int64(lb.cfg.RetryBudget * float64(lb.active.Load()))
	limit = max(limit, int64(max(lb.cfg.RetryBudgetMin, 0)))
	for {
		n := lb.retrying.Load()
		if n >= limit {
			lb.budgetOut.Add(1)
			return false
		}
		if lb.retrying.CompareAndSwap(n, n+1) {
			r.retrySlot = true
			return true
		}
	}
}

// releaseRetries gives back r's retry-budget slot, if it holds one.
func (lb *Balancer) releaseRetries(r *Request) {
	if r.retrySlot {
		lb.retrying.Add(-1)
		r.retrySlot = false
	}
}
