package main

import (
	"context"
	"log/slog"

	"github.com/statelab/statelab/internal/pricing"
)

// runPricing runs one replica of the stateless pricing service until ctx
// is cancelled, then shuts down gracefully.
func runPricing(ctx context.Context, m *Main, args []string) error {
	var f serviceFlags
	fs := newFlagSet(m, "pricing", "--listen ADDR [--id NAME] [flags]")
	f.register(fs, "127.0.0.1:8081")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := f.validate("pricing"); err != nil {
		return err
	}
	ln, err := f.listenService("pricing")
	if err != nil {
		return err
	}
	defer ln.Close()
	log := slog.New(slog.NewTextHandler(m.Stderr, nil)).With("replica", f.id)
	srv, err := pricing.NewServer(pricing.Config{ID: f.id, Limiter: f.limiter(), Registry: newServiceRegistry()})
	if err != nil {
		return err
	}
	log.Info("pricing: serving", "addr", ln.Addr().String(), "work", f.work, "max_inflight", f.maxInflight, "queue", f.queue)
	return serveService(ctx, log, "pricing", ln, srv, srv.Drain, &f)
}
