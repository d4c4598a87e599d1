package session

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/statelab/statelab/session/internal/keylock"
)

// Errors a Manager returns besides the Store and Sealer errors.
var (
	// ErrHeaderWritten is returned by Update, Renew and Destroy when they
	// must set the session cookie but the handler has already written the
	// response header. The store change, if any, has been made; the client
	// did not get the cookie.
	ErrHeaderWritten = errors.New("session: response header already written")

	// ErrNoHandler is returned when a Manager method is given a context that
	// did not come from a request passed through that Manager's Handler.
	ErrNoHandler = errors.New("session: context does not carry this manager's session (wrap the handler with Manager.Handler)")
)

// SecureMode says when the session cookie carries the Secure attribute.
type SecureMode int

const (
	// SecureAuto marks the cookie Secure when the request came over TLS
	// (r.TLS is set) or through a proxy that says so with
	// X-Forwarded-Proto: https.
	SecureAuto SecureMode = iota
	// SecureAlways always marks the cookie Secure.
	SecureAlways
	// SecureNever never marks the cookie Secure (plain-HTTP development only).
	SecureNever
)

// Defaults for the zero values of Config.
const (
	DefaultCookieName      = "statelab_session"
	DefaultIdleTimeout     = 30 * time.Minute
	DefaultAbsoluteTimeout = 24 * time.Hour
	DefaultMaxAttempts     = 16
)

// Config configures a Manager. Zero values mean the documented defaults.
type Config struct {
	// CookieName is the session cookie's name; default "statelab_session".
	// With HostPrefix the cookie is "__Host-"+CookieName.
	CookieName string

	// HostPrefix uses the __Host- cookie prefix, which makes browsers insist
	// on Secure, Path=/ and no Domain: a sibling subdomain cannot plant or
	// overwrite the cookie. It implies Secure whatever the Secure field says.
	HostPrefix bool

	// IdleTimeout ends a session after this long without activity (a request
	// that calls Load or Update); default 30m.
	IdleTimeout time.Duration

	// AbsoluteTimeout ends a session this long after it was created, whatever
	// its activity; default 24h. Renew keeps it.
	AbsoluteTimeout time.Duration

	// Secure says when the cookie is marked Secure; default SecureAuto.
	Secure SecureMode

	// SameSite is the cookie's SameSite attribute; zero means
	// http.SameSiteLaxMode. http.SameSiteNoneMode needs Secure: SecureAlways.
	SameSite http.SameSite

	// MaxAttempts bounds Update's compare-and-swap attempts before it returns
	// ErrConflict; default 16.
	MaxAttempts int

	// Logger receives the Manager's log lines (ignored cookies, failed
	// touches); default slog.Default(). Cookie values are never logged, only a
	// short SHA-256 fingerprint.
	Logger *slog.Logger

	// Registerer, when set, is where the Manager registers its Prometheus
	// counters (statelab_session_*). Nil means the metrics are not exported.
	Registerer prometheus.Registerer

	// Now is the Manager's clock; default time.Now. Tests set it to move
	// through idle and absolute timeouts without sleeping.
	Now func() time.Time
}

// withDefaults returns cfg with its zero values replaced by the defaults, or
// an error naming the first invalid field.
func (cfg Config) withDefaults() (Config, error) {
	cfg.CookieName = cmp.Or(cfg.CookieName, DefaultCookieName)
	cfg.IdleTimeout = cmp.Or(cfg.IdleTimeout, DefaultIdleTimeout)
	cfg.AbsoluteTimeout = cmp.Or(cfg.AbsoluteTimeout, DefaultAbsoluteTimeout)
	cfg.MaxAttempts = cmp.Or(cfg.MaxAttempts, DefaultMaxAttempts)
	cfg.SameSite = cmp.Or(cfg.SameSite, http.SameSiteLaxMode)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch {
	case !validCookieName(cfg.CookieName):
		return cfg, fmt.Errorf("session: invalid cookie name %q", cfg.CookieName)
	case cfg.IdleTimeout < 0:
		return cfg, fmt.Errorf("session: negative IdleTimeout %v", cfg.IdleTimeout)
	case cfg.AbsoluteTimeout < 0:
		return cfg, fmt.Errorf("session: negative AbsoluteTimeout %v", cfg.AbsoluteTimeout)
	case cfg.MaxAttempts < 0:
		return cfg, fmt.Errorf("session: negative MaxAttempts %d", cfg.MaxAttempts)
	case cfg.Secure < SecureAuto || cfg.Secure > SecureNever:
		return cfg, fmt.Errorf("session: unknown SecureMode %d", cfg.Secure)
	}
	if cfg.HostPrefix {
		cfg.CookieName = "__Host-" + cfg.CookieName
		cfg.Secure = SecureAlways
	}
	if cfg.SameSite == http.SameSiteNoneMode && cfg.Secure != SecureAlways {
		// Browsers drop SameSite=None cookies that are not Secure.
		return cfg, errors.New("session: SameSite=None needs Secure: SecureAlways (or HostPrefix)")
	}
	return cfg, nil
}

