package stores

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/statelab/statelab/session"
)

// ErrNotOpenYet is wrapped (together with session.ErrUnavailable) by every
// call to a store opened with OpenLate before its backend could be opened.
var ErrNotOpenYet = errors.New("stores: store not reachable yet")

// opener opens a store once: the store, and what closes it.
type opener func(ctx context.Context) (session.Store, func() error, error)

// lateStore is a session.Store whose backend is opened in the background,
// retried until it succeeds: until then every call fails with
// ErrNotOpenYet and session.ErrUnavailable (the app answers 503, /readyz is
// not ready), afterwards every call goes to the backend.
type lateStore struct {
	inner   atomic.Pointer[session.Store]
	lastErr atomic.Pointer[error]
	closeFn func() error // set with inner, read after done

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

var (
	_ session.Store   = (*lateStore)(nil)
	_ session.Pinger  = (*lateStore)(nil)
	_ session.Counter = (*lateStore)(nil)
)

// openLate starts opening a store with open in the background, every retry
// until it succeeds, each attempt bounded by attemptTimeout. first is the
// error of the attempt the caller already made.
func openLate(open opener, first error, retry, attemptTimeout time.Duration, log *slog.Logger) *lateStore {
	ctx, cancel := context.WithCancel(context.Background())
	l := &lateStore{cancel: cancel, done: make(chan struct{})}
	l.lastErr.Store(&first)
	go l.loop(ctx, open, retry, attemptTimeout, log)
	return l
}

func (l *lateStore) loop(ctx context.Context, open opener, retry, attemptTimeout time.Duration, log *slog.Logger) {
	defer close(l.done)
	t := time.NewTicker(retry)
	defer t.Stop()
	for attempt := 2; ; attempt++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		s, closeFn, err := open(actx)
		cancel()
		if err == nil {
			l.closeFn = closeFn
			l.inner.Store(&s)
			log.Info("stores: store reachable; serving", "attempts", attempt)
			return
		}
		l.lastErr.Store(&err)
		if ctx.Err() != nil {
			return
		}
		log.Warn("stores: store still not reachable; retrying", "attempt", attempt, "retry", retry, "err", err)
	}
}

// store returns the backend, or the error to fail a call with.
func (l *lateStore) store(op string) (session.Store, error) {
	if s := l.inner.Load(); s != nil {
		return *s, nil
	}
	return nil, fmt.Errorf("stores: %s: %w: %w (last attempt: %w)", op, session.ErrUnavailable, ErrNotOpenYet, *l.lastErr.Load())
}

// Get implements session.Store.
func (l *lateStore) Get(ctx context.Context, key string) (session.Record, error) {
	s, err := l.store("get")
	if err != nil {
		return session.Record{}, err
	}
	return s.Get(ctx, key)
}

// Put implements session.Store.
func (l *lateStore) Put(ctx context.Context, key string, rec session.Record) (uint64, error) {
	s, err := l.store("put")
	if err != nil {
		return 0, err
	}
	return s.Put(ctx, key, rec)
}

// Touch implements session.Store.
func (l *lateStore) Touch(ctx context.Context, key string, idleExpiry time.Time) error {
	s, err := l.store("touch")
	if err != nil {
		return err
	}
	return s.Touch(ctx, key, idleExpiry)
}

// Delete implements session.Store.
func (l *lateStore) Delete(ctx context.Context, key string) error {
	s, err := l.store("delete")
	if err != nil {
		return err
	}
	return s.Delete(ctx, key)
}

// Ping implements session.Pinger: not ready until the backend is open, then
// the backend's answer (nil if it cannot be pinged).
func (l *lateStore) Ping(ctx context.Context) error {
	s, err := l.store("ping")
	if err != nil {
		return err
	}
	if p, ok := s.(session.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// Count implements session.Counter.
func (l *lateStore) Count(ctx context.Context) (int, error) {
	s, err := l.store("count")
	if err != nil {
		return 0, err
	}
	c, ok := s.(session.Counter)
	if !ok {
		return 0, fmt.Errorf("stores: count: %T cannot count its sessions", s)
	}
	return c.Count(ctx)
}

// Close stops retrying and closes the backend if it was opened.
func (l *lateStore) Close() error {
	var err error
	l.once.Do(func() {
		l.cancel()
		<-l.done
		if l.inner.Load() != nil && l.closeFn != nil {
			err = l.closeFn()
		}
	})
	return err
}

// LogRedisTo sends go-redis's own log lines (a failed dial of every pooled
// connection while Redis is down, for one) to log at debug level instead of
// the standard logger. go-redis has one logger per process.
func LogRedisTo(log *slog.Logger) { redis.SetLogger(redisLogger{log}) }

type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "go-redis: "+fmt.Sprintf(format, v...))
}
