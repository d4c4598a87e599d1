package cluster

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/statelab/statelab/internal/stores"
	_ "modernc.org/sqlite" // the SQLite driver, to lock the database file in StopStore
)

// storeRuntime is the cluster's store and how to fail it.
type storeRuntime struct {
	c       *Cluster
	info    StoreInfo
	appArgs []string // flags every replica gets

	mu sync.Mutex

	// A redis-server the cluster started.
	redisPort int
	redisDir  string
	redis     *process

	// A proxy in front of a store the cluster was given.
	proxy *faultProxy

	// PostgreSQL: the schema to drop on close.
	pgURL    string
	pgSchema string

	// SQLite: the file, and the lock held while the store is "down".
	sqlitePath string
	sqliteDB   *sql.DB
	sqliteConn *sql.Conn
}

// startStore prepares the store of c's strategy. A strategy on SQLite
// runs on PostgreSQL instead when the cluster was given a PostgreSQL URL.
func startStore(ctx context.Context, c *Cluster) (*storeRuntime, error) {
	kind := c.spec.Store
	if kind == stores.SQLite && c.cfg.PostgresURL != "" {
		kind = stores.Postgres
	}
	s := &storeRuntime{c: c, info: StoreInfo{Kind: kind, External: kind.External(), Up: true}}
	switch kind {
	case stores.Redis:
		if c.cfg.RedisURL == "" {
			return s, s.startRedis(ctx)
		}
		u, err := url.Parse(c.cfg.RedisURL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("%w: Redis URL %q: want redis://host:port/db", ErrBadConfig, c.cfg.RedisURL)
		}
		p, err := newFaultProxy(hostPort(u, "6379"))
		if err != nil {
			return nil, err
		}
		s.proxy = p
		u.Host = p.addr
		// A Redis the cluster does not own may be shared: give this
		// cluster's keys their own prefix.
		s.appArgs = []string{"--redis", u.String(), "--redis-prefix", "statelab:lab:" + randomHex(6) + ":"}
		s.info.Detail = "Redis at " + c.cfg.RedisURL + " (through a fault proxy at " + p.addr + ")"
	case stores.SQLite:
		s.sqlitePath = filepath.Join(c.dir, "carts.db")
		s.appArgs = []string{"--sqlite", s.sqlitePath}
		s.info.Detail = "SQLite file " + s.sqlitePath + " shared by the replicas"
	case stores.Postgres:
		if err := s.preparePostgres(ctx); err != nil {
			return nil, err
		}
	default:
		s.info.Detail = "no external store"
	}
	return s, nil
}

func hostPort(u *url.URL, defPort string) string {
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), defPort)
	}
	return u.Host
}

// startRedis starts a redis-server with no persistence on a free port.
func (s *storeRuntime) startRedis(ctx context.Context) error {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return ErrNoRedis
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	s.redisPort = port
	s.redisDir = s.c.dir
	s.appArgs = []string{"--redis", "redis://127.0.0.1:" + strconv.Itoa(port) + "/0"}
	s.info.Managed = true
	s.info.Detail = "redis-server on 127.0.0.1:" + strconv.Itoa(port) + " started by the lab (no persistence)"
	return s.launchRedis(ctx, bin)
}

