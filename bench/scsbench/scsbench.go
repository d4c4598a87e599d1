// Package scsbench compares statelab's session middleware with
// alexedwards/scs v2, both keeping sessions in the same Redis and driven the
// same way (in-process handler calls, one fixed payload): throughput of
// uncontended updates, and how many updates each loses when many requests of
// one session change it at once. The tests and benchmarks of this package and
// the scscompare command (which interleaves rounds of both, so that a busy
// machine's drift hits both alike) use it; docs/benchmarks.md has the
// commands and the numbers.
package scsbench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	scsredis "github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	redigo "github.com/gomodule/redigo/redis"
	"github.com/redis/go-redis/v9"

	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/redisstore"
)

// Options configures New. Zero values mean the defaults.
type Options struct {
	// RedisURL is the Redis both libraries use (redis://host:port/db).
	RedisURL string
	// PayloadLen is the size of the fixed payload each session holds besides
	// its counter; default 1024.
	PayloadLen int
	// PoolSize is the number of Redis connections of each library's pool;
	// default 64.
	PoolSize int
}

// Impl is one session library behind an http.Handler. Every request adds one
// to a counter kept in the session, next to the fixed payload, and answers 200
// with the new count, or an error status when the update failed.
type Impl struct {
	// Name is "statelab" or "scs".
	Name string
	// Cookie is the name of the library's session cookie.
	Cookie string
	// Handler is the application, middleware included.
	Handler http.Handler
}

// New builds both libraries on opts.RedisURL, each under a fresh key prefix.
// The returned cleanup deletes their keys and closes their connections.
func New(opts Options) (impls []Impl, cleanup func(), err error) {
	if opts.PayloadLen == 0 {
		opts.PayloadLen = 1024
	}
	if opts.PoolSize == 0 {
		opts.PoolSize = 64
	}
	ro, err := redis.ParseURL(opts.RedisURL)
	if err != nil {
		return nil, nil, fmt.Errorf("scsbench: parse %s: %w", opts.RedisURL, err)
	}
	run := rand.Text()[:10]
	ourPrefix, theirPrefix := "statelab-bench-"+run+":", "scs-bench-"+run+":"
	ro.PoolSize = opts.PoolSize
	ro.ContextTimeoutEnabled = true
	ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout = 5*time.Second, 5*time.Second, 5*time.Second
	client := redis.NewClient(ro)
	pool := &redigo.Pool{
		MaxIdle:   opts.PoolSize,
		MaxActive: opts.PoolSize,
		Wait:      true,
		Dial: func() (redigo.Conn, error) {
			return redigo.DialURL(opts.RedisURL, redigo.DialConnectTimeout(5*time.Second),
				redigo.DialReadTimeout(5*time.Second), redigo.DialWriteTimeout(5*time.Second))
		},
	}
	cleanup = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, prefix := range []string{ourPrefix, theirPrefix} {
			iter := client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
			for iter.Next(ctx) {
				client.Del(ctx, iter.Val())
			}
		}
		client.Close()
		pool.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("scsbench: redis %s: %w", opts.RedisURL, err)
	}

	payload := make([]byte, opts.PayloadLen)
	rand.Read(payload)

	// statelab: Manager + redisstore (go-redis, compare-and-swap in one Lua call).
	m, err := session.NewManager(redisstore.New(client, redisstore.Options{Prefix: ourPrefix}), session.Config{})
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	ours := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n uint64
		err := m.Update(r.Context(), func(data []byte) ([]byte, error) {
			if data == nil {
				data = append(make([]byte, 8), payload...)
			}
			if len(data) < 8 {
				return nil, errors.New("corrupt session")
			}
			n = binary.BigEndian.Uint64(data) + 1
			binary.BigEndian.PutUint64(data, n)
			return data, nil
		})
		switch {
		case errors.Is(err, session.ErrConflict):
			http.Error(w, err.Error(), http.StatusConflict)
		case err != nil:
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		default:
			w.Write(strconv.AppendUint(nil, n, 10))
		}
	}))

	// scs: SessionManager + scs/redisstore (redigo pool; GET, then
	// MULTI/SET/PEXPIREAT/EXEC at the end of the request).
	sm := scs.New()
	sm.Store = scsredis.NewWithPrefix(pool, theirPrefix)
	sm.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	}
	theirs := sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if !sm.Exists(ctx, "payload") {
			sm.Put(ctx, "payload", payload)
		}
		n := sm.GetInt(ctx, "count") + 1
		sm.Put(ctx, "count", n)
		w.Write(strconv.AppendInt(nil, int64(n), 10))
	}))

	return []Impl{
		{Name: "statelab", Cookie: m.CookieName(), Handler: ours},
		{Name: "scs", Cookie: sm.Cookie.Name, Handler: theirs},
	}, cleanup, nil
}