// validCookieName reports whether name is an RFC 6265 token.
func validCookieName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f {
			return false
		}
		switch c {
		case '(', ')', '<', '>', '@', ',', ';', ':', '\\', '"', '/', '[', ']', '?', '=', '{', '}':
			return false
		}
	}
	return true
}

// Manager issues, reads, updates, renews and destroys sessions for HTTP
// handlers. It keeps the state either in a Store (NewManager: the cookie
// holds only a random ID) or in the cookie itself, sealed (NewClientManager).
// Handlers see the same API either way. A Manager is safe for concurrent use.
type Manager struct {
	mode    mode // server-side (a Store) or client-held (a Sealer)
	cfg     Config
	metrics *metrics
	// locks serialise the Updates of one session within this process. The
	// store's compare-and-swap is what makes concurrent updates safe,
	// across processes too; the lock only keeps requests of one session on
	// one replica from colliding over and over: without it, 32 requests of
	// one session retry in a storm and the unlucky ones run out of
	// attempts; with it they queue in arrival order and conflicts arise
	// only between replicas.
	locks *keylock.Map
	// invalid rate-limits the Info logs of invalid cookies.
	invalid rateLog
}

// NewManager returns a Manager that keeps session state in store. The
// session cookie carries only a random 256-bit ID; the store holds the record
// under the ID's SHA-256.
func NewManager(store Store, cfg Config) (*Manager, error) {
	if store == nil {
		return nil, errors.New("session: NewManager needs a Store")
	}
	m, err := newManager(cfg)
	if err != nil {
		return nil, err
	}
	m.mode = &serverMode{m: m, store: store}
	return m, nil
}

// NewClientManager returns a Manager that keeps session state sealed in the
// client's cookie: no server-side storage, any replica can serve any request,
// but concurrent updates of one session are not detected (the last response
// the client keeps wins) and a cookie cannot be revoked before it expires.
func NewClientManager(sealer Sealer, cfg Config) (*Manager, error) {
	if sealer == nil {
		return nil, errors.New("session: NewClientManager needs a Sealer")
	}
	m, err := newManager(cfg)
	if err != nil {
		return nil, err
	}
	m.mode = &clientMode{m: m, sealer: sealer}
	return m, nil
}

// newManager returns a Manager without its mode.
func newManager(cfg Config) (*Manager, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	met, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Manager{cfg: cfg, metrics: met, locks: keylock.New()}, nil
}

// CookieName returns the name of the session cookie, including the __Host-
// prefix when Config.HostPrefix is set.
func (m *Manager) CookieName() string { return m.cfg.CookieName }

// Load returns the session's data, or (nil, nil) when the request has no live
// session (no cookie, unknown, expired, forged). Load never creates a session
// and never sets a cookie. Errors wrap ErrUnavailable.
//
// On a server-side Manager, Load counts as activity: it moves the record's
// idle expiry forward (at most about once a minute per session). On a
// client-held Manager the middleware reseals the cookie with a later idle
// expiry just before the response header is written.
func (m *Manager) Load(ctx context.Context) ([]byte, error) {
	st, err := m.state(ctx)
	if err != nil {
		return nil, err
	}
	rec, ok, err := m.current(ctx, st, false)
	if err != nil || !ok {
		return nil, err
	}
	m.mode.loaded(ctx, st, rec)
	return append([]byte{}, rec.Data...), nil // non-nil: the session exists
}

// Update applies fn to the current data (nil when there is no session yet)
// and stores the result with compare-and-swap; on ErrConflict it re-reads
// and re-applies fn (bounded attempts, jittered back-off), so concurrent
// Updates of one session all take effect. Within one process, Updates of one
// session also queue on a per-session lock, so that conflicts arise only
// between processes (replicas) sharing the store. fn may run more than once;
// it must not keep data, and must not call the Manager.
//
// When there is no session it creates one with a fresh 256-bit ID (strict
// mode: an ID the server never issued is never adopted) and sets the cookie.
// If fn returns an error, nothing is written and that error is returned
// unchanged (errors.Is works). Store failures wrap ErrUnavailable; giving up
// after MaxAttempts returns ErrConflict. Update must be called before the
// handler writes its response header when it may set a cookie (always, in
// client-held mode), otherwise it returns ErrHeaderWritten.
//
// On a client-held Manager it opens the cookie, applies fn, seals and sets
// the cookie (no conflict detection: last writer wins); a result over the
// cookie budget returns an error wrapping ErrTooLarge.
func (m *Manager) Update(ctx context.Context, fn func(data []byte) ([]byte, error)) error {
	st, err := m.state(ctx)
	if err != nil {
		return err
	}
	return m.mode.update(ctx, st, fn)
}

