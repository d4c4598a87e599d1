package replstore

import (
	"fmt"

	"github.com/statelab/statelab/session"
)

// writeQuorum is the arithmetic of one write: how many copies a key has
// (N) and how many of them must hold a write before it is acknowledged (W).
type writeQuorum struct {
	// copies is N: the key's configured copies (Backups+1, or every member
	// with Backups -1), capped by the members this replica knows, dead ones
	// included. A member that died or is cut off still counts, so N does
	// not shrink on the side of a partition that lost members.
	copies int
	// need is W: majority floor(N/2)+1, one 1, or the configured count.
	need int
}

// quorumFor returns the write quorum under Config.Quorum q with backups
// (Config.Backups) when this replica knows known members (alive, or dead
// but not left gracefully, itself included).
func quorumFor(q, backups, known int) writeQuorum {
	n := backups + 1
	if backups < 0 || n > known {
		n = known
	}
	switch q {
	case QuorumMajority:
		return writeQuorum{copies: n, need: n/2 + 1}
	case QuorumOne:
		return writeQuorum{copies: n, need: 1}
	}
	return writeQuorum{copies: n, need: q}
}

// reachable returns nil when a write to a key whose live owners are own
// can reach the quorum, otherwise an error wrapping session.ErrUnavailable
// and ErrNoQuorum that says why. It is checked before anything is sent, so
// a refused write changes nothing anywhere.
func (wq writeQuorum) reachable(own int) error {
	switch {
	case wq.need > wq.copies:
		return fmt.Errorf("replstore: quorum is %d copies but keys have %d (the cluster knows too few members): %w: %w",
			wq.need, wq.copies, session.ErrUnavailable, ErrNoQuorum)
	case own < wq.need:
		return fmt.Errorf("replstore: %d of the key's %d copies are on live members, quorum is %d: %w: %w",
			own, wq.copies, wq.need, session.ErrUnavailable, ErrNoQuorum)
	}
	return nil
}

// refused returns the error of a write that acked copies acknowledged, fewer
// than the quorum, wrapping session.ErrUnavailable, ErrNoQuorum and cause
// (the backups' errors).
func (wq writeQuorum) refused(acked int, cause error) error {
	err := fmt.Errorf("replstore: %d of %d copies acknowledged the write, quorum is %d: %w: %w",
		acked, wq.copies, wq.need, session.ErrUnavailable, ErrNoQuorum)
	if cause != nil {
		err = fmt.Errorf("%w (%w)", err, cause)
	}
	return err
}
