package balancer

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestParseHashKey(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"cookie:sid", true}, {"header:X-Room", true}, {"path:/rooms/", true}, {"path:/", true},
		{"", false}, {"cookie:", false}, {"cookie:a;b", false}, {"header:X Room", false},
		{"path:rooms/", false}, {"path:/rooms", false}, {"query:room", false}, {"sid", false},
	} {
		_, err := parseHashKeySpec(tc.in)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalidConfig)) {
			t.Errorf("parse %q: %v, want ok=%v", tc.in, err, tc.ok)
		}
		if _, err := New(Config{Policy: PolicyHash, HashKey: tc.in}); tc.in != "" && (err == nil) != tc.ok {
			t.Errorf("New with HashKey %q: %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestHashKeyExtract(t *testing.T) {
	for _, tc := range []struct {
		spec, uri, header, cookie, want string
	}{
		{"path:/rooms/", "/rooms/r1", "", "", "r1"},
		{"path:/rooms/", "/rooms/r1/ws", "", "", "r1"},
		{"path:/rooms/", "/rooms/r1/inputs?x=1", "", "", "r1"},
		{"path:/rooms/", "/rooms/r1?x=/y", "", "", "r1"},
		{"path:/rooms/", "/other/r1", "", "", ""},
		{"path:/rooms/", "/rooms/", "", "", ""},
		{"header:X-Room", "/", "abc", "", "abc"},
		{"header:X-Room", "/", "", "", ""},
		{"cookie:sid", "/", "", "s1", "s1"},
	} {
		k, err := parseHashKeySpec(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		var req fasthttp.Request
		req.SetRequestURI(tc.uri)
		if tc.header != "" {
			req.Header.Set("X-Room", tc.header)
		}
		if tc.cookie != "" {
			req.Header.SetCookie("sid", tc.cookie)
		}
		if got := string(k.extract(&req)); got != tc.want {
			t.Errorf("%s on %s: %q, want %q", tc.spec, tc.uri, got, tc.want)
		}
	}
}

// TestHashKeyPathThroughProxy: with path:/rooms/ every request of one room
// (whatever the rest of its path) goes to one backend, and rooms spread.
func TestHashKeyPathThroughProxy(t *testing.T) {
	var cfgs []BackendConfig
	for _, id := range []string{"a", "b", "c"} {
		cfgs = append(cfgs, newTestBackend(t, id, nil).config())
	}
	_, url := startLB(t, Config{Policy: PolicyHash, HashKey: "path:/rooms/", Backends: cfgs})
	c := newClient(t)
	owners := map[string]bool{}
	for room := range 30 {
		var first string
		for i, suffix := range []string{"", "/inputs", "/ws", "?since=3"} {
			resp, err := c.Get(fmt.Sprintf("%s/rooms/room-%d%s", url, room, suffix))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			by := resp.Header.Get("X-Served-By")
			if i == 0 {
				first = by
			} else if by != first {
				t.Fatalf("room %d moved from %s to %s with no load", room, first, by)
			}
		}
		owners[first] = true
	}
	if len(owners) != 3 {
		t.Fatalf("30 rooms landed on %v only", owners)
	}
}
