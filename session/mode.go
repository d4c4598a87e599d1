package session

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// mode is where a Manager keeps session state: server-side in a Store
// (serverMode, NewManager) or sealed in the client's cookie (clientMode,
// NewClientManager). The Manager's methods do what is common and leave the
// rest to its mode.
type mode interface {
	// adopt takes the request's session from st.raw, the cookie it sent.
	adopt(st *requestState)
	// current returns the request's live session record, and whether
	// there is one; reload forces a fresh read where there is a cache.
	current(ctx context.Context, st *requestState, reload bool) (Record, bool, error)
	// loaded is called after Load returned rec.
	loaded(ctx context.Context, st *requestState, rec Record)
	// update is Manager.Update.
	update(ctx context.Context, st *requestState, fn func([]byte) ([]byte, error)) error
	// renew stores rec, whose idle expiry is already moved, as the
	// request's session under a fresh identity.
	renew(ctx context.Context, st *requestState, rec Record) error
	// destroy deletes the session id (empty: none) wherever it is kept.
	destroy(ctx context.Context, id string) error
	// beforeHeaderLocked runs just before the response header is written,
	// with st.mu held.
	beforeHeaderLocked(st *requestState)
}

var (
	_ mode = (*serverMode)(nil)
	_ mode = (*clientMode)(nil)
)

// serverMode keeps sessions in a Store; the cookie holds a random ID.
type serverMode struct {
	m     *Manager
	store Store
}

// adopt takes a well-formed session ID from the cookie; a malformed one is
// counted and ignored.
func (sm *serverMode) adopt(st *requestState) {
	if validID(st.raw) {
		st.id = st.raw
		return
	}
	sm.m.metrics.invalid.Inc()
	sm.m.invalid.log(sm.m.cfg.Logger, sm.m.cfg.Now(), "session: ignoring malformed session cookie", "cookie_hash", logHash(st.raw))
}

// destroy deletes the record of id.
func (sm *serverMode) destroy(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	if err := sm.store.Delete(ctx, storeKey(id)); err != nil {
		return unavailable("destroy", err)
	}
	return nil
}

// beforeHeaderLocked does nothing: a server-side session's activity is
// written by Load.
func (sm *serverMode) beforeHeaderLocked(*requestState) {}

// update is Manager.Update on a Store: compare-and-swap, retried.
func (sm *serverMode) update(ctx context.Context, st *requestState, fn func([]byte) ([]byte, error)) error {
	m := sm.m
	// Updates of one session queue here, within this process; the store's
	// compare-and-swap still decides between processes.
	st.mu.Lock()
	id := st.id
	st.mu.Unlock()
	if id != "" {
		unlock, err := m.locks.Lock(ctx, id)
		if err != nil {
			return fmt.Errorf("session: update: %w", err)
		}
		defer unlock()
	}
	for attempt := range m.cfg.MaxAttempts {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return err
			}
		}
		// The first attempt may use the record this request already read;
		// compare-and-swap catches it if that is stale.
		rec, ok, err := m.current(ctx, st, attempt > 0)
		if err != nil {
			return err
		}
		next, err := m.apply(rec, ok, fn)
		if err != nil {
			return err
		}
		st.mu.Lock()
		id = st.id
		st.mu.Unlock()
		created := !ok
		if created {
			if id, err = newID(); err != nil {
				return err
			}
		}
		version, err := sm.store.Put(ctx, storeKey(id), next)
		if errors.Is(err, ErrConflict) {
			m.metrics.conflicts.Inc()
			continue
		}
		if err != nil {
			return unavailable("update", err)
		}
		next.Version = version
		m.metrics.updates.Inc()
		st.mu.Lock()
		st.id, st.rec, st.cached = id, next, true
		st.mu.Unlock()
		if created {
			m.metrics.created.Inc()
			return m.setCookie(st, id)
		}
		return nil
	}
	return fmt.Errorf("session: update gave up after %d attempts: %w", m.cfg.MaxAttempts, ErrConflict)
}

// renew is Manager.Renew on a Store: the record under a new ID, the old
// one deleted.
func (sm *serverMode) renew(ctx context.Context, st *requestState, rec Record) error {
	m := sm.m
	st.mu.Lock()
	oldID := st.id
	st.mu.Unlock()
	id, err := newID()
	if err != nil {
		return err
	}
	rec.Version = 0
	version, err := sm.store.Put(ctx, storeKey(id), rec)
	if err != nil {
		return unavailable("renew", err)
	}
	rec.Version = version
	if err := sm.store.Delete(ctx, storeKey(oldID)); err != nil {
		// The new session exists; a leftover old record still expires on
		// its own, but the caller asked for it to be gone now.
		_ = sm.store.Delete(ctx, storeKey(id))
		return unavailable("renew: delete old session", err)
	}
	m.metrics.created.Inc()
	st.mu.Lock()
	st.id, st.rec, st.cached = id, rec, true
	st.mu.Unlock()
	return m.setCookie(st, id)
}

