package boardfs

import (
	"context"
	"fmt"
	"time"
)

// acquire waits for the board, at most BusyWait. Waiters queue on the
// channel in arrival order.
func (f *FS) acquire(ctx context.Context) error {
	t := time.NewTimer(f.opts.BusyWait)
	defer t.Stop()
	select {
	case f.board <- struct{}{}:
		return nil
	case <-t.C:
		return fmt.Errorf("%w: another operation held it for %v", ErrBusy, f.opts.BusyWait)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *FS) release() { <-f.board }

// acquireUntil waits for the board for as long as ctx allows.
func (f *FS) acquireUntil(ctx context.Context) error {
	select {
	case f.board <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
