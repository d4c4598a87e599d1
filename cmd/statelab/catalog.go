package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/statelab/statelab/internal/catalog"
)

// runCatalog runs one replica of the stateless, database-backed catalog
// service until ctx is cancelled, then shuts down gracefully. Replicas
// share the database; the first to start seeds it.
func runCatalog(ctx context.Context, m *Main, args []string) error {
	var f serviceFlags
	var db catalog.DBConfig
	fs := newFlagSet(m, "catalog", "--listen ADDR [--id NAME] [--sqlite PATH | --postgres URL] [flags]")
	f.register(fs, "127.0.0.1:8082")
	fs.StringVar(&db.SQLitePath, "sqlite", "", "SQLite database `file` of the products (default statelab-catalog.db; replicas on one host share it)")
	fs.StringVar(&db.PostgresURL, "postgres", "", "PostgreSQL `URL` of the products (replicas anywhere share it)")
	fs.StringVar(&db.PostgresSchema, "postgres-schema", "", "`schema` of the products table with --postgres (default public)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := f.validate("catalog"); err != nil {
		return err
	}
	switch {
	case db.SQLitePath != "" && db.PostgresURL != "":
		return usageErrorf("catalog", "give --sqlite or --postgres, not both")
	case db.PostgresURL == "" && db.SQLitePath == "":
		db.SQLitePath = "statelab-catalog.db"
	}
	ln, err := f.listenService("catalog")
	if err != nil {
		return err
	}
	defer ln.Close()
	log := slog.New(slog.NewTextHandler(m.Stderr, nil)).With("replica", f.id)
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	store, err := catalog.Open(openCtx, db)
	cancel()
	if err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	defer store.Close()
	srv, err := catalog.NewServer(catalog.Config{ID: f.id, Source: store, Ready: store.Ping,
		Limiter: f.limiter(), Registry: newServiceRegistry(), Logger: log})
	if err != nil {
		return err
	}
	log.Info("catalog: serving", "addr", ln.Addr().String(), "database", store.Kind(),
		"work", f.work, "max_inflight", f.maxInflight, "queue", f.queue)
	return serveService(ctx, log, "catalog", ln, srv, srv.Drain, &f)
}
