package play

import (
	"net/http"
	"testing"
)

// TestRebindingControlsRefused: a page whose DNS name was rebound to the
// playground's address is same-origin with it (Host and Origin both the
// attacker's name); only the Host tells, and it must be refused. Before
// the fix this shape killed a replica.
func TestRebindingControlsRefused(t *testing.T) {
	ts := newTestServer(t, "sticky")
	for _, path := range []string{"/play/api/replicas/r1/kill", "/play/api/state"} {
		method := "POST"
		if path == "/play/api/state" {
			method = "GET"
		}
		req, err := http.NewRequest(method, ts.http.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "evil:8080"
		req.Header.Set("Origin", "http://evil:8080")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s %s with a rebound Host: status %d, want 403", method, path, resp.StatusCode)
		}
	}
	if calls := ts.starter.last().Calls(); len(calls) != 0 {
		t.Fatalf("a rebinding request reached the cluster: %v", calls)
	}
}
