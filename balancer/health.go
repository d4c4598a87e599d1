package balancer

import (
	"time"

	"github.com/valyala/fasthttp"
)

// Health has two sides, combined in Backend.Available:
//
//   - Active checks: every Config.HealthInterval, GET Config.HealthPath on
//     the backend with Config.HealthTimeout; a 2xx or 3xx passes. Config.Fall
//     consecutive failures mark a healthy backend down, Config.Rise
//     consecutive passes bring it back. Backends start healthy, so traffic
//     flows before the first check.
//   - Passive ejection: Config.EjectAfter consecutive failed attempts
//     (connection error, timeout, 5xx) eject the backend for EjectBase,
//     doubling on each ejection not separated by a success, up to EjectMax.
//
// Panic mode (Config.PanicThreshold) sits above both: when too few backends
// are available, health is ignored rather than refusing everything.

// startHealth starts b's active checker if checks are configured. The caller
// holds lb.mu.
func (lb *Balancer) startHealth(b *Backend) {
	if lb.cfg.HealthPath == "" || lb.cfg.HealthInterval <= 0 {
		return
	}
	lb.wg.Add(1)
	go func() {
		defer lb.wg.Done()
		lb.checkLoop(b)
	}()
}

// checkLoop runs b's active checks until b is removed or the balancer closes.
func (lb *Balancer) checkLoop(b *Backend) {
	t := time.NewTicker(lb.cfg.HealthInterval)
	defer t.Stop()
	var run checkRun
	for {
		select {
		case <-lb.done:
			return
		case <-b.stopc:
			return
		case <-t.C:
		}
		lb.applyCheck(b, lb.check(b), &run)
	}
}

// checkRun counts a backend's consecutive passing or failing checks.
type checkRun struct{ passes, fails int }

// applyCheck records one active check result and moves b up after Rise
// consecutive passes or down after Fall consecutive failures. It reports
// whether b's state changed.
func (lb *Balancer) applyCheck(b *Backend, ok bool, run *checkRun) bool {
	if ok {
		run.passes, run.fails = run.passes+1, 0
		if !b.healthy.Load() && run.passes >= lb.cfg.Rise {
			b.upSince.Store(time.Now().UnixNano()) // slow start begins
			b.healthy.Store(true)
			lb.log.Info("balancer: backend up", "backend", b.id, "passes", run.passes)
			return true
		}
		return false
	}
	run.fails, run.passes = run.fails+1, 0
	if b.healthy.Load() && run.fails >= lb.cfg.Fall {
		b.healthy.Store(false)
		lb.log.Warn("balancer: backend down", "backend", b.id, "fails", run.fails)
		return true
	}
	return false
}

// check runs one active check of b and reports whether it passed.
func (lb *Balancer) check(b *Backend) bool {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(b.url + lb.cfg.HealthPath)
	req.Header.SetMethod(fasthttp.MethodGet)
	req.Header.Set("User-Agent", "statelab-lb-health")
	resp.SkipBody = false
	if err := b.health.DoTimeout(req, resp, lb.cfg.HealthTimeout); err != nil {
		lb.log.Debug("balancer: health check failed", "backend", b.id, "err", err)
		return false
	}
	_ = resp.CloseBodyStream()
	code := resp.StatusCode()
	return code >= 200 && code < 400
}
