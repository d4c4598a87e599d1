package balancer

import (
	"bytes"
)

// The epoll engine (Config.Engine = EngineEpoll, Linux only) serves plain
// HTTP/1.1 keep-alive traffic from one event loop on a locked OS thread:
// no goroutine per connection, every socket read once per readiness event,
// no read buffer held by an idle connection. It makes the same decisions as
// the fasthttp path (the pools, the selection policies, health, outlier
// ejection, slow start, retries and their budget, metrics) by calling the
// same code. A connection whose request it does not handle itself is handed
// to the fasthttp server for the rest of its life: see engineHandles.

// Engine names for Config.Engine.
const (
	// EngineFastHTTP serves every request with fasthttp, a goroutine per
	// connection. The default.
	EngineFastHTTP = "fasthttp"
	// EngineEpoll serves plain HTTP/1.1 from an epoll event loop (Linux),
	// handing the connections it cannot serve to fasthttp.
	EngineEpoll = "epoll"
)

// reqHead is what the engine needs from a request head. Slices point into
// the connection's read buffer.
type reqHead struct {
	method, target, host   []byte
	cookie, forwardedFor   []byte
	headEnd, contentLength int
	closeConn              bool
	headers                []byte // the header lines after the request line, each ending in CRLF
}

var (
	strGET  = []byte("GET")
	strHEAD = []byte("HEAD")
)

// parseReqHead parses the request head at the start of p. It returns
// complete = false when the head has not fully arrived, and ok = false when
// the engine does not serve this request itself (fasthttp will: it answers
// malformed requests, HTTP/1.0, chunked bodies, upgrades, Expect,
// hop-by-hop headers, absolute targets and client X-Forwarded-Proto or
// -Host headers).
func parseReqHead(p []byte) (h reqHead, complete, ok bool) {
	end := bytes.Index(p, []byte("\r\n\r\n"))
	if end < 0 {
		return h, false, true
	}
	h.headEnd = end + 4
	line, rest, _ := bytes.Cut(p[:end+2], []byte("\r\n"))
	sp1 := bytes.IndexByte(line, ' ')
	sp2 := bytes.LastIndexByte(line, ' ')
	if sp1 <= 0 || sp2 <= sp1+1 || !bytes.Equal(line[sp2+1:], strHTTP11) {
		return h, true, false
	}
	h.method, h.target = line[:sp1], line[sp1+1:sp2]
	if h.target[0] != '/' || bytes.Equal(h.method, []byte("CONNECT")) {
		return h, true, false
	}
	h.headers = rest
	h.contentLength = 0
	for len(rest) > 0 {
		i := bytes.Index(rest, []byte("\r\n"))
		if i < 0 {
			return h, true, false
		}
		hl := rest[:i]
		rest = rest[i+2:]
		colon := bytes.IndexByte(hl, ':')
		if colon <= 0 {
			return h, true, false
		}
		name, val := hl[:colon], bytes.Trim(hl[colon+1:], " \t")
		for _, c := range name {
			if !isTokenByte(c) {
				return h, true, false
			}
		}
		if !h.header(name, val) {
			return h, true, false
		}
	}
	return h, true, len(h.host) > 0 && h.contentLength >= 0
}

// header records one request header, or reports false for one the engine
// leaves to fasthttp.
func (h *reqHead) header(name, val []byte) bool {
	switch len(name) {
	case 4:
		if bytes.EqualFold(name, []byte("Host")) {
			if h.host != nil {
				return false
			}
			h.host = val
		}
	case 6:
		if bytes.EqualFold(name, []byte("Cookie")) {
			if h.cookie != nil {
				return false // several Cookie lines: fasthttp joins them
			}
			h.cookie = val
		} else if bytes.EqualFold(name, []byte("Expect")) {
			return false
		}
	case 10:
		if bytes.EqualFold(name, []byte("Connection")) {
			if !bytes.EqualFold(val, []byte("close")) && !bytes.EqualFold(val, []byte("keep-alive")) {
				return false // it names headers to strip, or an upgrade
			}
			h.closeConn = h.closeConn || bytes.EqualFold(val, []byte("close"))
		}
	case 14:
		if bytes.EqualFold(name, strCL) {
			n, ok := parseLength(val)
			if h.contentLength != 0 || !ok {
				return false
			}
			h.contentLength = n
		}
	case 15:
		if bytes.EqualFold(name, hdrForwardedFor) {
			if h.forwardedFor != nil {
				return false
			}
			h.forwardedFor = val
		}
	case 16:
		if bytes.EqualFold(name, hdrForwardedHost) {
			return false
		}
	case 17:
		if bytes.EqualFold(name, hdrForwardedProto) || bytes.EqualFold(name, strTE) {
			return false
		}
	}
	return !isHopHeader(name)
}

