package boardfs

import (
	"context"
	"errors"
	"io/fs"
	"sync"
)

// litter is the upload temporaries that Abort could not remove because
// the board had stopped answering, or was away a moment: the sweep only
// runs when a board connects, and a board that answers again after a
// silence is the same connection. The next upload that lands removes
// them.
type litter struct {
	mu    sync.Mutex
	names []string
}

// leave notes a temporary that could not be removed.
func (l *litter) leave(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.names = append(l.names, name)
}

// clearLitter removes the temporaries earlier aborts left, keeping those
// it cannot remove yet.
func (f *FS) clearLitter(ctx context.Context) {
	f.litter.mu.Lock()
	names := f.litter.names
	f.litter.names = nil
	f.litter.mu.Unlock()
	for _, n := range names {
		if err := f.Remove(ctx, n); err != nil && !errors.Is(err, fs.ErrNotExist) {
			f.log.Debug("an earlier upload's temporary file is still there", "path", n, "err", err)
			f.litter.leave(n)
		}
	}
}
