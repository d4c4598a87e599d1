package session

import (
	"log/slog"
	"sync/atomic"
	"time"
)

// invalidLogInterval is how often at most an invalid session cookie is
// logged at Info level; the others go to Debug (and every one is counted
// in statelab_session_invalid_cookies_total).
const invalidLogInterval = 10 * time.Second

// rateLog lets one Info record through per invalidLogInterval and logs the
// rest at Debug, so that a client sending garbage cookies cannot inflate
// the logs. The next Info record says how many were held back.
type rateLog struct {
	last       atomic.Int64 // unix nanos of the last Info record; 0: none yet
	suppressed atomic.Int64
}

func (l *rateLog) log(logger *slog.Logger, now time.Time, msg string, args ...any) {
	last := l.last.Load()
	if (last == 0 || now.UnixNano()-last >= int64(invalidLogInterval)) && l.last.CompareAndSwap(last, now.UnixNano()) {
		if n := l.suppressed.Swap(0); n > 0 {
			args = append(args, "suppressed_since_last", n)
		}
		logger.Info(msg, args...)
		return
	}
	l.suppressed.Add(1)
	logger.Debug(msg, args...)
}
