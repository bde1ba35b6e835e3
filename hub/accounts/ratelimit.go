package accounts

import (
	"sync"
	"time"
)

// Limiter slows down password guessing: after FreeFailures failed logins
// for one key (an e-mail, a client address) each further attempt must
// wait BaseDelay, doubling at each failure up to MaxDelay. A success
// clears the key. It keeps its counts in memory: a restart forgets them,
// which costs a guesser a restart of the hub they cannot cause.
type Limiter struct {
	FreeFailures int
	BaseDelay    time.Duration
	MaxDelay     time.Duration

	mu   sync.Mutex
	keys map[string]*attempts
}

type attempts struct {
	failures int
	last     time.Time
}

// Defaults of NewLimiter: 5 failures free, then 1 min, 2 min, 4 min …
// up to one hour.
const (
	DefaultFreeFailures = 5
	DefaultBaseDelay    = time.Minute
	DefaultMaxDelay     = time.Hour
)

// maxKeys bounds the limiter's memory under a spray of addresses; the
// oldest keys are forgotten first.
const maxKeys = 100_000

// NewLimiter returns a limiter with the default thresholds.
func NewLimiter() *Limiter {
	return &Limiter{FreeFailures: DefaultFreeFailures, BaseDelay: DefaultBaseDelay, MaxDelay: DefaultMaxDelay}
}

// Wait returns how long key must still wait before its next attempt at
// now (0: it may try).
func (l *Limiter) Wait(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.keys[key]
	if a == nil || a.failures < l.FreeFailures {
		return 0
	}
	d := l.BaseDelay << min(a.failures-l.FreeFailures, 30)
	if d > l.MaxDelay || d <= 0 {
		d = l.MaxDelay
	}
	if left := a.last.Add(d).Sub(now); left > 0 {
		return left
	}
	return 0
}

// Fail records a failed attempt of key at now.
func (l *Limiter) Fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.keys == nil {
		l.keys = map[string]*attempts{}
	}
	a := l.keys[key]
	if a == nil {
		if len(l.keys) >= maxKeys {
			l.forgetOldestLocked()
		}
		a = &attempts{}
		l.keys[key] = a
	}
	a.failures++
	a.last = now
}

// Succeed clears key's failures.
func (l *Limiter) Succeed(key string) {
	l.mu.Lock()
	delete(l.keys, key)
	l.mu.Unlock()
}

func (l *Limiter) forgetOldestLocked() {
	var oldest string
	var at time.Time
	for k, a := range l.keys {
		if oldest == "" || a.last.Before(at) {
			oldest, at = k, a.last
		}
	}
	delete(l.keys, oldest)
}
