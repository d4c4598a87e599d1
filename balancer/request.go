package balancer

import (
	"bytes"
	"errors"
	"strings"

	"github.com/valyala/fasthttp"
)

// A client request is checked before any backend is chosen. A request the
// balancer cannot forward faithfully is the client's error: it gets a 4xx
// (or 505) and never counts against a backend, so no client can eject a
// backend or inflate its error counters with a malformed request. The
// checks, beyond what the HTTP parser already refuses (conflicting
// Content-Length and Transfer-Encoding, bad chunk sizes, control bytes in
// values, header blocks over Config.MaxHeaderBytes):
//
//   - the version is HTTP/1.0 or HTTP/1.1 (505 otherwise);
//   - every header field name is an RFC 9110 token (400 bad_header);
//   - Transfer-Encoding, if present, is exactly "chunked" (400: "identity"
//     and codings the balancer would have to undo are refused), and comes
//     without Content-Length (400: the classic smuggling shape, which the
//     parser would resolve in favour of chunked);
//   - the request has a Host, from its header or an absolute-form target
//     (400 missing_host; HTTP/1.0 clients must send one too);
//   - an absolute-form target (GET http://host/path) names http or https:
//     it is forwarded in origin form with its authority as Host, whatever
//     the scheme, since the scheme of the backend connection is the
//     backend's (400 bad_target for other schemes and authority-form);
//   - the method is not CONNECT: the balancer is no forward proxy (405).

// requestError is a request refused before a backend was chosen.
type requestError struct {
	status    int
	code, msg string
}

func (e *requestError) Error() string { return e.msg }

var (
	errBadVersion    = &requestError{fasthttp.StatusHTTPVersionNotSupported, "http_version_not_supported", "only HTTP/1.0 and HTTP/1.1 are supported"}
	errBadHeader     = &requestError{fasthttp.StatusBadRequest, "bad_header", "invalid header field name"}
	errBadTE         = &requestError{fasthttp.StatusBadRequest, "bad_transfer_encoding", "Transfer-Encoding must be chunked"}
	errBadFraming    = &requestError{fasthttp.StatusBadRequest, "bad_framing", "Content-Length and Transfer-Encoding together"}
	errMissingHost   = &requestError{fasthttp.StatusBadRequest, "missing_host", "the request has no Host header"}
	errBadTarget     = &requestError{fasthttp.StatusBadRequest, "bad_target", "the request target must be a path or an http(s) URL"}
	errConnect       = &requestError{fasthttp.StatusMethodNotAllowed, "method_not_allowed", "CONNECT is not supported"}
	errCannotForward = &requestError{fasthttp.StatusBadRequest, "bad_request", "the request cannot be forwarded"}
)

var (
	strHTTP10 = []byte("HTTP/1.0")
	strHTTP11 = []byte("HTTP/1.1")
	strTE     = []byte("Transfer-Encoding")
	strCL     = []byte("Content-Length")
	strChunk  = []byte("chunked")
)

// checkRequest reports why req cannot be forwarded, or nil.
func checkRequest(req *fasthttp.Request) *requestError {
	h := &req.Header
	if p := h.Protocol(); !bytes.Equal(p, strHTTP11) && !bytes.Equal(p, strHTTP10) {
		return errBadVersion
	}
	if h.IsConnect() {
		return errConnect
	}
	if e := checkRawHeaders(h.RawHeaders()); e != nil {
		return e
	}
	target := h.RequestURI()
	if len(target) > 0 && target[0] != '/' && !(len(target) == 1 && target[0] == '*') {
		// Absolute form: the parsed URI takes its host from the target.
		scheme := req.URI().Scheme()
		if (!bytes.Equal(scheme, []byte("http")) && !bytes.Equal(scheme, []byte("https"))) ||
			!bytes.Contains(target, []byte("://")) || len(req.URI().Host()) == 0 {
			return errBadTarget
		}
		h.SetHostBytes(req.URI().Host())
	}
	if len(h.Host()) == 0 {
		return errMissingHost
	}
	return nil
}

// checkRawHeaders checks the header block as the client sent it: field
// names must be tokens, and Transfer-Encoding must be "chunked" (the parser
// silently drops "identity", which an intermediary must not do).
func checkRawHeaders(raw []byte) *requestError {
	var te, cl bool
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return errBadHeader
		}
		name := line[:colon]
		for _, c := range name {
			if !isTokenByte(c) {
				return errBadHeader
			}
		}
		switch {
		case len(name) == len(strTE) && bytes.EqualFold(name, strTE):
			if !bytes.EqualFold(bytes.Trim(line[colon+1:], " \t"), strChunk) {
				return errBadTE
			}
			te = true
		case len(name) == len(strCL) && bytes.EqualFold(name, strCL):
			cl = true
		}
	}
	if te && cl {
		return errBadFraming
	}
	return nil
}

// isTokenByte reports whether c may appear in an RFC 9110 token.
func isTokenByte(c byte) bool {
	return tokenTable[c]
}

var tokenTable = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// clientFault reports whether an error from a backend client was caused by
// the request itself rather than by the backend; checkRequest should have
// refused such requests, so this is a safety net that keeps them from
// marking a backend as failed.
func clientFault(err error) bool {
	var re *requestError
	var be *bodySourceError
	return errors.As(err, &re) || errors.As(err, &be) || errors.Is(err, fasthttp.ErrHostClientRedirectToDifferentScheme) ||
		bytes.Contains([]byte(err.Error()), []byte("missing required host header"))
}

// bodySourceError marks a request write that failed because the request
// body could not be read from the client, not because of the backend.
type bodySourceError struct{ err error }

func (e *bodySourceError) Error() string { return "reading the request body: " + e.err.Error() }
func (e *bodySourceError) Unwrap() error { return e.err }

var errDenied = &requestError{fasthttp.StatusNotFound, "not_found", "no such path"}

// denied reports whether path is under one of Config.DenyPaths.
func (lb *Balancer) denied(path []byte) bool {
	for _, p := range lb.cfg.DenyPaths {
		p = strings.TrimSuffix(p, "/")
		if len(path) >= len(p) && string(path[:len(p)]) == p && (len(path) == len(p) || path[len(p)] == '/') {
			return true
		}
	}
	return false
}

func validDenyPaths(paths []string) bool {
	for _, p := range paths {
		if !strings.HasPrefix(p, "/") {
			return false
		}
	}
	return true
}
