package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/statelab/statelab/balancer"
	"github.com/statelab/statelab/internal/webguard"
)

// runLB runs the HTTP load balancer until ctx is done (SIGINT/SIGTERM), then
// stops accepting, lets in-flight requests finish and exits 0.
func runLB(ctx context.Context, m *Main, args []string) error {
	fs := newFlagSet(m, "lb", "--listen ADDR --backend [ID=]URL [--backend ...] [flags]")
	var backends listFlag
	listen := fs.String("listen", ":8080", "address the proxy listens on")
	fs.Var(&backends, "backend", "backend `[ID=]URL`, repeatable or comma-separated; ID defaults to host:port")
	var denyPaths listFlag
	fs.Var(&denyPaths, "deny-path", "path `PREFIX` never forwarded (404), e.g. /metrics,/api/replica; repeatable or comma-separated")
	policy := fs.String("policy", balancer.PolicyRoundRobin, "selection policy: "+strings.Join(balancer.Policies, ", "))
	admin := fs.String("admin", "127.0.0.1:9090", "address of the admin API and /metrics (off loopback it needs --admin-token)")
	adminTok := fs.String("admin-token", "", "bearer token the admin API requires (required off loopback; prefer --admin-token-file or the environment)")
	adminTokFile := fs.String("admin-token-file", "", "`FILE` holding the admin bearer token")
	stickyCookie := fs.String("sticky-cookie", "statelab_backend", "cookie the sticky policy sets")
	hashCookie := fs.String("hash-cookie", "statelab_session", "session cookie the hash policy hashes (client address without it)")
	hashKey := fs.String("hash-key", "", "what the hash policy hashes instead of --hash-cookie: cookie:NAME, header:NAME or path:/PREFIX/ (the path segment after PREFIX)")
	healthPath := fs.String("health-path", "", "path of the active health check, e.g. /readyz (empty: no active checks)")
	healthInterval := fs.Duration("health-interval", 2*time.Second, "time between active health checks")
	secret := fs.String("secret", "", "key for the sticky cookie HMAC; share it between balancers (empty: random)")
	maxTries := fs.Int("max-tries", 3, "attempts per request, including retries")
	drainTimeout := fs.Duration("drain-timeout", 10*time.Second, "longest wait for a removed backend to drain")
	accessLog := fs.Bool("access-log", false, "log every request")
	maxHeader := fs.Int("max-header-bytes", 16<<10, "largest request header block; larger ones get 431")
	maxBody := fs.Int("max-body-bytes", 10<<20, "largest request body; larger ones get 413")
	bufferBody := fs.Int("buffer-body-bytes", 64<<10, "request bodies up to this size are buffered (and can be retried); larger ones are streamed")
	backendCA := fs.String("backend-ca", "", "PEM `FILE` of the CA that signs https:// backends' certificates (default: system roots)")
	backendInsecure := fs.Bool("backend-insecure", false, "do not verify https:// backends' certificates (testing only)")
	var groups lbFlagGroups
	groups.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}

	switch {
	case len(backends) == 0 && len(groups.pools.backends) == 0:
		return usageErrorf("lb", "at least one --backend (or --pool-backend) is required")
	case !slices.Contains(balancer.Policies, *policy):
		return usageErrorf("lb", "invalid --policy %q: want one of %s", *policy, strings.Join(balancer.Policies, ", "))
	case *healthInterval <= 0:
		return usageErrorf("lb", "invalid --health-interval %v: must be positive", *healthInterval)
	case *healthPath != "" && !strings.HasPrefix(*healthPath, "/"):
		return usageErrorf("lb", "invalid --health-path %q: must start with /", *healthPath)
	case *maxTries < 1:
		return usageErrorf("lb", "invalid --max-tries %d: must be at least 1", *maxTries)
	case *drainTimeout <= 0:
		return usageErrorf("lb", "invalid --drain-timeout %v: must be positive", *drainTimeout)
	case *maxHeader < 1024:
		return usageErrorf("lb", "invalid --max-header-bytes %d: must be at least 1024", *maxHeader)
	case slices.ContainsFunc(denyPaths, func(p string) bool { return !strings.HasPrefix(p, "/") }):
		return usageErrorf("lb", "invalid --deny-path %q: each prefix must start with /", denyPaths.String())
	case *maxBody < 1:
		return usageErrorf("lb", "invalid --max-body-bytes %d: must be positive", *maxBody)
	case *bufferBody < 1 || *bufferBody > *maxBody:
		return usageErrorf("lb", "invalid --buffer-body-bytes %d: must be between 1 and --max-body-bytes", *bufferBody)
	}
	tlsCfg, err := backendTLS(*backendCA, *backendInsecure)
	if err != nil {
		return usageErrorf("lb", "%v", err)
	}
	token, err := adminAccess(*admin, *adminTok, *adminTokFile)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(m.Stderr, nil))
	lbProcs(os.Getenv("GOMAXPROCS"))
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg := balancer.Config{
		Policy:             *policy,
		StickyCookie:       *stickyCookie,
		HashCookie:         *hashCookie,
		HashKey:            *hashKey,
		HealthPath:         *healthPath,
		HealthInterval:     *healthInterval,
		Secret:             []byte(*secret),
		MaxTries:           *maxTries,
		DrainTimeout:       *drainTimeout,
		AccessLog:          *accessLog,
		MaxHeaderBytes:     *maxHeader,
		DenyPaths:          denyPaths,
		MaxRequestBodySize: *maxBody,
		MaxBufferedBody:    *bufferBody,
		BackendTLS:         tlsCfg,
		AdminToken:         token,
		Logger:             log,
		Registry:           reg,
	}
	for _, b := range backends {
		cfg.Backends = append(cfg.Backends, parseBackendSpec(b))
	}
	if err := groups.apply(&cfg, log); err != nil {
		return err
	}
	lb, err := balancer.New(cfg)
	if err != nil {
		return usageErrorf("lb", "%v", err)
	}
	defer lb.Close()
	return serveLB(ctx, lb, log, lbAddrs{listen: *listen, admin: *admin, redirect: groups.tls.redirect})
}

