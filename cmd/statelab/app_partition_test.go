package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/netns"
	"github.com/statelab/statelab/internal/testenv"
)

// TestReplicatedPartitionAcrossHosts runs three `statelab app --store
// replicated` processes, each in its own network namespace (a host of its
// own, internal/netns), cuts one off from the other two (the test, in the
// root namespace, still reaches all three, as a balancer would), and
// shops through both sides: with the default majority quorum the cut-off
// replica answers 503 and is not ready, the others keep serving, and after
// the heal the cart holds every item that was acknowledged. Needs root;
// skips otherwise.
func TestReplicatedPartitionAcrossHosts(t *testing.T) {
	if err := netns.Available(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	bin := testenv.StatelabBinary(t)
	ctx := context.Background()
	b := make([]byte, 1)
	rand.Read(b)
	name := "p" + strings.ToLower(rand.Text()[:5])
	n, err := netns.New(ctx, name, netip.MustParsePrefix(fmt.Sprintf("10.214.%d.0/24", b[0])))
	if err != nil {
		t.Fatalf("netns.New: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	var hosts []*netns.Host
	for _, h := range []string{"r1", "r2", "r3"} {
		host, err := n.AddHost(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, host)
	}
	secret := "partition test secret " + rand.Text()
	var bases []string
	for i, h := range hosts {
		var peers []string
		for j, o := range hosts {
			if j != i {
				peers = append(peers, o.Addr.String()+":7946")
			}
		}
		// Started after the test's Cleanup of the network: stopped before it.
		startProc(t, h.Name, "ip", "netns", "exec", h.Namespace, bin, "app",
			"--listen", h.Addr.String()+":8080", "--id", h.Name, "--store", "replicated", "--secret", secret,
			"--cluster-listen", h.Addr.String()+":7946", "--peers", strings.Join(peers, ","))
		bases = append(bases, "http://"+h.Addr.String()+":8080")
	}
	ready := func(base string) bool {
		code, _ := request(t, "GET", base+"/readyz", "", "")
		return code == http.StatusOK
	}
	for _, base := range bases {
		poll(t, base+" to be ready", 30*time.Second, func() bool { return ready(base) })
	}

	// One shopper; the session cookie goes to whichever replica is asked.
	code, cookie := request(t, "POST", bases[0]+"/api/cart/items", `{"sku":"SKU-0011","qty":1}`, "")
	if code != http.StatusOK || cookie == "" {
		t.Fatalf("first add: %d, cookie %q", code, cookie)
	}
	acked := []string{"SKU-0011"}

	r1, r2, r3 := hosts[0], hosts[1], hosts[2]
	for _, other := range []*netns.Host{r1, r2} {
		if err := n.Cut(ctx, r3, other); err != nil {
			t.Fatal(err)
		}
	}
	poll(t, "the cut-off replica to lose its quorum (/readyz 503)", 20*time.Second, func() bool { return !ready(bases[2]) })
	if !ready(bases[0]) || !ready(bases[1]) {
		t.Fatalf("majority replicas not ready during the partition")
	}
	if code, _ := request(t, "POST", bases[2]+"/api/cart/items", `{"sku":"SKU-0022","qty":1}`, cookie); code != http.StatusServiceUnavailable {
		t.Errorf("add through the cut-off replica: %d, want 503", code)
	}
	poll(t, "an add through the majority", 20*time.Second, func() bool {
		code, _ := request(t, "POST", bases[0]+"/api/cart/items", `{"sku":"SKU-0033","qty":1}`, cookie)
		return code == http.StatusOK
	})
	acked = append(acked, "SKU-0033")

	for _, other := range []*netns.Host{r1, r2} {
		if err := n.Heal(ctx, r3, other); err != nil {
			t.Fatal(err)
		}
	}
	poll(t, "the healed replica to be ready again", 30*time.Second, func() bool { return ready(bases[2]) })
	var items []string
	poll(t, "every replica to show the acknowledged items", 20*time.Second, func() bool {
		for _, base := range bases {
			items = cartSKUs(t, base, cookie)
			for _, sku := range acked {
				if !strings.Contains(strings.Join(items, ","), sku) {
					return false
				}
			}
		}
		return true
	})
	t.Logf("cart after the heal: %v (acknowledged: %v; the add through the cut-off replica was refused)", items, acked)
}

// request sends one request with the session cookie (if any) and returns
// the status and the session cookie the response set, or the one sent.
func request(t *testing.T, method, url, body, cookie string) (int, string) {
	t.Helper()
	resp, _, err := send(http.DefaultClient, method, url, body, cookie)
	if err != nil {
		return 0, cookie
	}
	for _, c := range resp.Cookies() {
		if c.Name == "statelab_session" {
			cookie = c.Name + "=" + c.Value
		}
	}
	return resp.StatusCode, cookie
}

// cartSKUs returns the SKUs of the cart base shows for cookie.
func cartSKUs(t *testing.T, base, cookie string) []string {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/api/cart", nil)
	req.Header.Set("Cookie", cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var cart struct {
		Items []struct {
			SKU string `json:"sku"`
		} `json:"items"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&cart) != nil {
		return nil
	}
	var out []string
	for _, it := range cart.Items {
		out = append(out, it.SKU)
	}
	return out
}