// parseLength parses a Content-Length value: decimal digits only, not
// empty, at most about 1<<44.
func parseLength(val []byte) (int, bool) {
	n := 0
	for _, c := range val {
		if c < '0' || c > '9' || n > 1<<40 {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, len(val) > 0
}

// cookieValue returns the value of the cookie name in a Cookie header.
func cookieValue(header []byte, name string) []byte {
	for len(header) > 0 {
		var pair []byte
		pair, header, _ = bytes.Cut(header, []byte(";"))
		k, v, found := bytes.Cut(bytes.TrimSpace(pair), []byte("="))
		if found && string(k) == name {
			return bytes.Trim(v, `"`)
		}
	}
	return nil
}

// headerValue returns the value of the first header called name in lines.
func headerValue(lines []byte, name string) []byte {
	for len(lines) > 0 {
		var hl []byte
		hl, lines, _ = bytes.Cut(lines, []byte("\r\n"))
		k, v, _ := bytes.Cut(hl, []byte(":"))
		if len(k) == len(name) && bytes.EqualFold(k, []byte(name)) {
			return bytes.Trim(v, " \t")
		}
	}
	return nil
}

// engineKey is the hash key of a request the engine serves, as
// hashKeySpec.extract finds it in a fasthttp request.
func (k hashKeySpec) engineKey(h *reqHead) []byte {
	switch k.source {
	case "cookie":
		return cookieValue(h.cookie, k.name)
	case "header":
		return headerValue(h.headers, k.name)
	default:
		return k.pathSegment(h.target)
	}
}

// appendForwardedRequest appends the request to send to a backend: the
// client's head with X-Forwarded-For extended and X-Forwarded-Proto and
// -Host set, as setForwarded does.
func appendForwardedRequest(dst, raw []byte, h *reqHead, clientIP []byte) []byte {
	dst = appendHeadExcept(dst, raw, h.headEnd, isReplacedRequestHeader)
	dst = append(dst, "X-Forwarded-For: "...)
	if len(h.forwardedFor) > 0 {
		dst = append(append(dst, h.forwardedFor...), ", "...)
	}
	dst = append(append(dst, clientIP...), "\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: "...)
	dst = append(append(dst, h.host...), "\r\n\r\n"...)
	return append(dst, raw[h.headEnd:h.headEnd+h.contentLength]...)
}

// isReplacedRequestHeader reports whether a request header called k is
// left out of what a backend gets: X-Forwarded-For (sent extended) and
// Connection (about the client's connection only).
func isReplacedRequestHeader(k []byte) bool {
	return len(k) == len(hdrForwardedFor) && bytes.EqualFold(k, hdrForwardedFor) ||
		len(k) == 10 && bytes.EqualFold(k, []byte("Connection"))
}

// appendHeadExcept appends the start line and the header lines of the
// message head at the start of raw (headEnd: just past its blank line),
// leaving out the headers whose name skip reports, and not the blank line.
func appendHeadExcept(dst, raw []byte, headEnd int, skip func(name []byte) bool) []byte {
	lineEnd := bytes.Index(raw, []byte("\r\n")) + 2
	dst = append(dst, raw[:lineEnd]...)
	for lines := raw[lineEnd : headEnd-2]; len(lines) > 0; {
		var hl []byte
		hl, lines, _ = bytes.Cut(lines, []byte("\r\n"))
		if k, _, _ := bytes.Cut(hl, []byte(":")); !skip(k) {
			dst = append(append(dst, hl...), "\r\n"...)
		}
	}
	return dst
}

// respHead is what the engine needs from a backend's response head.
type respHead struct {
	code, headEnd int
	contentLength int // -1: none
	chunked       bool
	closeConn     bool
}

// parseRespHead parses the response head at the start of p (complete =
// false: not all there yet; ok = false: malformed).
func parseRespHead(p []byte) (h respHead, complete, ok bool) {
	end := bytes.Index(p, []byte("\r\n\r\n"))
	if end < 0 {
		return h, false, true
	}
	h.headEnd, h.contentLength = end+4, -1
	line, rest, _ := bytes.Cut(p[:end+2], []byte("\r\n"))
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return h, true, false
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return h, true, false
		}
		h.code = h.code*10 + int(c-'0')
	}
	if line[7] == '0' {
		h.closeConn = true
	}
	for len(rest) > 0 {
		var hl []byte
		hl, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, val, found := bytes.Cut(hl, []byte(":"))
		if !found {
			return h, true, false
		}
		val = bytes.Trim(val, " \t")
		switch {
		case bytes.EqualFold(name, strCL):
			n, ok := parseLength(val)
			if !ok || h.contentLength >= 0 && h.contentLength != n {
				return h, true, false
			}
			h.contentLength = n
		case bytes.EqualFold(name, strTE):
			if !bytes.EqualFold(val, strChunk) {
				return h, true, false
			}
			h.chunked = true
		case bytes.EqualFold(name, []byte("Connection")):
			h.closeConn = h.closeConn || bytes.EqualFold(val, []byte("close"))
		}
	}
	if h.chunked {
		h.contentLength = -1
	}
	return h, true, h.code >= 200
}