// Renew gives the request's session a new ID and destroys the old one,
// keeping the data and the absolute expiry. Call it when privileges change
// (login, logout of an elevated role) so that an ID an attacker planted or
// observed before stops working. Without a live session Renew does nothing.
// On a client-held Manager it reseals the cookie (a new nonce); the old
// cookie stays valid until it expires, because nothing server-side can
// revoke it.
func (m *Manager) Renew(ctx context.Context) error {
	st, err := m.state(ctx)
	if err != nil {
		return err
	}
	rec, ok, err := m.current(ctx, st, true)
	if err != nil || !ok {
		return err
	}
	now := m.cfg.Now()
	rec.IdleExpiry = m.idleExpiry(now, rec.AbsoluteExpiry)
	return m.mode.renew(ctx, st, rec)
}

// Destroy deletes the request's session and expires its cookie. Without a
// session it only expires a cookie the request carried, if any.
func (m *Manager) Destroy(ctx context.Context) error {
	st, err := m.state(ctx)
	if err != nil {
		return err
	}
	st.mu.Lock()
	id := st.id
	st.mu.Unlock()
	if err := m.mode.destroy(ctx, id); err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.id, st.rec, st.cached, st.live, st.opened = "", Record{}, false, false, true
	if st.raw == "" && !st.cookieSet {
		return nil
	}
	return m.writeCookieLocked(st, &http.Cookie{Value: "", MaxAge: -1})
}

// current returns the request's live session record, and whether there is
// one. reload forces a fresh read from the store instead of this request's
// cached copy (server-side).
func (m *Manager) current(ctx context.Context, st *requestState, reload bool) (Record, bool, error) {
	return m.mode.current(ctx, st, reload)
}

// touchEvery is how far the idle expiry must have fallen behind before Load
// writes it: a tenth of the idle timeout, at most a minute.
func (m *Manager) touchEvery() time.Duration {
	return min(m.cfg.IdleTimeout/10, time.Minute)
}

// apply runs fn on the data of rec (nil when there is no session yet, !ok)
// and returns the record to write: fn's data, rec's version, the idle
// expiry moved to now and the absolute expiry kept, or started for a new
// session. fn's error is returned unchanged.
func (m *Manager) apply(rec Record, ok bool, fn func([]byte) ([]byte, error)) (Record, error) {
	var old []byte
	if ok {
		old = append([]byte{}, rec.Data...) // non-nil: the session exists
	}
	data, err := fn(old)
	if err != nil {
		return Record{}, err
	}
	now := m.cfg.Now()
	if !ok {
		rec = Record{AbsoluteExpiry: now.Add(m.cfg.AbsoluteTimeout)}
	}
	return Record{
		Data:           data,
		Version:        rec.Version,
		IdleExpiry:     m.idleExpiry(now, rec.AbsoluteExpiry),
		AbsoluteExpiry: rec.AbsoluteExpiry,
	}, nil
}

// idleExpiry is the idle expiry of a session active at now: IdleTimeout from
// now, but never past its absolute expiry.
func (m *Manager) idleExpiry(now, absolute time.Time) time.Time {
	idle := now.Add(m.cfg.IdleTimeout)
	if !absolute.IsZero() && absolute.Before(idle) {
		return absolute
	}
	return idle
}

// backoff waits before retry number attempt (1-based) of a conflicted
// Update: a random time up to 1ms<<attempt, capped at maxBackoff ("full
// jitter"), so that contenders spread out instead of colliding again. The cap
// is generous because the window must hold every contender's read and write:
// 32 requests of one session on a loaded machine need ~100ms.
func backoff(ctx context.Context, attempt int) error {
	limit := min(time.Millisecond<<min(attempt, 10), maxBackoff)
	t := time.NewTimer(rand.N(limit) + 1)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("session: update: %w", ctx.Err())
	case <-t.C:
		return nil
	}
}

// maxBackoff caps one back-off wait of Update.
const maxBackoff = 128 * time.Millisecond

// unavailable wraps a store error so that it matches ErrUnavailable (stores
// already do this for backend failures; a cancelled context is wrapped here).
func unavailable(op string, err error) error {
	if errors.Is(err, ErrUnavailable) {
		return fmt.Errorf("session: %s: %w", op, err)
	}
	return fmt.Errorf("session: %s: %w: %w", op, ErrUnavailable, err)
}
