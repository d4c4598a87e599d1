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

// listenService opens the listener and fills in a default --id (host name
// and port).
func (f *serviceFlags) listenService(cmd string) (net.Listener, error) {
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	if f.id == "" {
		host, _ := os.Hostname()
		f.id = host + "-" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	}
	return ln, nil
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
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("%s: serve: %w", cmd, err)
	case <-ctx.Done():
	}
	drain()
	if f.drainDelay > 0 {
		log.Info(cmd+": shutting down: readiness off, still serving", "drain_delay", f.drainDelay)
		time.Sleep(f.drainDelay)
	}
	log.Info(cmd + ": shutting down: draining in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), f.shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn(cmd+": in-flight requests did not finish in time", "err", err)
		hs.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s: serve: %w", cmd, err)
	}
	log.Info(cmd + ": stopped")
	return nil
}
