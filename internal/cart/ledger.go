package cart

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/statelab/statelab/session"
)

// ErrReplayed is returned by Ledger.Claim for a cart nonce that was already
// checked out as another order: the request carries an old copy of a cart,
// such as a sealed cookie saved before checkout and sent again.
var ErrReplayed = errors.New("cart: this cart was already checked out")

// DefaultLedgerTTL is how long a Ledger remembers a checked-out cart when
// NewLedger is given zero: the session Manager's default absolute timeout,
// the longest a sealed cookie can stay valid (a client that keeps using a
// saved cookie has it resealed with a later idle expiry, but never past
// its absolute expiry).
const DefaultLedgerTTL = session.DefaultAbsoluteTimeout

// ledgerKeyPrefix keeps the ledger's keys apart from session keys (hex
// digests) when the ledger shares a store with sessions.
const ledgerKeyPrefix = "checkout_"

// Ledger remembers which carts were checked out, so that a cart held by
// the client (a sealed cookie) can be ordered only once. It is the one
// piece of server-side state the client strategy then needs: one
// create-only write per checkout, nothing on any other request. The
// entries live in a session.Store every replica shares (Redis, a
// database), each for the TTL, and expire on their own.
type Ledger struct {
	store session.Store
	ttl   time.Duration
	now   func() time.Time
}

// NewLedger returns a Ledger over store whose entries live ttl (zero:
// DefaultLedgerTTL). ttl must be at least the sessions' absolute timeout,
// or a cookie saved before a checkout outlives the entry that refuses it.
func NewLedger(store session.Store, ttl time.Duration) *Ledger {
	if ttl <= 0 {
		ttl = DefaultLedgerTTL
	}
	return &Ledger{store: store, ttl: ttl, now: time.Now}
}

// Claim records that the cart named nonce is being checked out as order
// orderID. It returns nil the first time, and again for the same order (a
// retried compare-and-swap); ErrReplayed, naming the first order, when the
// nonce was already checked out as another order. A store failure wraps
// session.ErrUnavailable (the checkout is then answered 503 and nothing is
// ordered).
func (l *Ledger) Claim(ctx context.Context, nonce, orderID string) error {
	key := ledgerKeyPrefix + nonce
	// A second attempt only when the entry expired between Put and Get.
	for range 2 {
		until := l.now().Add(l.ttl)
		_, err := l.store.Put(ctx, key, session.Record{Data: []byte(orderID), IdleExpiry: until, AbsoluteExpiry: until})
		if !errors.Is(err, session.ErrConflict) {
			return err
		}
		rec, err := l.store.Get(ctx, key)
		switch {
		case errors.Is(err, session.ErrNotFound):
			continue
		case err != nil:
			return err
		case string(rec.Data) == orderID:
			return nil
		}
		return fmt.Errorf("%w as order %s", ErrReplayed, rec.Data)
	}
	return ErrReplayed
}
