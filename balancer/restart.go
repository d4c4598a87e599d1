package balancer

import (
	"errors"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// A backend that restarts faster than its active checks notice never looks
// down, yet it comes back with cold caches and empty pools like one that
// was down for minutes. Two signals tell the balancer it restarted, and
// either starts its slow start (Config.SlowStart) as a down → up would:
//
//   - Identity: a backend may name its process instance in the
//     InstanceHeader of its health-check answers (every statelab app sends
//     a random boot id there). A passing check whose value differs from the
//     previous passing check's is a restart. A backend that does not send
//     the header is judged by its checks alone.
//   - Refused connections: a connection to the backend refused (by an
//     active check or a proxied request) means nothing listened on its
//     port, so the next answer it gives comes from a process that started
//     since. Connection resets are not taken as a sign: servers reset
//     connections for ordinary reasons, such as closing an idle keep-alive
//     connection the balancer was about to use.

// InstanceHeader is the response header in which a backend names its
// process instance on its health-check path: any value that stays the same
// for the life of one process and changes when it restarts (a random boot
// id, a start time). A change between two passing active checks makes the
// balancer treat the backend as restarted and begin its slow start.
const InstanceHeader = "X-Statelab-Instance"

// checkResult is the outcome of one active check.
type checkResult struct {
	ok       bool   // 2xx or 3xx
	refused  bool   // the connection was refused: nothing listened
	instance string // the InstanceHeader value of a passing answer ("": none)
}

// connRefused reports whether err is a refused connection.
func connRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// noteIdentity applies the restart signals of one active check of b after
// applyCheck did its part (moved reports whether it changed b's state): a
// passing check with a new instance identity, or the first passing check
// after a refused connection, restarts b's slow start.
func (lb *Balancer) noteIdentity(b *Backend, res checkResult, moved bool, run *checkRun) {
	if !res.ok {
		if res.refused {
			b.sawRefused.Store(true)
		}
		return
	}
	changed := res.instance != "" && run.instance != "" && res.instance != run.instance
	if res.instance != "" {
		run.instance = res.instance
	}
	refused := b.takeRefused()
	switch {
	case moved || !b.healthy.Load():
		// Coming up (or still down): applyCheck starts the slow start.
	case changed:
		lb.restarted(b, "instance changed")
	case refused:
		lb.restarted(b, "connection refused before")
	}
}

// noteAnswer is called for every proxied answer from b: the first one after
// a refused connection restarts b's slow start. It costs one atomic load
// when nothing was refused.
func (lb *Balancer) noteAnswer(b *Backend) {
	if b.takeRefused() {
		lb.restarted(b, "connection refused before")
	}
}

// takeRefused reports and clears b's refused-connection mark; the load
// first keeps the common case (nothing refused) to one atomic read.
func (b *Backend) takeRefused() bool {
	return b.sawRefused.Load() && b.sawRefused.Swap(false)
}

// restarted counts a restart of b and begins its slow start now (which
// matters only with Config.SlowStart).
func (lb *Balancer) restarted(b *Backend, why string) {
	b.upSince.Store(time.Now().UnixNano())
	b.restarts.Add(1)
	lb.log.Info("balancer: backend restarted, slow start begins", "backend", b.id, "sign", why)
}

// readCheck turns a finished active check into a checkResult; known is the
// instance identity seen last, reused to spare a copy when it did not change.
func readCheck(err error, resp *fasthttp.Response, known string) checkResult {
	if err != nil {
		return checkResult{refused: connRefused(err)}
	}
	code := resp.StatusCode()
	res := checkResult{ok: code >= 200 && code < 400}
	if v := resp.Header.Peek(InstanceHeader); res.ok && len(v) > 0 {
		res.instance = known
		if string(v) != known {
			res.instance = string(v)
		}
	}
	return res
}
