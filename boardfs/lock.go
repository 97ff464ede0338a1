package boardfs

import (
	"context"
	"time"
)

// acquire waits for the board, at most BusyWait. Waiters queue on the
// channel in arrival order; a holder (hold.go) is told of each.
func (f *FS) acquire(ctx context.Context) error {
	f.share.enter(ctx)
	t := time.NewTimer(f.opts.BusyWait)
	defer t.Stop()
	select {
	case f.board <- struct{}{}:
		f.share.took(ctx)
		return nil
	case <-t.C:
		f.share.leave()
		return f.share.busy(f.opts.BusyWait)
	case <-ctx.Done():
		f.share.leave()
		return ctx.Err()
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
