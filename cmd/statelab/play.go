package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/statelab/statelab/internal/cluster"
	"github.com/statelab/statelab/internal/play"
	"github.com/statelab/statelab/internal/strategy"
)

// runPlay serves the live playground: a cluster for one strategy at a time,
// and a page where a person shops through it and breaks it.
func runPlay(ctx context.Context, m *Main, args []string) error {
	fs := newFlagSet(m, "play", "[--listen ADDR] [--strategy S] [--replicas N] [--redis URL] [--postgres URL]")
	listen := fs.String("listen", "127.0.0.1:8080", "`address` the playground page listens on")
	name := fs.String("strategy", string(strategy.Sticky), "first `strategy`: "+oneOf(strategy.Names())+" (the page can change it)")
	replicas := fs.Int("replicas", 3, fmt.Sprintf("replicas per cluster, 1 to %d", play.MaxReplicas))
	redisURL := fs.String("redis", "", "Redis `URL` for the cache strategy (default: start redis-server from PATH on a free port)")
	postgresURL := fs.String("postgres", "", "PostgreSQL `URL` for the database strategy (default: SQLite in a temporary directory)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	st, err := strategy.Parse(*name)
	if err != nil {
		return usageErrorf("play", "--strategy: unknown strategy %q (want %s)", *name, oneOf(strategy.Names()))
	}
	if *replicas < 1 || *replicas > play.MaxReplicas {
		return usageErrorf("play", "--replicas must be 1 to %d, not %d", play.MaxReplicas, *replicas)
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("play: find the statelab binary: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := play.New(play.Config{
		Strategy: st,
		Replicas: *replicas,
		Start: play.NewClusterStarter(cluster.Config{
			Binary:      bin,
			RedisURL:    *redisURL,
			PostgresURL: *postgresURL,
			Logger:      logger,
		}),
		Shoppers: play.NewLabShoppers(),
		StartGame: play.NewGameStarter(cluster.Config{
			Binary:   bin,
			RedisURL: *redisURL,
			Logger:   logger,
		}),
		Logger: logger,
	})
	if err != nil {
		return usageErrorf("play", "%v", err)
	}
	// Listen first: a busy port fails at once, before a cluster starts.
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("play: listen on %s: %w", *listen, err)
	}
	defer ln.Close()

	fmt.Fprintf(m.Stderr, "statelab play: starting a %s cluster of %d replicas…\n", st, *replicas)
	if err := srv.Start(ctx); err != nil {
		return errors.Join(err, srv.Close())
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	fmt.Fprintf(m.Stdout, "statelab play: open http://%s/ in a browser (Ctrl-C stops)\n", ln.Addr())

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
	}
	// Close the playground first: it ends the event streams, which an
	// http.Server would otherwise wait for, and stops the cluster.
	closeErr := srv.Close()
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutCtx); err != nil {
		closeErr = errors.Join(closeErr, fmt.Errorf("play: shut down the page server: %w", err))
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return errors.Join(fmt.Errorf("play: serve: %w", serveErr), closeErr)
	}
	if closeErr != nil {
		return closeErr
	}
	fmt.Fprintln(m.Stderr, "statelab play: stopped; the cluster is closed")
	return nil
}
