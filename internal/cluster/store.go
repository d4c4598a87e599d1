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

// storeRuntime is the cluster's store: what it tells the replicas, what it
// reports, and how to fail it.
type storeRuntime struct {
	appArgs []string   // flags every replica gets
	fault   storeFault // how to stop, start and clean up the store
	link    linkSet    // the replicas' link to the store, when it is proxied

	mu   sync.Mutex
	info StoreInfo
}

// storeFault is how the cluster fails one kind of store runtime and
// cleans it up: one implementation per way of running a store.
type storeFault interface {
	// stop makes the store unavailable to the replicas and says how.
	stop(ctx context.Context) (how string, err error)
	// start makes it available again and says how.
	start(ctx context.Context) (how string, err error)
	// close releases what the cluster started or holds for the store.
	close() error
}

var (
	_ storeFault = noStore{}
	_ storeFault = (*redisServer)(nil)
	_ storeFault = (*proxiedStore)(nil)
	_ storeFault = (*sqliteLock)(nil)
	_ storeFault = (*redisTopology)(nil)
)

// startStore prepares the store of c's strategy. A strategy on SQLite
// runs on PostgreSQL instead when the cluster was given a PostgreSQL URL.
func startStore(ctx context.Context, c *Cluster) (*storeRuntime, error) {
	kind := c.spec.Store
	if kind == stores.SQLite && c.cfg.PostgresURL != "" {
		kind = stores.Postgres
	}
	s := &storeRuntime{fault: noStore{}, info: StoreInfo{Kind: kind, External: kind.External(), Up: true}}
	switch kind {
	case stores.Redis:
		if c.cfg.RedisURL == "" && MultiServerRedis(c.cfg.RedisMode) {
			t, args, err := startRedisTopology(ctx, c)
			if err != nil {
				return nil, err
			}
			s.fault, s.info.Managed, s.appArgs, s.link = t, true, append(args, c.redisWaitArgs()...), t.links
			s.info.Detail = fmt.Sprintf("Redis %s of %d redis-server processes started by the lab (no persistence)", c.cfg.RedisMode, len(t.nodes)+len(t.sentinels))
			return s, nil
		}
		if c.cfg.RedisURL == "" {
			r, err := startRedis(ctx, c)
			if err != nil {
				return nil, err
			}
			s.fault, s.info.Managed = r, true
			s.appArgs = []string{"--redis", "redis://127.0.0.1:" + strconv.Itoa(r.port) + "/0"}
			s.info.Detail = "redis-server on 127.0.0.1:" + strconv.Itoa(r.port) + " started by the lab (no persistence)"
			return s, s.proxyManaged(c, "127.0.0.1:"+strconv.Itoa(r.port))
		}
		u, err := url.Parse(c.cfg.RedisURL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("%w: Redis URL %q: want redis://host:port/db", ErrBadConfig, c.cfg.RedisURL)
		}
		p, err := c.newLinkProxy(hostPort(u, "6379"))
		if err != nil {
			return nil, err
		}
		s.fault, s.link = &proxiedStore{proxy: p}, linkSet{p}
		u.Host = p.addr
		// A Redis the cluster does not own may be shared: give this
		// cluster's keys their own prefix.
		s.appArgs = []string{"--redis", u.String(), "--redis-prefix", "statelab:lab:" + randomHex(6) + ":"}
		s.info.Detail = "Redis at " + c.cfg.RedisURL + " (through a fault proxy at " + p.addr + ")"
	case stores.SQLite:
		path := filepath.Join(c.dir, "carts.db")
		s.fault = &sqliteLock{path: path}
		s.appArgs = []string{"--sqlite", path}
		s.info.Detail = "SQLite file " + path + " shared by the replicas"
	case stores.Postgres:
		if err := s.preparePostgres(ctx, c, c.cfg.PostgresURL); err != nil {
			return nil, err
		}
	default:
		s.info.Detail = "no external store"
	}
	return s, nil
}

// noStore is the runtime of a store inside the replicas or the client:
// there is nothing to fail.
type noStore struct{}