// Client is one browser of one Impl: it keeps the session cookie.
type Client struct {
	impl   Impl
	cookie string
}

// NewClient returns a client of im, with no session yet, or with the session
// of cookie when it is not empty.
func NewClient(im Impl, cookie string) *Client { return &Client{impl: im, cookie: cookie} }

// Cookie returns the client's session cookie value, "" before the first
// response that set one.
func (c *Client) Cookie() string { return c.cookie }

// Do sends one request in-process, keeps the session cookie, and returns the
// status and the body.
func (c *Client) Do() (int, string) {
	req := httptest.NewRequest("POST", "/", nil)
	if c.cookie != "" {
		req.AddCookie(&http.Cookie{Name: c.impl.Cookie, Value: c.cookie})
	}
	rec := httptest.NewRecorder()
	c.impl.Handler.ServeHTTP(rec, req)
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == c.impl.Cookie {
			c.cookie = ck.Value
		}
	}
	return rec.Code, rec.Body.String()
}

// Throughput runs concurrency clients of im, each with its own session, for
// d, and returns how many requests succeeded and failed, and the elapsed time.
func Throughput(im Impl, concurrency int, d time.Duration) (ok, failed int64, elapsed time.Duration) {
	var okN, failedN atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for range concurrency {
		wg.Go(func() {
			c := NewClient(im, "")
			for time.Now().Before(deadline) {
				if code, _ := c.Do(); code == http.StatusOK {
					okN.Add(1)
				} else {
					failedN.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return okN.Load(), failedN.Load(), time.Since(start)
}

// LostResult is the outcome of LostUpdates.
type LostResult struct {
	Impl       string
	Sent       int // increments sent
	Acked      int // increments answered 200
	Failed     int // increments answered with an error status
	Final      int // the counter's value at the end
	Lost       int // acknowledged increments missing from Final
	Elapsed    time.Duration
	Throughput float64 // increments sent per second
}

// LostUpdates has workers clients of one session each send increments
// requests at once, then reads the counter: every acknowledged increment
// should be in it.
func LostUpdates(im Impl, workers, increments int) (LostResult, error) {
	first := NewClient(im, "")
	if code, body := first.Do(); code != http.StatusOK || body != "1" {
		return LostResult{}, fmt.Errorf("%s: first request: %d %q", im.Name, code, body)
	}
	var ackedN, failedN atomic.Int64
	var wg sync.WaitGroup
	startGate := make(chan struct{})
	for range workers {
		wg.Go(func() {
			c := NewClient(im, first.Cookie())
			<-startGate
			for range increments {
				if code, _ := c.Do(); code == http.StatusOK {
					ackedN.Add(1)
				} else {
					failedN.Add(1)
				}
			}
		})
	}
	start := time.Now()
	close(startGate)
	wg.Wait()
	elapsed := time.Since(start)
	code, body := first.Do()
	if code != http.StatusOK {
		return LostResult{}, fmt.Errorf("%s: final request: %d %q", im.Name, code, body)
	}
	n, err := strconv.Atoi(body)
	if err != nil {
		return LostResult{}, fmt.Errorf("%s: final count %q: %w", im.Name, body, err)
	}
	r := LostResult{
		Impl:       im.Name,
		Sent:       workers * increments,
		Acked:      int(ackedN.Load()),
		Failed:     int(failedN.Load()),
		Final:      n - 2, // the first and the final request each added one
		Elapsed:    elapsed,
		Throughput: float64(workers*increments) / elapsed.Seconds(),
	}
	r.Lost = r.Acked - r.Final
	return r, nil
}
