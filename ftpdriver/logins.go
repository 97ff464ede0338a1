package ftpdriver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Failed logins cost the client's address time, the way vsftpd makes them
// cost (delay_failed_login, max_login_fails), counted per address as
// fail2ban counts them, so that one guesser cannot lock the owner out from
// another address:
//
//   - every failed login is answered only after LoginFailDelay, and an
//     address tries one password at a time: a guesser with 32 connections
//     gets no more tries a second than with one;
//   - MaxLoginFails failures in a row refuse the address for LoginLockout,
//     doubled for each further round (up to an hour): its logins are
//     answered 530 without a look at the password, and its new
//     connections 421 before they take a session's place;
//   - the log gets the first failure from an address, a line when it is
//     refused, and a summary once it has been quiet for loginForget (or
//     at shutdown); not a line per try.

// loginForget is how long an address's failures are remembered after the
// last one, and the longest lockout.
const loginForget = time.Hour

// maxLoginRecords bounds the addresses remembered; past it the one quiet
// for longest is forgotten first.
const maxLoginRecords = 4096

var (
	// errWrongLogin is the reply to a wrong user name or password.
	errWrongLogin = errors.New("wrong user name or password")
	// errLoginTimeout: the client took longer than LoginTimeout to log in.
	errLoginTimeout = errors.New("login time limit passed")
)

// lockedOutError is the reply to a login from an address that is refused.
type lockedOutError struct{ left time.Duration }

func (e lockedOutError) Error() string {
	return fmt.Sprintf("too many failed logins from your address: try again in %v", roundUp(e.left))
}

func roundUp(d time.Duration) time.Duration {
	return (d + time.Second - 1).Truncate(time.Second)
}

// loginGuard keeps the failed logins of each client address.
type loginGuard struct {
	delay    time.Duration // after each failure
	maxFails int           // failures in a row before a lockout
	lockout  time.Duration // the first lockout
	log      *slog.Logger
	now      func() time.Time

	mu      sync.Mutex
	addrs   map[string]*loginRecord
	stopped bool
}

// loginRecord is one address's failures.
type loginRecord struct {
	turn chan struct{} // held while one of its logins is checked

	users       int // goroutines holding the record
	streak      int // failures since the last success or lockout
	total       int
	refused     int // logins and connections refused while locked out
	lockouts    int
	first, last time.Time // failures
	lockedUntil time.Time
	forget      *time.Timer
}

func newLoginGuard(opts Options) *loginGuard {
	return &loginGuard{
		delay:    opts.LoginFailDelay,
		maxFails: opts.MaxLoginFails,
		lockout:  opts.LoginLockout,
		log:      opts.Logger,
		now:      time.Now,
		addrs:    map[string]*loginRecord{},
	}
}

// host is the address part of a client's net.Addr: a client's ports change
// with every connection.
func host(a net.Addr) string {
	if a == nil {
		return ""
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

// lockedOut reports how long addr is still refused; 0 when it is not. A
// refused connection counts in the address's summary.
func (g *loginGuard) lockedOut(addr string) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.addrs[addr]
	if r == nil {
		return 0
	}
	left := r.lockedUntil.Sub(g.now())
	if left <= 0 {
		return 0
	}
	r.refused++
	return left
}

// attempt runs one login from addr: it waits for the address's turn (or
// ctx), refuses a locked-out address without calling check, and otherwise
// calls check; a failure is counted and answered only after the delay.
// It returns nil for a login check accepted, errWrongLogin,
// lockedOutError, or ctx's error.
func (g *loginGuard) attempt(ctx context.Context, addr, user string, check func() bool) error {
	r := g.hold(addr)
	defer g.release(addr, r)
	select {
	case r.turn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.turn }()

	g.mu.Lock()
	if left := r.lockedUntil.Sub(g.now()); left > 0 {
		r.refused++
		g.mu.Unlock()
		return lockedOutError{left}
	}
	g.mu.Unlock()

	if check() {
		g.mu.Lock()
		r.streak = 0
		g.mu.Unlock()
		return nil
	}

	g.mu.Lock()
	now := g.now()
	r.streak++
	r.total++
	if r.total == 1 {
		r.first = now
		g.log.Warn("login refused: wrong user name or password (further failures from this address are counted, and summarized once it is quiet)",
			"remote", addr, "user", user)
	}
	r.last = now
	if r.streak >= g.maxFails {
		r.streak = 0
		r.lockouts++
		d := min(g.lockout<<(r.lockouts-1), max(g.lockout, loginForget))
		if d <= 0 { // shifted past the int64's range
			d = max(g.lockout, loginForget)
		}
		r.lockedUntil = now.Add(d)
		g.log.Warn("too many failed logins: refusing this address for a while",
			"remote", addr, "failures", r.total, "refused_for", d)
	}
	g.mu.Unlock()

	// The delay is served holding the address's turn: its other
	// connections wait behind it.
	t := time.NewTimer(g.delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	return errWrongLogin
}

// hold returns addr's record, made if need be, and keeps it alive until
// release.
func (g *loginGuard) hold(addr string) *loginRecord {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.addrs[addr]
	if r == nil {
		if len(g.addrs) >= maxLoginRecords {
			g.evictLocked()
		}
		r = &loginRecord{turn: make(chan struct{}, 1)}
		g.addrs[addr] = r
	}
	r.users++
	return r
}

// release lets go of addr's record: one without failures is forgotten at
// once, one with failures once the address has been quiet for loginForget.
func (g *loginGuard) release(addr string, r *loginRecord) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r.users--
	if r.users > 0 || g.addrs[addr] != r {
		return
	}
	if r.total == 0 {
		delete(g.addrs, addr)
		return
	}
	if r.forget == nil && !g.stopped {
		r.forget = time.AfterFunc(loginForget, func() { g.expire(addr, r) })
	}
}

// expire forgets addr's failures if it has been quiet long enough, and
// says how many there were.
func (g *loginGuard) expire(addr string, r *loginRecord) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.addrs[addr] != r || g.stopped {
		return
	}
	quiet := g.now().Sub(r.last)
	left := r.lockedUntil.Sub(g.now())
	if r.users > 0 || quiet < loginForget || left > 0 {
		r.forget.Reset(max(loginForget-quiet, left, time.Second))
		return
	}
	delete(g.addrs, addr)
	g.summaryLocked(addr, r)
}

// evictLocked forgets the record quiet for longest, to make room.
func (g *loginGuard) evictLocked() {
	var (
		oldest string
		at     time.Time
	)
	for a, r := range g.addrs {
		if r.users == 0 && (oldest == "" || r.last.Before(at)) {
			oldest, at = a, r.last
		}
	}
	if r := g.addrs[oldest]; r != nil {
		if r.forget != nil {
			r.forget.Stop()
		}
		delete(g.addrs, oldest)
		g.summaryLocked(oldest, r)
	}
}

func (g *loginGuard) summaryLocked(addr string, r *loginRecord) {
	if r.total < 2 && r.refused == 0 {
		return // the first failure's line said it all
	}
	g.log.Warn("failed logins from one address", "remote", addr, "failures", r.total,
		"refused", r.refused, "lockouts", r.lockouts, "first", r.first.Format(time.RFC3339), "last", r.last.Format(time.RFC3339))
}

// stop writes the summaries still owed and stops the timers.
func (g *loginGuard) stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stopped = true
	for a, r := range g.addrs {
		if r.forget != nil {
			r.forget.Stop()
		}
		g.summaryLocked(a, r)
	}
}
