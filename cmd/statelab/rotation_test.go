package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAppReplicationSecretRotation: --old-secret works for --store
// replicated. A replica at step 1 of the rotation (--secret OLD
// --old-secret NEW) and one at step 2 (--secret NEW --old-secret OLD) form
// one cluster: the second joins, becomes ready and reads the cart written
// through the first. Before, --old-secret was refused for replicated.
func TestAppReplicationSecretRotation(t *testing.T) {
	const oldKey, newKey = "old-replication-key-0123456789", "new-replication-key-0123456789"
	a, aLog, _ := startApp(t, "--store", "replicated", "--id", "a", "--cluster-listen", "127.0.0.1:0", "--secret", oldKey, "--old-secret", newKey)
	m := clusterAddr.FindStringSubmatch(aLog.String())
	if m == nil {
		t.Fatalf("replica a did not log its cluster address: %s", aLog.String())
	}
	b, _, _ := startApp(t, "--store", "replicated", "--id", "b", "--cluster-listen", "127.0.0.1:0", "--peers", m[1], "--secret", newKey, "--old-secret", oldKey)
	poll(t, "replica b to join a and be ready", 20*time.Second, func() bool {
		resp, err := http.Get(b + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	req, _ := http.NewRequest("POST", a+"/api/cart/items", strings.NewReader(`{"sku":"SKU-0001","qty":3}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(resp.Cookies()) != 1 {
		t.Fatalf("add through a: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	get, _ := http.NewRequest("GET", b+"/api/cart", nil)
	get.AddCookie(resp.Cookies()[0])
	resp, err = http.DefaultClient.Do(get)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"qty":3`) {
		t.Fatalf("cart through b: %d %s, want the 3 items written through a", resp.StatusCode, body)
	}
}