// current reads the request's session from the store, or from this
// request's cached copy unless reload.
func (sm *serverMode) current(ctx context.Context, st *requestState, reload bool) (Record, bool, error) {
	m := sm.m
	st.mu.Lock()
	id, rec, cached := st.id, st.rec, st.cached
	st.mu.Unlock()
	if id == "" {
		return Record{}, false, nil
	}
	if cached && !reload {
		return rec, true, nil
	}
	rec, err := sm.store.Get(ctx, storeKey(id))
	if errors.Is(err, ErrNotFound) {
		// Unknown, expired or deleted: the ID is never adopted again; the
		// next Update issues a fresh one.
		m.cfg.Logger.Debug("session: unknown or expired session ID", "cookie_hash", logHash(id))
		sm.forget(st, id)
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, unavailable("load", err)
	}
	if rec.Expired(m.cfg.Now()) {
		sm.forget(st, id)
		return Record{}, false, nil
	}
	st.mu.Lock()
	if st.id == id {
		st.rec, st.cached = rec, true
	}
	st.mu.Unlock()
	return rec, true, nil
}

// forget drops id from the request state if it is still the current one.
func (sm *serverMode) forget(st *requestState, id string) {
	st.mu.Lock()
	if st.id == id {
		st.id, st.rec, st.cached = "", Record{}, false
	}
	st.mu.Unlock()
}

// loaded moves the record's idle expiry forward when it has moved
// enough to be worth a write. Failures are logged, not returned: the data was
// read, and the next request tries again.
func (sm *serverMode) loaded(ctx context.Context, st *requestState, rec Record) {
	m := sm.m
	now := m.cfg.Now()
	want := m.idleExpiry(now, rec.AbsoluteExpiry)
	if want.Sub(rec.IdleExpiry) < m.touchEvery() {
		return
	}
	st.mu.Lock()
	id := st.id
	st.mu.Unlock()
	err := sm.store.Touch(ctx, storeKey(id), want)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			m.cfg.Logger.Warn("session: touch failed", "key_hash", logHash(id), "error", err)
		}
		return
	}
	st.mu.Lock()
	if st.id == id && st.cached {
		st.rec.IdleExpiry = want
	}
	st.mu.Unlock()
}

// clientMode keeps sessions sealed in the client's cookie.
type clientMode struct {
	m      *Manager
	sealer Sealer
}

// adopt keeps the cookie as it is: it is opened on first use.
func (cm *clientMode) adopt(*requestState) {}

// loaded does nothing: beforeHeaderLocked reseals a session read but not
// rewritten.
func (cm *clientMode) loaded(context.Context, *requestState, Record) {}

// renew reseals the record (a new nonce); the old cookie stays valid until
// it expires, because nothing server-side can revoke it.
func (cm *clientMode) renew(_ context.Context, st *requestState, rec Record) error {
	rec.Version++
	return cm.sealAndSet(st, rec)
}

// destroy has nothing to delete: the cookie is expired by the caller.
func (cm *clientMode) destroy(context.Context, string) error { return nil }

// beforeHeaderLocked reseals a session that was read but not rewritten when
// its idle expiry is due to move, so that reading counts as activity.
func (cm *clientMode) beforeHeaderLocked(st *requestState) {
	m := cm.m
	if !st.live || st.cookieSet {
		return
	}
	rec := st.rec
	want := m.idleExpiry(m.cfg.Now(), rec.AbsoluteExpiry)
	if want.Sub(rec.IdleExpiry) < m.touchEvery() {
		return
	}
	rec.IdleExpiry = want
	value, err := cm.sealer.Seal(rec)
	if err == nil {
		err = m.writeCookieLocked(st, &http.Cookie{Value: value})
	}
	if err != nil {
		m.cfg.Logger.Warn("session: reseal on activity failed", "error", err)
	}
}

// update is Manager.Update on a sealed cookie: open, apply, seal (no
// conflict detection: the last response the client keeps wins).
func (cm *clientMode) update(ctx context.Context, st *requestState, fn func([]byte) ([]byte, error)) error {
	m := cm.m
	rec, ok, err := cm.current(ctx, st, false)
	if err != nil {
		return err
	}
	next, err := m.apply(rec, ok, fn)
	if err != nil {
		return err
	}
	next.Version++
	if err := cm.sealAndSet(st, next); err != nil {
		return err
	}
	m.metrics.updates.Inc()
	if !ok {
		m.metrics.created.Inc()
	}
	return nil
}

// current opens the request's sealed cookie once and returns its record
// and whether it is live; there is nothing to reload.
func (cm *clientMode) current(_ context.Context, st *requestState, _ bool) (Record, bool, error) {
	m := cm.m
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.opened {
		return st.rec, st.live, nil
	}
	st.opened = true
	if st.raw == "" {
		return Record{}, false, nil
	}
	rec, err := cm.sealer.Open(st.raw, m.cfg.Now())
	switch {
	case err == nil:
		st.rec, st.live = rec, true
	case errors.Is(err, ErrNotFound):
		m.cfg.Logger.Debug("session: expired sealed cookie", "cookie_hash", logHash(st.raw))
	default:
		m.metrics.invalid.Inc()
		m.invalid.log(m.cfg.Logger, m.cfg.Now(), "session: ignoring invalid session cookie",
			"cookie_hash", logHash(st.raw), "error", err)
	}
	return st.rec, st.live, nil
}

// sealAndSet seals rec into the session cookie of a client-held Manager.
func (cm *clientMode) sealAndSet(st *requestState, rec Record) error {
	m := cm.m
	value, err := cm.sealer.Seal(rec)
	if err != nil {
		return fmt.Errorf("session: seal: %w", err)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := m.writeCookieLocked(st, &http.Cookie{Value: value}); err != nil {
		return err
	}
	st.rec, st.live, st.opened = rec, true, true
	return nil
}
