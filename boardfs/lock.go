package boardfs

import (
	"context"
	"fmt"
	"time"
)

// silentHint is how long the operation on the board must have waited
// for a byte before those queued behind it take the board for silent
// rather than busy: far longer than a transfer's bytes ever pause.
const silentHint = 2 * time.Second

// acquire waits for the board, at most BusyWait, then fails with ErrBusy.
// Waiters queue on the channel in arrival order; a holder (hold.go) is
// told of each. A board that stopped answering is not busy: once BusyWait
// has passed, a waiter whose board said nothing to the operation on it for
// silentHint waits on while that operation's own bounds run (at most
// segmentTimeout more), and fails with ErrSilent once the board is found
// to have stopped (repl's Conn.Silence).
func (f *FS) acquire(ctx context.Context) error {
	f.share.enter(ctx)
	t := time.NewTimer(f.opts.BusyWait)
	defer t.Stop()
	select {
	case f.board <- struct{}{}:
		f.share.took(ctx)
		return nil
	case <-t.C:
	case <-ctx.Done():
		f.share.leave()
		return ctx.Err()
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := time.Now().Add(segmentTimeout)
	busyUntil := time.Now()
	for {
		quiet, stopped := f.conn.Silence()
		switch {
		case stopped:
			f.share.leave()
			return fmt.Errorf("%w: the operation before this one found so", ErrSilent)
		case quiet >= silentHint && time.Now().After(last):
			f.share.leave()
			return fmt.Errorf("%w: the operation on it has heard nothing for %v", ErrSilent, quiet.Round(time.Second))
		case quiet >= silentHint:
			// A stall is not the holder's work: once the board answers
			// again, the holder gets BusyWait to finish, as if the wait
			// began then (a 6 s stall failed a RETR behind an upload
			// with "busy" the moment the board spoke again).
			busyUntil = time.Now().Add(f.opts.BusyWait)
		case time.Now().After(busyUntil):
			f.share.leave()
			return f.share.busy(f.opts.BusyWait)
		}
		select {
		case f.board <- struct{}{}:
			f.share.took(ctx)
			return nil
		case <-tick.C:
		case <-ctx.Done():
			f.share.leave()
			return ctx.Err()
		}
	}
}

func (f *FS) release() {
	f.share.leave()
	<-f.board
}

// acquireUntil waits for the board for as long as ctx allows.
func (f *FS) acquireUntil(ctx context.Context) error {
	f.share.enter(ctx)
	select {
	case f.board <- struct{}{}:
		f.share.took(ctx)
		return nil
	case <-ctx.Done():
		f.share.leave()
		return ctx.Err()
	}
}
