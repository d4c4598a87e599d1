package scsbench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	scsredis "github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	redigo "github.com/gomodule/redigo/redis"
	"github.com/redis/go-redis/v9"

	"github.com/statelab/statelab/internal/testenv"
	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/redisstore"
)

var (
	workers    = flag.Int("workers", 32, "concurrent requests of one session in the lost-update run")
	increments = flag.Int("increments", 25, "increments each worker makes in the lost-update run")
	payloadLen = flag.Int("payload", 1024, "bytes of session payload besides the counter")
	poolSize   = flag.Int("pool", 64, "Redis connections per client (both libraries)")
)

// impl is one session library behind an http.Handler. Every request adds one
// to a counter kept in the session, next to a fixed payload, and answers 200
// with the new count, or an error status when the update failed.
type impl struct {
	name   string
	cookie string       // the session cookie's name
	h      http.Handler // the application, middleware included
}

// impls builds both libraries on the Redis of STATELAB_TEST_REDIS, each under
// its own fresh key prefix, removed at cleanup.
func impls(tb testing.TB) []impl {
	tb.Helper()
	url := testenv.RedisURL(tb)
	opts, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatalf("parse %s: %v", url, err)
	}
	run := rand.Text()[:10]
	opts.PoolSize = *poolSize
	opts.ContextTimeoutEnabled = true
	opts.ReadTimeout, opts.WriteTimeout = 5*time.Second, 5*time.Second
	client := redis.NewClient(opts)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, prefix := range []string{"statelab-bench-" + run + ":", "scs-bench-" + run + ":"} {
			iter := client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
			for iter.Next(ctx) {
				client.Del(ctx, iter.Val())
			}
		}
		client.Close()
	})
	payload := make([]byte, *payloadLen)
	rand.Read(payload)

	// statelab: Manager + redisstore (go-redis, CAS in one Lua call).
	store := redisstore.New(client, redisstore.Options{Prefix: "statelab-bench-" + run + ":"})
	m, err := session.NewManager(store, session.Config{})
	if err != nil {
		tb.Fatal(err)
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

	// scs: SessionManager + scs/redisstore (redigo pool, GET then MULTI/SET/EXEC).
	pool := &redigo.Pool{
		MaxIdle:   *poolSize,
		MaxActive: *poolSize,
		Wait:      true,
		Dial: func() (redigo.Conn, error) {
			return redigo.DialURL(url, redigo.DialConnectTimeout(5*time.Second),
				redigo.DialReadTimeout(5*time.Second), redigo.DialWriteTimeout(5*time.Second))
		},
	}
	tb.Cleanup(func() { pool.Close() })
	sm := scs.New()
	sm.Store = scsredis.NewWithPrefix(pool, "scs-bench-"+run+":")
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

	return []impl{
		{name: "statelab", cookie: m.CookieName(), h: ours},
		{name: "scs", cookie: sm.Cookie.Name, h: theirs},
	}
}

// client is one browser of one impl.
type client struct {
	impl   impl
	cookie string
}

// do sends one request in-process and keeps the session cookie. It returns
// the status and the body.
func (c *client) do() (int, string) {
	req := httptest.NewRequest("POST", "/", nil)
	if c.cookie != "" {
		req.AddCookie(&http.Cookie{Name: c.impl.cookie, Value: c.cookie})
	}
	rec := httptest.NewRecorder()
	c.impl.h.ServeHTTP(rec, req)
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == c.impl.cookie {
			c.cookie = ck.Value
		}
	}
	return rec.Code, rec.Body.String()
}

// BenchmarkUpdate measures uncontended updates: each parallel worker has its
// own session and increments its counter once per request, read and written
// through Redis by the library's middleware. Run with -cpu to vary the
// workers (16 per GOMAXPROCS).
func BenchmarkUpdate(b *testing.B) {
	for _, im := range impls(b) {
		b.Run(im.name, func(b *testing.B) {
			var failed atomic.Int64
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				c := &client{impl: im}
				for pb.Next() {
					if code, _ := c.do(); code != http.StatusOK {
						failed.Add(1)
					}
				}
			})
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d requests failed", n)
			}
		})
	}
}

// lostUpdates runs workers concurrent clients of one session, each sending
// increments requests, and returns how many were acknowledged (200), how
// many failed with an error status, and the counter's final value.
func lostUpdates(tb testing.TB, im impl, workers, increments int) (acked, failed, final int) {
	tb.Helper()
	first := &client{impl: im}
	if code, body := first.do(); code != http.StatusOK || body != "1" {
		tb.Fatalf("%s: first request: %d %q", im.name, code, body)
	}
	var ackedN, failedN atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range workers {
		wg.Go(func() {
			c := &client{impl: im, cookie: first.cookie}
			<-start
			for range increments {
				if code, _ := c.do(); code == http.StatusOK {
					ackedN.Add(1)
				} else {
					failedN.Add(1)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	code, body := first.do()
	if code != http.StatusOK {
		tb.Fatalf("%s: final request: %d %q", im.name, code, body)
	}
	n, err := strconv.Atoi(body)
	if err != nil {
		tb.Fatalf("%s: final count %q: %v", im.name, body, err)
	}
	// The first and the final request each added one.
	return int(ackedN.Load()), int(failedN.Load()), n - 2
}

// TestLostUpdates sends -workers × -increments concurrent increments of one
// session's counter through each library. statelab must lose none: every
// acknowledged increment is in the final count. scs's figure is only
// reported: it saves the whole session at the end of each request, so
// concurrent requests overwrite each other.
func TestLostUpdates(t *testing.T) {
	for _, im := range impls(t) {
		acked, failed, final := lostUpdates(t, im, *workers, *increments)
		lost := acked - final
		t.Logf("%-8s %d workers × %d increments: acknowledged %d, failed %d, final count %d, lost %d (%.1f%%)",
			im.name, *workers, *increments, acked, failed, final, lost, 100*float64(lost)/float64(max(acked, 1)))
		if im.name == "statelab" {
			if lost != 0 || final > acked {
				t.Errorf("statelab: %d acknowledged increments, final count %d", acked, final)
			}
			if failed != 0 {
				t.Errorf("statelab: %d increments failed (conflict not resolved in %d attempts)", failed, session.DefaultMaxAttempts)
			}
		}
	}
}

// BenchmarkContendedUpdate measures updates when all workers share one
// session: throughput under contention, with lost updates reported as a
// metric (statelab retries conflicts, scs overwrites).
func BenchmarkContendedUpdate(b *testing.B) {
	for _, im := range impls(b) {
		b.Run(im.name, func(b *testing.B) {
			per := max(b.N / *workers, 1)
			b.ResetTimer()
			acked, failed, final := lostUpdates(b, im, *workers, per)
			b.StopTimer()
			b.ReportMetric(float64(acked-final), "lost")
			b.ReportMetric(float64(failed), "failed")
			b.ReportMetric(float64(*workers*per)/b.Elapsed().Seconds(), "req/s")
		})
	}
}
