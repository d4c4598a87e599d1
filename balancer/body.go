package balancer

import (
	"bytes"
	"errors"
	"io"
	"sync"

	"github.com/valyala/fasthttp"
)

// Request bodies are read as a stream (the server runs with
// StreamRequestBody), so memory per request stays bounded whatever the
// body size:
//
//   - a body announced larger than Config.MaxRequestBodySize is refused
//     with 413 before anything is read or sent; a chunked body that grows
//     past it is cut off, and the client gets 413 (the backend has seen a
//     truncated request and no final chunk, which it must discard);
//   - a body with a Content-Length up to Config.MaxBufferedBody is read
//     whole before a backend is chosen, so the request can be retried on
//     another backend under the rules of retry.go — as long as all
//     buffered bodies together stay within Config.BufferedBodyBudget;
//   - any other body (larger, chunked, or beyond the budget) is streamed to
//     the backend as the client sends it. A streamed body cannot be read
//     twice, so such a request is retried only if no connection to the
//     first backend could be opened. If the backend answers before reading
//     it whole, the rest (up to the limit) is read and dropped so that the
//     client, still sending, gets the answer.

var (
	errBodyTooLarge   = &requestError{fasthttp.StatusRequestEntityTooLarge, "body_too_large", "request body too large"}
	errBodyIncomplete = &requestError{fasthttp.StatusBadRequest, "body_incomplete", "the request body ended early or could not be read"}
	errBodyTimeout    = &requestError{fasthttp.StatusRequestTimeout, "request_timeout", "request not received in time"}
	errUpgradeBody    = &requestError{fasthttp.StatusBadRequest, "bad_request", "an Upgrade request may not carry a large or chunked body"}
)

// errBodyOverLimit is what a cappedBody returns past its limit.
var errBodyOverLimit = errors.New("balancer: request body over the limit")

// cappedBody is a client's streamed request body on its way to a backend.
// It stops at limit bytes, and records whether the client side failed, so
// that such a failure is answered as the client's error and never counted
// against the backend.
type cappedBody struct {
	r        io.Reader
	left     int64
	exceeded bool
	readErr  error
}

func (c *cappedBody) Read(p []byte) (int, error) {
	if c.left < 0 {
		c.exceeded = true
		return 0, errBodyOverLimit
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		c.exceeded = true
		return n, errBodyOverLimit
	}
	if err != nil && err != io.EOF {
		c.readErr = err
	}
	return n, err
}

// failure returns the client-side error of the body, or nil.
func (c *cappedBody) failure() *requestError {
	switch {
	case c.r == nil:
		return nil
	case c.exceeded:
		return errBodyTooLarge
	case c.readErr != nil && isTimeout(c.readErr):
		return errBodyTimeout
	case c.readErr != nil:
		return errBodyIncomplete
	}
	return nil
}

var bodyBufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// prepareBody applies the body rules above to the client request: it
// refuses a body announced too large, buffers a small one, or sets up r's
// cappedBody to stream it. It returns the bytes it reserved from the
// buffered-body budget (to give back with releaseBody), or a refusal.
func (lb *Balancer) prepareBody(req *fasthttp.Request, r *Request) (int64, *requestError) {
	if !req.IsBodyStream() {
		return 0, nil
	}
	cl := req.Header.ContentLength()
	if cl > lb.cfg.MaxRequestBodySize {
		return 0, errBodyTooLarge
	}
	upgrade := req.Header.ConnectionUpgrade()
	if cl >= 0 && cl <= lb.cfg.MaxBufferedBody {
		n := int64(cl)
		if lb.buffered.Add(n) <= lb.cfg.BufferedBodyBudget || upgrade {
			return n, lb.bufferBody(req, cl)
		}
		lb.buffered.Add(-n)
	}
	if upgrade {
		return 0, errUpgradeBody
	}
	r.body = cappedBody{r: req.BodyStream(), left: int64(lb.cfg.MaxRequestBodySize)}
	req.SetBodyStream(&r.body, cl)
	return 0, nil
}

// bufferBody reads the client's body of cl bytes whole into req.
func (lb *Balancer) bufferBody(req *fasthttp.Request, cl int) *requestError {
	bb := bodyBufPool.Get().(*bytes.Buffer)
	defer bodyBufPool.Put(bb)
	bb.Reset()
	n, err := io.CopyN(bb, req.BodyStream(), int64(cl))
	switch {
	case err != nil && isTimeout(err):
		return errBodyTimeout
	case err != nil || n != int64(cl):
		return errBodyIncomplete
	}
	req.SetBody(bb.Bytes())
	if bb.Cap() > 1<<20 {
		*bb = bytes.Buffer{} // do not keep a large buffer in the pool
	}
	return nil
}

// releaseBody gives back what prepareBody reserved.
func (lb *Balancer) releaseBody(n int64) {
	if n != 0 {
		lb.buffered.Add(-n)
	}
}

// drain reads and drops what the client has not sent yet of a streamed body
// the backend answered before reading whole (an early 413, say), up to the
// body limit, so that the client, still sending, can read the answer on a
// connection that stays usable. If that fails, the connection is closed
// after the answer.
func (c *cappedBody) drain(ctx *fasthttp.RequestCtx) {
	if c.r == nil {
		return
	}
	if _, err := io.Copy(io.Discard, c); err != nil {
		ctx.SetConnectionClose()
	}
}