// appendResponseHead appends the head to send to the client: the backend's
// without Connection and hop-by-hop headers (Transfer-Encoding stays: the
// engine relays chunked bodies as they are), plus cookie (a Set-Cookie
// line, if any) and Connection: close when the client asked for it.
func appendResponseHead(dst, raw []byte, h *respHead, cookie []byte, closeConn bool) []byte {
	dst = appendHeadExcept(dst, raw, h.headEnd, isResponseHop)
	dst = append(dst, cookie...)
	if closeConn {
		dst = append(dst, "Connection: close\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// isResponseHop reports whether a response header called k stays between
// the backend and the engine.
func isResponseHop(k []byte) bool {
	return bytes.EqualFold(k, []byte("Connection")) || isHopHeader(k)
}

// isHopHeader reports whether k is one of hopHeaders.
func isHopHeader(k []byte) bool {
	for _, h := range hopHeaders {
		if len(h) == len(k) && bytes.EqualFold(k, []byte(h)) {
			return true
		}
	}
	return false
}

// chunkScanner follows a chunked body through the bytes relayed, to find
// where it ends.
type chunkScanner struct {
	state   int // 0 size line, 1 data, 2 CRLF after data, 3 trailer line
	left    int // data bytes left in the chunk
	size    int
	sizeEnd bool // the size line's digits have ended (extension or CR)
	lineN   int  // bytes other than CR on the current trailer line
}

// scan consumes p and returns how many bytes belong to the body (the rest,
// if any, follows it), whether the body ended, and false if it is
// malformed.
func (s *chunkScanner) scan(p []byte) (n int, done, ok bool) {
	for n < len(p) {
		if s.state == 1 {
			k := min(s.left, len(p)-n)
			n += k
			s.left -= k
			if s.left == 0 {
				s.state = 2
			}
			continue
		}
		c := p[n]
		n++
		if c != '\n' {
			switch {
			case s.state == 0 && !s.sizeEnd:
				switch {
				case c >= '0' && c <= '9':
					s.size = s.size*16 + int(c-'0')
				case c|0x20 >= 'a' && c|0x20 <= 'f':
					s.size = s.size*16 + int(c|0x20-'a') + 10
				default:
					s.sizeEnd = true
				}
				if s.size > 1<<40 {
					return n, false, false
				}
			case s.state == 3 && c != '\r':
				s.lineN++
			}
			continue
		}
		switch s.state {
		case 0:
			if s.size == 0 {
				s.state, s.lineN = 3, 0
			} else {
				s.state, s.left = 1, s.size
			}
			s.size, s.sizeEnd = 0, false
		case 2:
			s.state = 0
		case 3:
			if s.lineN == 0 {
				*s = chunkScanner{}
				return n, true, true
			}
			s.lineN = 0
		}
	}
	return n, false, true
}
