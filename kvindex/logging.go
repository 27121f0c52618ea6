package kvindex

import (
	"log/slog"
	"sync"
	"time"
)

// rateLog logs a recurring warning (malformed input from the network) at most once a
// second, with the number of lines left out, so that a flood of garbage cannot flood the
// log. It counts every occurrence. Safe for concurrent use.
type rateLog struct {
	mu         sync.Mutex // protects the fields below
	last       time.Time
	suppressed int
	count      uint64
}

func (r *rateLog) warn(l *slog.Logger, msg string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.count++
	now := time.Now()
	if now.Sub(r.last) < time.Second {
		r.suppressed++
		return
	}
	l.Warn(msg, append(args, "suppressed", r.suppressed)...)
	r.last, r.suppressed = now, 0
}

func (r *rateLog) total() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count
}
