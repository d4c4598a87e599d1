package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/statelab/statelab/internal/httpapi"
)

// serviceFlags are the flags the stateless services (pricing, catalog)
// share with each other and, by name and meaning, with statelab app.
type serviceFlags struct {
	listen          string
	id              string
	work            time.Duration
	maxInflight     int
	queue           int
	drainDelay      time.Duration
	shutdownTimeout time.Duration
}

// register adds the shared flags to fs.
func (f *serviceFlags) register(fs *flag.FlagSet, listen string) {
	fs.StringVar(&f.listen, "listen", listen, "`address` to serve HTTP on (port 0 picks a free port)")
	fs.StringVar(&f.id, "id", "", "replica `name` sent in X-Served-By (default: host name and port)")
	fs.DurationVar(&f.work, "work", 0, "capacity model: how long each request waits (a timer, not CPU)")
	fs.IntVar(&f.maxInflight, "max-inflight", 0, "capacity model: requests served at once (0: unlimited)")
	fs.IntVar(&f.queue, "queue", 64, "capacity model: requests waiting for a slot before 503s (with --max-inflight)")
	fs.DurationVar(&f.drainDelay, "drain-delay", 0, "on SIGTERM, keep serving this long with /readyz at 503 so balancers stop sending first")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long a graceful shutdown waits for in-flight requests")
}

// validate returns a usage error naming the first bad shared flag.
func (f *serviceFlags) validate(cmd string) error {
	bad := func(format string, args ...any) error { return usageErrorf(cmd, format, args...) }
	switch {
	case f.work < 0:
		return bad("--work must not be negative")
	case f.maxInflight < 0:
		return bad("--max-inflight must not be negative")
	case f.queue < 0:
		return bad("--queue must not be negative")
	case f.shutdownTimeout <= 0:
		return bad("--shutdown-timeout must be positive")
	case f.drainDelay < 0:
		return bad("--drain-delay must not be negative")
	}
	if _, _, err := net.SplitHostPort(f.listen); err != nil {
		return bad("invalid value %q for --listen: %v", f.listen, err)
	}
	return nil
}

// limiter returns the capacity model the flags describe.
func (f *serviceFlags) limiter() *httpapi.Limiter {
	return httpapi.NewLimiter(f.work, f.maxInflight, f.queue)
}

// newServiceRegistry returns a registry with the Go and process collectors.
func newServiceRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// listenService opens the listener and fills in a default --id (see
// defaultID).
func (f *serviceFlags) listenService(cmd string) (net.Listener, error) {
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	if f.id == "" {
		f.id = defaultID(ln)
	}
	return ln, nil
}

// defaultID is the --id of a replica started without one: its host name and
// the port it listens on.
func defaultID(ln net.Listener) string {
	host, _ := os.Hostname()
	return host + "-" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// serveService serves h on ln until ctx is done, then shuts down like
// statelab app: drain() (readiness off), --drain-delay of serving on,
// close the listener, wait up to --shutdown-timeout for in-flight requests.
func serveService(ctx context.Context, log *slog.Logger, cmd string, ln net.Listener, h http.Handler, drain func(), f *serviceFlags) error {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30*time.Second + f.work,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return serveUntil(ctx, log, ln, hs, stopPlan{cmd: cmd, drain: drain, drainDelay: f.drainDelay,
		stopping: "draining in-flight requests", timeout: f.shutdownTimeout})
}

// stopPlan is how serveUntil stops a server once its context is done.
type stopPlan struct {
	cmd        string        // the subcommand: prefixes errors and log lines
	drain      func()        // turns readiness off
	drainDelay time.Duration // how long to serve on with readiness off
	stopping   string        // what the shutdown log line says happens next
	before     func()        // runs after drainDelay, before the server stops; may be nil
	timeout    time.Duration // how long in-flight requests get to finish
}

// serveUntil serves hs on ln until ctx is done, then stops as plan says:
// drain, drainDelay of serving on, before, then close the listener and wait
// up to plan.timeout for in-flight requests.
func serveUntil(ctx context.Context, log *slog.Logger, ln net.Listener, hs *http.Server, plan stopPlan) error {
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("%s: serve: %w", plan.cmd, err)
	case <-ctx.Done():
	}
	plan.drain()
	if plan.drainDelay > 0 {
		log.Info(plan.cmd+": shutting down: readiness off, still serving", "drain_delay", plan.drainDelay)
		time.Sleep(plan.drainDelay)
	}
	log.Info(plan.cmd + ": shutting down: " + plan.stopping)
	if plan.before != nil {
		plan.before()
	}
	sctx, cancel := context.WithTimeout(context.Background(), plan.timeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn(plan.cmd+": in-flight requests did not finish in time", "err", err)
		hs.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s: serve: %w", plan.cmd, err)
	}
	log.Info(plan.cmd + ": stopped")
	return nil
}