func (s *storeRuntime) launchRedis(ctx context.Context, bin string) error {
	args := []string{"--port", strconv.Itoa(s.redisPort), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.redisDir,
		"--protected-mode", "no", "--daemonize", "no", "--loglevel", "warning"}
	p, err := startProcess("redis-server", bin, args, nil, filepath.Join(s.c.dir, "redis.log"), func(p *process, expected bool, err error) {
		if !expected {
			s.c.event(EventCrash, "", fmt.Sprintf("redis-server crashed: %s; last log lines: %s", exitDescription(err), p.tail(600)))
		}
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.redis = p
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, s.c.cfg.ReadyTimeout)
	defer cancel()
	for {
		if _, err := redisCommand(ctx, s.redisPort, "PING"); err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("cluster: redis-server exited: %s; log: %s", exitDescription(p.exitErr), p.tail(1000))
		case <-ctx.Done():
			return fmt.Errorf("cluster: redis-server not answering: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// randomHex returns 2n random hex digits.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}

// redisCommand sends one command in RESP and returns the first reply line.
func redisCommand(ctx context.Context, port int, args ...string) (string, error) {
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(line, "-") {
		return "", errors.New(strings.TrimSpace(line[1:]))
	}
	return strings.TrimSpace(line), nil
}

// preparePostgres creates a fresh schema and points the replicas at it
// through a fault proxy.
func (s *storeRuntime) preparePostgres(ctx context.Context) error {
	u, err := url.Parse(s.c.cfg.PostgresURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return fmt.Errorf("%w: PostgreSQL URL %q: want postgres://user@host:port/db", ErrBadConfig, s.c.cfg.PostgresURL)
	}
	schema := "statelab_lab_" + randomHex(6)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.c.cfg.PostgresURL)
	if err != nil {
		return fmt.Errorf("cluster: connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return fmt.Errorf("cluster: create schema: %w", err)
	}
	s.pgURL, s.pgSchema = s.c.cfg.PostgresURL, schema
	p, err := newFaultProxy(hostPort(u, "5432"))
	if err != nil {
		return err
	}
	s.proxy = p
	u.Host = p.addr
	s.appArgs = []string{"--postgres", u.String(), "--postgres-schema", schema}
	s.info.Detail = "PostgreSQL schema " + schema + " (through a fault proxy at " + p.addr + ")"
	return nil
}

// StopStore makes the store unavailable to the replicas; see the package
// documentation for what that means for each store. Stopping a stopped
// store is not an error.
func (c *Cluster) StopStore(ctx context.Context) error {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	s, err := c.externalStore()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.info.Up {
		return nil
	}
	var how string
	switch {
	case s.redis != nil:
		// SHUTDOWN SAVE writes the dump even with saving disabled, so the
		// restart brings every cart back: this is an outage, not data loss.
		p := s.redis
		p.mu.Lock()
		p.expected = true
		p.mu.Unlock()
		_, _ = redisCommand(ctx, s.redisPort, "SHUTDOWN", "SAVE")
		select {
		case <-p.done:
		case <-time.After(c.cfg.StopGrace):
			p.kill()
		}
		how = "redis-server shut down (SHUTDOWN SAVE)"
	case s.proxy != nil:
		s.proxy.cut()
		how = "store connections cut and refused (fault proxy)"
	case s.sqlitePath != "":
		db, err := sql.Open("sqlite", "file:"+s.sqlitePath+"?_pragma=busy_timeout(10000)")
		if err != nil {
			return fmt.Errorf("cluster: open SQLite to lock it: %w", err)
		}
		conn, err := db.Conn(ctx)
		if err == nil {
			_, err = conn.ExecContext(ctx, "BEGIN EXCLUSIVE")
		}
		if err != nil {
			if conn != nil {
				conn.Close()
			}
			db.Close()
			return fmt.Errorf("cluster: lock SQLite database: %w", err)
		}
		s.sqliteDB, s.sqliteConn = db, conn
		how = "SQLite database locked exclusively (BEGIN EXCLUSIVE held by the lab)"
	}
	s.info.Up = false
	c.event(EventStoreDown, "", "store down: "+how)
	return nil
}

// StartStore makes the store available again after StopStore. Starting a
// running store is not an error.
func (c *Cluster) StartStore(ctx context.Context) error {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	s, err := c.externalStore()
	if err != nil {
		return err
	}
	s.mu.Lock()
	up := s.info.Up
	s.mu.Unlock()
	if up {
		return nil
	}
	var how string
	switch {
	case s.redis != nil:
		bin, err := exec.LookPath("redis-server")
		if err != nil {
			return ErrNoRedis
		}
		if err := s.launchRedis(ctx, bin); err != nil {
			return err
		}
		how = "redis-server started again from its dump"
	case s.proxy != nil:
		if err := s.proxy.restore(); err != nil {
			return err
		}
		how = "store reachable again"
	case s.sqlitePath != "":
		s.unlockSQLite()
		how = "SQLite lock released"
	}
	s.mu.Lock()
	s.info.Up = true
	s.mu.Unlock()
	c.event(EventStoreUp, "", "store up: "+how)
	return nil
}

func (s *storeRuntime) unlockSQLite() {
	s.mu.Lock()
	conn, db := s.sqliteConn, s.sqliteDB
	s.sqliteConn, s.sqliteDB = nil, nil
	s.mu.Unlock()
	if conn != nil {
		_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
		conn.Close()
	}
	if db != nil {
		db.Close()
	}
}

func (c *Cluster) externalStore() (*storeRuntime, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if c.store == nil || !c.store.info.External {
		return nil, ErrNoStore
	}
	return c.store, nil
}

// close stops what the store runtime started and drops the schema it made.
func (s *storeRuntime) close() error {
	s.unlockSQLite()
	s.mu.Lock()
	r, p := s.redis, s.proxy
	s.mu.Unlock()
	if r != nil {
		r.kill()
	}
	if p != nil {
		p.close()
	}
	if s.pgSchema == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.pgURL)
	if err != nil {
		return fmt.Errorf("cluster: drop schema %s: %w", s.pgSchema, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "DROP SCHEMA "+s.pgSchema+" CASCADE"); err != nil {
		return fmt.Errorf("cluster: drop schema %s: %w", s.pgSchema, err)
	}
	return nil
}
