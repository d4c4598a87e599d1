package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/statelab/statelab/balancer"
)

// startBalancer launches `statelab lb` in front of reps and waits until its
// admin API lists them all healthy.
func (c *Cluster) startBalancer(ctx context.Context, reps []*replica) error {
	if err := c.balancerAddrs(); err != nil {
		return err
	}
	if len(reps) == 0 {
		return fmt.Errorf("%w: a cluster needs at least one replica", ErrBadConfig)
	}
	for attempt := 1; ; attempt++ {
		p, err := c.launchBalancer(reps)
		if err != nil {
			return err
		}
		err = c.poll(ctx, p, c.adminURL+"/admin/backends")
		if err == nil {
			break
		}
		if attempt >= portAttempts || !lostPort(p) {
			return fmt.Errorf("cluster: balancer did not become ready: %w", err)
		}
		if err := c.moveBalancer(); err != nil {
			return err
		}
		c.log.Info("cluster: balancer lost its port before binding it, starting it again", "attempt", attempt+1)
	}
	var last []balancer.BackendStatus
	err := c.waitBackends(ctx, func(bs []balancer.BackendStatus) bool {
		last = bs
		healthy := 0
		for _, b := range bs {
			if b.Healthy {
				healthy++
			}
		}
		want := len(reps) + c.serviceCount()
		return len(bs) == want && healthy == want
	})
	if err != nil {
		return err
	}
	// Backends given on the command line get ids chosen by the balancer:
	// remember which is which by URL, so Remove can name them.
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range reps {
		for _, b := range last {
			if sameURL(b.URL, r.url()) {
				r.lbID = b.ID
				r.inLB = true
			}
		}
		if r.lbID == "" {
			return fmt.Errorf("cluster: balancer does not list replica %s (%s) among %+v", r.id, r.url(), last)
		}
	}
	return nil
}

// launchBalancer starts the balancer's process in front of reps.
func (c *Cluster) launchBalancer(reps []*replica) (*process, error) {
	args := []string{"lb",
		"--listen", strings.TrimPrefix(c.lbURL, "http://"),
		"--admin", strings.TrimPrefix(c.adminURL, "http://"),
		"--policy", c.spec.Policy,
		// Readiness, not liveness: a replica that is shutting down or cannot
		// reach its store stops getting requests (the balancer's panic mode
		// still spreads load when none is ready).
		"--health-path", "/readyz",
		"--health-interval", c.cfg.HealthInterval.String(),
	}
	args = append(args, c.gameBalancerArgs()...)
	if c.cfg.SlowStart > 0 {
		args = append(args, "--slow-start", c.cfg.SlowStart.String())
	}
	for _, r := range reps {
		args = append(args, "--backend", r.id+"="+r.url())
	}
	args = append(args, c.servicePoolArgs()...)
	p, err := startProcess("lb", c.cfg.Binary, args, c.secretEnv(), filepath.Join(c.dir, "lb.log"), func(p *process, expected bool, err error) {
		if !expected {
			c.event(EventCrash, "", fmt.Sprintf("balancer crashed: %s; last log lines: %s", exitDescription(err), p.tail(600)))
		}
	})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.lb = p
	c.mu.Unlock()
	return p, nil
}

// moveBalancer gives the balancer a new admin address and, unless the cart
// replicas were already told it (Config.Services), a new listen address.
func (c *Cluster) moveBalancer() error {
	admin, err := freePort()
	if err != nil {
		return err
	}
	c.adminURL = "http://127.0.0.1:" + strconv.Itoa(admin)
	if c.cfg.Services != nil {
		return nil
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	c.lbURL = "http://127.0.0.1:" + strconv.Itoa(port)
	return nil
}

// balancerAddrs picks the balancer's listen and admin addresses, once:
// the microservice shape needs the balancer's URL before the balancer
// starts, to tell the carts where pricing and the catalog are.
func (c *Cluster) balancerAddrs() error {
	if c.lbURL != "" {
		return nil
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	admin, err := freePort()
	if err != nil {
		return err
	}
	c.lbURL = "http://127.0.0.1:" + strconv.Itoa(port)
	c.adminURL = "http://127.0.0.1:" + strconv.Itoa(admin)
	return nil
}

// sameURL compares backend URLs ignoring a trailing slash.
func sameURL(a, b string) bool { return strings.TrimSuffix(a, "/") == strings.TrimSuffix(b, "/") }

// Backends returns the balancer's backends as its admin API lists them.
func (c *Cluster) Backends(ctx context.Context) ([]balancer.BackendStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.adminURL+"/admin/backends", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cluster: list backends: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("cluster: list backends: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	var bs []balancer.BackendStatus
	if err := json.NewDecoder(resp.Body).Decode(&bs); err != nil {
		return nil, fmt.Errorf("cluster: list backends: %w", err)
	}
	return bs, nil
}

// adminAdd adds replica r to the balancer under its id.
func (c *Cluster) adminAdd(ctx context.Context, r *replica) error {
	return c.adminPost(ctx, r, balancer.BackendConfig{ID: r.id, URL: r.url(), Weight: 1})
}

// adminPost adds replica r to the balancer as bc describes (its pool).
func (c *Cluster) adminPost(ctx context.Context, r *replica, bc balancer.BackendConfig) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	body, _ := json.Marshal(bc)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.adminURL+"/admin/backends", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("cluster: add %s to the balancer: %w", r.id, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("cluster: add %s to the balancer: %s: %s", r.id, resp.Status, bytes.TrimSpace(b))
	}
	var added balancer.BackendStatus
	if err := json.Unmarshal(b, &added); err != nil || added.ID == "" {
		added.ID = r.id
	}
	c.mu.Lock()
	r.inLB = true
	r.lbID = added.ID
	c.mu.Unlock()
	return nil
}

// adminDelete asks the balancer to drain and remove backend id.
func (c *Cluster) adminDelete(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, c.adminURL+"/admin/backends/"+id, nil)
	if err != nil {
		return err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("cluster: remove %s from the balancer: %w", id, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusNotFound {
		return fmt.Errorf("cluster: remove %s from the balancer: %s: %s", id, resp.Status, bytes.TrimSpace(b))
	}
	return nil
}

// waitBackends polls the admin API until ok holds for its backend list.
func (c *Cluster) waitBackends(ctx context.Context, ok func([]balancer.BackendStatus) bool) error {
	ctx, cancel := context.WithTimeout(ctx, c.readyTimeout())
	defer cancel()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	var last []balancer.BackendStatus
	for {
		bs, err := c.Backends(ctx)
		if err == nil {
			last = bs
			if ok(bs) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: balancer backends did not settle (last: %+v): %w", last, ctx.Err())
		case <-tick.C:
		}
	}
}