// adminAccess returns the admin API's bearer token from --admin-token or
// --admin-token-file, and refuses an admin address off loopback without one.
func adminAccess(admin, tok, tokFile string) (string, error) {
	token, err := adminToken(tok, tokFile)
	if err != nil {
		return "", usageErrorf("lb", "%v", err)
	}
	if token == "" && !webguard.LoopbackAddr(admin) {
		return "", usageErrorf("lb", "--admin %q is not a loopback address: set --admin-token-file, STATELAB_ADMIN_TOKEN or --admin-token", admin)
	}
	return token, nil
}

// lbAddrs are the addresses statelab lb listens on; redirect may be empty.
type lbAddrs struct{ listen, admin, redirect string }

// serveLB serves lb on the listen address, its admin API on the admin
// address and (if set) the HTTP→HTTPS redirect until ctx is done.
func serveLB(ctx context.Context, lb *balancer.Balancer, log *slog.Logger, addrs lbAddrs) error {
	// No TCP keep-alive probes on client connections (Go enables them by
	// default; HAProxy does not): the idle and read timeouts already close
	// dead ones, and configuring the probes took four of the five setsockopt
	// calls per accepted connection (strace -c with a new connection per
	// request).
	ln, err := (&net.ListenConfig{KeepAlive: -1}).Listen(ctx, "tcp", addrs.listen)
	if err != nil {
		return usageErrorf("lb", "cannot listen on --listen %q: %v", addrs.listen, err)
	}
	adminLn, err := net.Listen("tcp", addrs.admin)
	if err != nil {
		ln.Close()
		return usageErrorf("lb", "cannot listen on --admin %q: %v", addrs.admin, err)
	}
	var redirectLn net.Listener
	if addrs.redirect != "" {
		if redirectLn, err = net.Listen("tcp", addrs.redirect); err != nil {
			ln.Close()
			adminLn.Close()
			return usageErrorf("lb", "cannot listen on --redirect-http %q: %v", addrs.redirect, err)
		}
		redirectSrv := &http.Server{Handler: balancer.RedirectHandler(ln.Addr().(*net.TCPAddr).Port),
			ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second}
		go func() { _ = redirectSrv.Serve(redirectLn) }()
		defer redirectSrv.Close()
	}
	adminSrv := &http.Server{Handler: lb.AdminHandler(), ReadHeaderTimeout: 5 * time.Second}
	adminErr := make(chan error, 1)
	go func() { adminErr <- adminSrv.Serve(adminLn) }()

	attrs := []any{"listen", ln.Addr().String(), "admin", adminLn.Addr().String(),
		"policy", lb.Config().Policy, "backends", len(lb.Backends()), "tls", lb.Config().TLS != nil,
		"gomaxprocs", runtime.GOMAXPROCS(0)}
	if redirectLn != nil {
		attrs = append(attrs, "redirect_http", redirectLn.Addr().String())
	}
	log.Info("statelab lb: serving", attrs...)
	serveErr := lb.Serve(ctx, ln)

	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := adminSrv.Shutdown(sctx); err != nil {
		log.Warn("statelab lb: admin shutdown", "err", err)
	}
	if err := <-adminErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("lb: admin: %w", err)
	}
	if serveErr != nil {
		return fmt.Errorf("lb: %w", serveErr)
	}
	log.Info("statelab lb: stopped")
	return nil
}

// backendTLS returns the TLS configuration for https:// backends from the
// --backend-ca and --backend-insecure flags (nil: system roots).
func backendTLS(caFile string, insecure bool) (*tls.Config, error) {
	switch {
	case caFile != "" && insecure:
		return nil, errors.New("--backend-ca and --backend-insecure exclude each other")
	case insecure:
		return &tls.Config{InsecureSkipVerify: true}, nil // #nosec G402 -- asked for by --backend-insecure
	case caFile == "":
		return nil, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("cannot read --backend-ca: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("invalid --backend-ca %q: no PEM certificate in it", caFile)
	}
	return &tls.Config{RootCAs: pool}, nil
}

// minAdminToken is the shortest admin token accepted.
const minAdminToken = 16

// adminToken returns the admin bearer token from --admin-token or the file
// --admin-token-file names (surrounding white space removed), or "".
func adminToken(token, file string) (string, error) {
	if file != "" {
		if token != "" {
			return "", errors.New("--admin-token and --admin-token-file exclude each other")
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("cannot read --admin-token-file: %v", err)
		}
		token = strings.TrimSpace(string(b))
		if token == "" {
			return "", fmt.Errorf("invalid --admin-token-file %q: empty", file)
		}
	}
	if token != "" && len(token) < minAdminToken {
		return "", fmt.Errorf("invalid --admin-token: at least %d characters", minAdminToken)
	}
	return token, nil
}
