package cluster

import (
	"context"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/strategy"
)

// quote posts one quote through the balancer and returns the status and
// the replica that served it.
func quote(client *http.Client, base string) (int, string) {
	return send(client, http.MethodPost, base+"/api/quote", `{"items":[{"sku":"SKU-0001","qty":2}]}`)
}

// TestServicesShape starts the microservice shape and checks the routes
// (quotes to pricing, the catalog to the catalog, carts to the carts),
// that scaling pricing leaves the carts alone, and that rolling every
// pricing replica under a stream of quotes fails none of them.
func TestServicesShape(t *testing.T) {
	c := startCluster(t, Config{Strategy: strategy.Sticky, Replicas: 2, Services: &Services{Pricing: 2}})
	if !c.HasServices() || len(c.ServiceReplicas(PoolPricing)) != 2 || len(c.ServiceReplicas(PoolCatalog)) != 1 {
		t.Fatalf("services: pricing %+v catalog %+v", c.ServiceReplicas(PoolPricing), c.ServiceReplicas(PoolCatalog))
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	if code, by := quote(client, c.URL()); code != 200 || (by != "p1" && by != "p2") {
		t.Fatalf("quote: %d served by %q, want 200 from p1 or p2", code, by)
	}
	if code, by := get(t, client, c.URL()+"/api/catalog?limit=1"); code != 200 || by != "c1" {
		t.Fatalf("catalog: %d served by %q, want 200 from c1", code, by)
	}
	if code, by := get(t, client, c.URL()+"/api/cart"); code != 200 || (by != "r1" && by != "r2") {
		t.Fatalf("cart: %d served by %q, want a cart replica", code, by)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	added, err := c.AddService(ctx, PoolPricing)
	if err != nil {
		t.Fatal(err)
	}
	if added.ID != "p3" || !added.InBalancer || len(c.Replicas()) != 2 {
		t.Fatalf("added %+v, carts %d: want p3 in the balancer and the 2 carts untouched", added, len(c.Replicas()))
	}
	seen := map[string]bool{}
	for i := 0; i < 30; i++ {
		_, by := quote(client, c.URL())
		seen[by] = true
	}
	if !seen["p3"] {
		t.Errorf("30 round-robin quotes never reached the added p3: %v", seen)
	}

	var sent, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &http.Client{}
			for {
				select {
				case <-stop:
					return
				default:
				}
				if code, _ := quote(cl, c.URL()); code != 200 {
					failed.Add(1)
				}
				sent.Add(1)
			}
		}()
	}
	for _, id := range []string{"p1", "p2", "p3"} {
		if err := c.RestartService(ctx, id); err != nil {
			t.Errorf("restart %s: %v", id, err)
		}
	}
	close(stop)
	wg.Wait()
	if sent.Load() == 0 || failed.Load() != 0 {
		t.Errorf("rolling pricing under load: %d of %d quotes failed, want 0 of some", failed.Load(), sent.Load())
	}
	for _, r := range c.Replicas() {
		if r.Starts != 1 {
			t.Errorf("cart %s started %d times during the pricing deploy, want 1", r.ID, r.Starts)
		}
	}
	if _, err := c.StartSpare(ctx, "carts"); err == nil {
		t.Error("StartSpare of an unknown pool succeeded")
	}
}

// TestMonolithHasNoServices: the service operations refuse a monolith.
func TestMonolithHasNoServices(t *testing.T) {
	c := startCluster(t, Config{Strategy: strategy.Client, Replicas: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.AddService(ctx, PoolPricing); !errors.Is(err, ErrNoServices) {
		t.Errorf("AddService on a monolith: %v, want ErrNoServices", err)
	}
	if err := c.RestartService(ctx, "p1"); !errors.Is(err, ErrNoServices) {
		t.Errorf("RestartService on a monolith: %v, want ErrNoServices", err)
	}
	if code, by := quote(&http.Client{}, c.URL()); code != 200 || by != "r1" {
		t.Errorf("monolith quote: %d from %q, want 200 from the cart r1", code, by)
	}
}
