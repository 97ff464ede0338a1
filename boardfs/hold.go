package boardfs

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ftpbridge/ftpbridge/repl"
)

// A board is shared between its operations, which take turns on the board
// lock (lock.go), and at most one holder: someone who hands the serial line
// to a person (package console) while no operation needs it. The holder
// takes the lock once the board has been left alone for a while, and is
// told at once when an operation asks for it: it gives the board up then,
// or keeps it (a program the person runs) and the operation is answered
// ErrProgramRunning after BusyWait.

// opKey is the context key under which WithOp keeps an operation's name.
type opKey struct{}

// WithOp names the operation ctx serves, in words for a person: "RETR
// /main.py". When that operation asks for a board someone holds, the
// holder is told this name.
func WithOp(ctx context.Context, op string) context.Context {
	return context.WithValue(ctx, opKey{}, op)
}

// opName is the name WithOp gave ctx.
func opName(ctx context.Context) string {
	if op, ok := ctx.Value(opKey{}).(string); ok && op != "" {
		return op
	}
	return "a file operation"
}

// sharing is what the board lock knows of its users; the zero value is
// ready.
type sharing struct {
	mu      sync.Mutex
	holder  *Hold
	users   int           // operations waiting for the board or on it
	lastUse time.Time     // when an operation last gave the board up
	current string        // the name of the operation on the board; "" when none
	changed chan struct{} // closed and replaced when users changes
}

// wake tells waiting holders that users changed; s.mu is held.
func (s *sharing) wake() {
	if s.changed != nil {
		close(s.changed)
	}
	s.changed = make(chan struct{})
}

// enter counts an operation that asks for the board, and tells the holder.
func (s *sharing) enter(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users++
	s.wake()
	if s.holder != nil {
		select {
		case s.holder.wanted <- opName(ctx):
		default: // the holder has yet to read an earlier one
		}
	}
}

// took notes the operation that has the board now.
func (s *sharing) took(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.current = opName(ctx)
}

// leave counts an operation that is done with the board, or gave up
// waiting for it.
func (s *sharing) leave() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users--
	s.lastUse = time.Now()
	s.current = ""
	s.wake()
}

// contended reports whether another operation waits for the board or is
// on it: a transfer then gives the board up a segment at a time rather
// than a span (execSpan).
func (s *sharing) contended() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users > 0
}

// others reports, to the operation on the board, whether another one
// waits for it.
func (s *sharing) others() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users > 1
}

// Using returns the name (WithOp) of the operation on the board now, ""
// when none is.
func (f *FS) Using() string {
	f.share.mu.Lock()
	defer f.share.mu.Unlock()
	return f.share.current
}

// busy is why an operation waited BusyWait for the board in vain.
func (s *sharing) busy(waited time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holder != nil && s.holder.keep != "" {
		return fmt.Errorf("%w (%s)", ErrProgramRunning, s.holder.keep)
	}
	return fmt.Errorf("%w: another operation held it for %v", ErrBusy, waited)
}

// Hold is the board held for someone who uses the serial line itself.
type Hold struct {
	f        *FS
	wanted   chan string
	keep     string // why the holder keeps the board; "" gives it up; under f.share.mu
	released bool
}

// Hold takes the board lock for a holder that uses the serial line itself
// (Conn), once no operation has used or asked for the board for quiet; it
// waits as long as ctx allows, and fails only with ctx's error. Until
// Release, each operation that asks for the board waits, and its name
// (WithOp) is sent on Wanted.
func (f *FS) Hold(ctx context.Context, quiet time.Duration) (*Hold, error) {
	s := &f.share
	h := &Hold{f: f, wanted: make(chan string, 1)}
	for {
		s.mu.Lock()
		wait := quiet - time.Since(s.lastUse)
		if s.users == 0 && wait <= 0 {
			select {
			case f.board <- struct{}{}:
				s.holder = h
				s.mu.Unlock()
				return h, nil
			default:
				// The last user is between counting itself out and
				// unlocking: a moment.
				wait = 5 * time.Millisecond
			}
		}
		if s.changed == nil {
			s.wake()
		}
		changed := s.changed
		s.mu.Unlock()
		t := time.NewTimer(max(wait, 5*time.Millisecond))
		select {
		case <-changed:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		t.Stop()
	}
}

// Conn is the board's raw REPL conversation, the holder's to use (its
// Friendly and Pass) until Release.
func (h *Hold) Conn() *repl.Conn { return h.f.conn }

// Wanted receives the name of an operation that asks for the board, once
// for each that asks while the holder has not read an earlier name.
func (h *Hold) Wanted() <-chan string { return h.wanted }

// Waiting reports whether an operation waits for the board now.
func (h *Hold) Waiting() bool {
	h.f.share.mu.Lock()
	defer h.f.share.mu.Unlock()
	return h.f.share.users > 0
}

// Keep says why the holder keeps the board from the operations that ask
// for it ("a program runs on the console"): they fail with
// ErrProgramRunning, saying so, after BusyWait. An empty why ends that.
func (h *Hold) Keep(why string) {
	h.f.share.mu.Lock()
	defer h.f.share.mu.Unlock()
	h.keep = why
}

// Release gives the board up to the operations waiting for it. A second
// call does nothing.
func (h *Hold) Release() {
	s := &h.f.share
	s.mu.Lock()
	if h.released {
		s.mu.Unlock()
		return
	}
	h.released = true
	s.holder = nil
	s.mu.Unlock()
	<-h.f.board
}
