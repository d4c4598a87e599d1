package balancer

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/valyala/fasthttp"
)

// hashKeySpec is what the hash policy hashes, parsed from Config.HashKey.
type hashKeySpec struct {
	source string // "cookie", "header" or "path"
	name   string // cookie or header name, or path prefix
}

// parseHashKeySpec parses "cookie:NAME", "header:NAME" or "path:/PREFIX/".
func parseHashKeySpec(s string) (hashKeySpec, error) {
	source, name, _ := strings.Cut(s, ":")
	k := hashKeySpec{source: source, name: name}
	switch {
	case source == "cookie" && validCookieName(name):
	case source == "header" && validHeaderName(name):
	case source == "path" && strings.HasPrefix(name, "/") && strings.HasSuffix(name, "/"):
	default:
		return hashKeySpec{}, fmt.Errorf("%w: hash key %q: want cookie:NAME, header:NAME or path:/PREFIX/", ErrInvalidConfig, s)
	}
	return k, nil
}

// extract returns the key of the request, or nil when it has none.
func (k hashKeySpec) extract(req *fasthttp.Request) []byte {
	switch k.source {
	case "cookie":
		return req.Header.Cookie(k.name)
	case "header":
		return req.Header.Peek(k.name)
	default: // path: the segment after the prefix
		return k.pathSegment(req.URI().PathOriginal())
	}
}

// pathSegment returns the path segment of target after the path prefix k.name.
func (k hashKeySpec) pathSegment(target []byte) []byte {
	p := target
	if q := bytes.IndexByte(p, '?'); q >= 0 {
		p = p[:q]
	}
	rest, ok := bytes.CutPrefix(p, []byte(k.name))
	if !ok {
		return nil
	}
	if i := bytes.IndexByte(rest, '/'); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return s != ""
}