func (noStore) stop(context.Context) (string, error)  { return "", ErrNoStore }
func (noStore) start(context.Context) (string, error) { return "", ErrNoStore }
func (noStore) close() error                          { return nil }

func hostPort(u *url.URL, defPort string) string {
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), defPort)
	}
	return u.Host
}

// redisServer is a redis-server the cluster started: stopping it shuts it
// down, starting it launches it again from its dump.
type redisServer struct {
	c    *Cluster
	bin  string
	port int

	mu   sync.Mutex
	proc *process
}

// startRedis starts a redis-server with no persistence on a free port,
// and on another if that one was taken before it could bind it.
func startRedis(ctx context.Context, c *Cluster) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrNoRedis
	}
	r := &redisServer{c: c, bin: bin}
	for attempt := 1; ; attempt++ {
		if r.port, err = freePort(); err != nil {
			return nil, err
		}
		err = r.launch(ctx)
		r.mu.Lock()
		p := r.proc
		r.mu.Unlock()
		if err == nil || attempt >= portAttempts || !lostPort(p) {
			return r, err
		}
		c.log.Info("cluster: redis-server lost its port before binding it, starting it again", "attempt", attempt+1)
	}
}

func (r *redisServer) launch(ctx context.Context) error {
	args := []string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.c.dir,
		"--protected-mode", "no", "--daemonize", "no", "--loglevel", "warning"}
	p, err := startProcess("redis-server", r.bin, args, nil, filepath.Join(r.c.dir, "redis.log"), func(p *process, expected bool, err error) {
		if !expected {
			r.c.event(EventCrash, "", fmt.Sprintf("redis-server crashed: %s; last log lines: %s", exitDescription(err), p.tail(600)))
		}
	})
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.proc = p
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, r.c.readyTimeout())
	defer cancel()
	for {
		if _, err := redisCommand(ctx, r.port, "PING"); err == nil {
			p.markReady()
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

// stop shuts the server down with SHUTDOWN SAVE, which writes the dump even
// with saving disabled, so the restart brings every cart back: this is an
// outage, not data loss.
func (r *redisServer) stop(ctx context.Context) (string, error) {
	r.mu.Lock()
	p := r.proc
	r.mu.Unlock()
	p.mu.Lock()
	p.expected = true
	p.mu.Unlock()
	_, _ = redisCommand(ctx, r.port, "SHUTDOWN", "SAVE")
	select {
	case <-p.done:
	case <-time.After(r.c.cfg.StopGrace):
		p.kill()
	}
	return "redis-server shut down (SHUTDOWN SAVE)", nil
}

func (r *redisServer) start(ctx context.Context) (string, error) {
	if err := r.launch(ctx); err != nil {
		return "", err
	}
	return "redis-server started again from its dump", nil
}

func (r *redisServer) close() error {
	killCurrent(&r.mu, &r.proc)
	return nil
}

// killCurrent kills the process *pp, read under mu, if there is one.
func killCurrent(mu *sync.Mutex, pp **process) {
	mu.Lock()
	p := *pp
	mu.Unlock()
	if p != nil {
		p.kill()
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

// preparePostgres creates a fresh schema in the database at rawURL and
// points the replicas at it through a fault proxy.
func (s *storeRuntime) preparePostgres(ctx context.Context, c *Cluster, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return fmt.Errorf("%w: PostgreSQL URL %q: want postgres://user@host:port/db", ErrBadConfig, rawURL)
	}
	schema := "statelab_lab_" + randomHex(6)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, rawURL)
	if err != nil {
		return fmt.Errorf("cluster: connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return fmt.Errorf("cluster: create schema: %w", err)
	}
	ps := &proxiedStore{pgURL: rawURL, pgSchema: schema}
	s.fault = ps
	p, err := c.newLinkProxy(hostPort(u, "5432"))
	if err != nil {
		return err
	}
	ps.proxy, s.link = p, linkSet{p}
	u.Host = p.addr
	s.appArgs = []string{"--postgres", u.String(), "--postgres-schema", schema}
	s.info.Detail = "PostgreSQL schema " + schema + " (through a fault proxy at " + p.addr + ")"
	return nil
}

// proxiedStore is a server the cluster was given (Redis or PostgreSQL by
// URL) and never stops: the replicas reach it through a fault proxy that
// stopping cuts. For PostgreSQL it also drops the schema it made on close.
type proxiedStore struct {
	proxy *faultProxy

	// PostgreSQL: the schema to drop on close.
	pgURL, pgSchema string
}

func (p *proxiedStore) stop(context.Context) (string, error) {
	p.proxy.cut()
	return "store connections cut and refused (fault proxy)", nil
}

func (p *proxiedStore) start(context.Context) (string, error) {
	if err := p.proxy.restore(); err != nil {
		return "", err
	}
	return "store reachable again", nil
}

func (p *proxiedStore) close() error {
	if p.proxy != nil {
		p.proxy.close()
	}
	if p.pgSchema == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.pgURL)
	if err != nil {
		return fmt.Errorf("cluster: drop schema %s: %w", p.pgSchema, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "DROP SCHEMA "+p.pgSchema+" CASCADE"); err != nil {
		return fmt.Errorf("cluster: drop schema %s: %w", p.pgSchema, err)
	}
	return nil
}

// sqliteLock is the SQLite file of the replicas: there is no server to
// stop, so stopping takes an exclusive lock on the database and holds it,
// as a long migration or a backup tool would.
type sqliteLock struct {
	path string

	mu   sync.Mutex
	db   *sql.DB
	conn *sql.Conn
}

func (l *sqliteLock) stop(ctx context.Context) (string, error) {
	db, err := sql.Open("sqlite", "file:"+l.path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return "", fmt.Errorf("cluster: open SQLite to lock it: %w", err)
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
		return "", fmt.Errorf("cluster: lock SQLite database: %w", err)
	}
	l.mu.Lock()
	l.db, l.conn = db, conn
	l.mu.Unlock()
	return "SQLite database locked exclusively (BEGIN EXCLUSIVE held by the lab)", nil
}

func (l *sqliteLock) start(context.Context) (string, error) {
	l.unlock()
	return "SQLite lock released", nil
}

func (l *sqliteLock) close() error {
	l.unlock()
	return nil
}

func (l *sqliteLock) unlock() {
	l.mu.Lock()
	conn, db := l.conn, l.db
	l.conn, l.db = nil, nil
	l.mu.Unlock()
	if conn != nil {
		_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
		conn.Close()
	}
	if db != nil {
		db.Close()
	}
}

// StopStore makes the store unavailable to the replicas; see the package
// documentation for what that means for each store. Stopping a stopped
// store is not an error.
func (c *Cluster) StopStore(ctx context.Context) error {
	s, done, err := c.storeOp()
	if err != nil {
		return err
	}
	defer done()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.info.Up {
		return nil
	}
	how, err := s.fault.stop(ctx)
	if err != nil {
		return err
	}
	s.info.Up = false
	c.event(EventStoreDown, "", "store down: "+how)
	return nil
}

// StartStore makes the store available again after StopStore. Starting a
// running store is not an error.
func (c *Cluster) StartStore(ctx context.Context) error {
	s, done, err := c.storeOp()
	if err != nil {
		return err
	}
	defer done()
	s.mu.Lock()
	up := s.info.Up
	s.mu.Unlock()
	if up {
		return nil
	}
	how, err := s.fault.start(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.info.Up = true
	s.mu.Unlock()
	c.event(EventStoreUp, "", "store up: "+how)
	return nil
}

// storeOp takes the operation lock for a store control and returns the
// external store and the function that releases the lock. It fails (the
// lock released) on a closed cluster or one without an external store.
func (c *Cluster) storeOp() (*storeRuntime, func(), error) {
	c.opMu.Lock()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		c.opMu.Unlock()
		return nil, nil, ErrClosed
	case c.store == nil || !c.store.info.External:
		c.opMu.Unlock()
		return nil, nil, ErrNoStore
	}
	return c.store, c.opMu.Unlock, nil
}

// close stops what the store runtime started and drops the schema it made.
func (s *storeRuntime) close() error {
	err := s.fault.close()
	s.link.close()
	return err
}
