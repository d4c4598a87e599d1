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
//   - Passive ejection (outlier detection): Config.EjectAfter consecutive
//     failed attempts (connection error, timeout, and a 5xx response — or
//     only 502/503/504 with Config.EjectOn "gateway") eject the backend for
//     EjectBase × 2^(level-1), up to EjectMax; the level is one more than
//     at the last ejection, minus one for every EjectMax since that ejection
//     ended, so repeat offenders stay out longer. At most
//     Config.MaxEjectedShare of a pool's backends (at least one) are
//     ejected at once. With Config.EjectLatency, a response slower than
//     that counts as a failure too.
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
		res := lb.check(b, run.instance)
		moved := lb.applyCheck(b, res.ok, &run)
		lb.noteIdentity(b, res, moved, &run)
	}
}

// checkRun counts a backend's consecutive passing or failing checks and
// remembers the instance identity its last passing check named.
type checkRun struct {
	passes, fails int
	instance      string
}

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

// check runs one active check of b; known is the instance identity the
// last passing check named.
func (lb *Balancer) check(b *Backend, known string) checkResult {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(b.url + lb.cfg.HealthPath)
	req.Header.SetMethod(fasthttp.MethodGet)
	req.Header.Set("User-Agent", "statelab-lb-health")
	resp.SkipBody = false
	err := b.health.DoTimeout(req, resp, lb.cfg.HealthTimeout)
	if err != nil {
		lb.log.Debug("balancer: health check failed", "backend", b.id, "err", err)
	} else {
		_ = resp.CloseBodyStream()
	}
	return readCheck(err, resp, known)
}

// The values of Config.EjectOn.
const (
	// Eject5xx counts every 5xx response as a failure.
	Eject5xx = "5xx"
	// EjectGateway counts only 502, 503 and 504 responses (with connection
	// errors and timeouts) as failures: an application's own 500s do not
	// eject it.
	EjectGateway = "gateway"
)

// recordStatus counts a response with status code, whose header took took
// to come, towards b's passive health: a failure or a success, by
// Config.EjectOn and Config.EjectLatency.
func (lb *Balancer) recordStatus(b *Backend, now int64, code int, took time.Duration) {
	fail := code >= 500
	if lb.cfg.EjectOn == EjectGateway {
		fail = retryStatus(code)
	}
	if lb.cfg.EjectLatency > 0 && took > lb.cfg.EjectLatency {
		fail = true
	}
	if fail {
		lb.failed(b, now, nil)
	} else {
		b.recordSuccess(now)
	}
	lb.noteAnswer(b)
}

// mayEject reports whether b may be ejected now without taking the share
// of its pool's non-draining backends that are ejected above
// Config.MaxEjectedShare (one may always be). The caller holds lb.ejectMu.
func (lb *Balancer) mayEject(b *Backend, now int64) bool {
	if lb.cfg.MaxEjectedShare < 0 {
		return true
	}
	g := lb.groups[b.pool]
	if g == nil {
		return true
	}
	n, out := 0, 0
	for _, x := range g.pool.Load().backends {
		if x.draining.Load() {
			continue
		}
		n++
		if x != b && now < x.ejectedUntil.Load() {
			out++
		}
	}
	if out >= max(1, int(lb.cfg.MaxEjectedShare*float64(n))) {
		lb.ejectSkipped.Add(1)
		lb.log.Debug("balancer: ejection skipped, too many ejected", "backend", b.id, "ejected", out, "of", n)
		return false
	}
	return true
}
