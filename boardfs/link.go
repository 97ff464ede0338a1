package boardfs

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ftpbridge/ftpbridge/repl"
)

// LinkOptions say how a Link reaches its board.
type LinkOptions struct {
	// Dial opens the board's port. The caller owns port names: Dial
	// finds the board's port (the same path, or the same USB serial
	// number at a new one) and opens it; the Link closes it.
	Dial func(ctx context.Context) (Port, error)
	// Present reports whether the board's port exists now. A Link asks
	// every Poll while connected, because an idle port never reads and so
	// never learns of an unplug by itself, and before each Dial while the
	// board is away. Nil: the port is assumed present.
	Present func() bool
	// Poll is how often the Link looks at Present. Default 500 ms.
	Poll time.Duration
	// DialTimeout bounds one Dial and the setup after it. Default 20 s.
	DialTimeout time.Duration
	// FS configures each FS the Link makes.
	FS Options
}

// Link keeps a board connected across unplugs and replugs. FS returns the
// board's filesystem while it is there and ErrNotConnected while it is
// away; Run notices the board leaving and coming back. Every (re)connection
// first removes the upload temporaries an interrupted transfer left.
type Link struct {
	opts LinkOptions
	log  *slog.Logger

	mu   sync.Mutex
	info Info // the board's, as last connected
	fs   *FS
	conn *repl.Conn
}

// Connect makes the first connection, which must succeed: a bridge that
// starts with no board says so at once rather than serving nothing.
func Connect(ctx context.Context, opts LinkOptions) (*Link, error) {
	if opts.Poll <= 0 {
		opts.Poll = 500 * time.Millisecond
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 20 * time.Second
	}
	log := opts.FS.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Link{opts: opts, log: log}
	if err := l.dial(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

// FS returns the board's filesystem, or ErrNotConnected while the board is
// away. An FS whose port failed is not handed out again.
func (l *Link) FS() (*FS, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fs == nil {
		return nil, ErrNotConnected
	}
	select {
	case <-l.conn.Done():
		return nil, ErrNotConnected
	default:
	}
	return l.fs, nil
}

// Info says what the board is, as last connected.
func (l *Link) Info() Info {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.info
}

// Run watches the board until ctx is done, reconnecting after an unplug,
// then closes the connection, leaving the board in its friendly REPL.
func (l *Link) Run(ctx context.Context) {
	tick := time.NewTicker(l.opts.Poll)
	defer tick.Stop()
	failures := 0
	for {
		l.mu.Lock()
		conn := l.conn
		l.mu.Unlock()
		var dead <-chan struct{}
		if conn != nil {
			dead = conn.Done()
		}
		select {
		case <-ctx.Done():
			l.disconnect(ctx, "stopping")
			return
		case <-dead:
			l.disconnect(ctx, "the serial port failed")
		case <-tick.C:
			switch {
			case conn != nil && !l.present():
				l.disconnect(ctx, "the serial port is gone")
			case conn == nil && l.present():
				err := l.dial(ctx)
				switch {
				case err == nil:
					failures = 0
				case ctx.Err() == nil:
					// A booting board may take a few tries; say so once.
					level := slog.LevelDebug
					if failures == 0 {
						level = slog.LevelWarn
					}
					failures++
					l.log.Log(ctx, level, "board is back but does not answer yet", "err", err)
				}
			}
		}
	}
}

func (l *Link) present() bool { return l.opts.Present == nil || l.opts.Present() }

// dial connects, sweeps, and publishes the new FS.
func (l *Link) dial(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(ctx, l.opts.DialTimeout)
	defer cancel()
	port, err := l.opts.Dial(dctx)
	if err != nil {
		return err
	}
	fsys, err := New(dctx, port, l.opts.FS)
	if err != nil {
		return err
	}
	if err := fsys.sweep(dctx); err != nil {
		if dctx.Err() != nil || errors.Is(err, ErrDisconnected) || errors.Is(err, ErrBoardReset) {
			_ = fsys.Close()
			return err
		}
		// Sweeping is housekeeping: a board whose sweep fails (a heap
		// too small for a big tree, a folder it cannot read) still
		// serves its files, and its stray temporaries stay hidden.
		l.log.Warn("could not remove interrupted uploads' temporary files", "err", err)
	}
	l.mu.Lock()
	l.fs, l.conn, l.info = fsys, fsys.conn, fsys.Board()
	l.mu.Unlock()
	l.log.Info("board connected", "board", fsys.Board().String())
	return nil
}

// disconnect forgets the FS and closes its port. It waits a bounded time
// for an operation still on the board: on a failed port that operation
// fails at once.
func (l *Link) disconnect(ctx context.Context, why string) {
	l.mu.Lock()
	fsys, conn := l.fs, l.conn
	l.fs, l.conn = nil, nil
	l.mu.Unlock()
	if fsys == nil {
		return
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	var err error
	if fsys.acquireUntil(WithOp(actx, "ftpbridge letting go of the board ("+why+")")) == nil {
		err = conn.Close()
		fsys.release()
	} else {
		// An exchange still holds the conn: only the port may be
		// touched, and closing it ends that exchange.
		err = conn.ClosePort()
	}
	if err != nil && ctx.Err() == nil {
		l.log.Debug("closing the serial port", "err", err)
	}
	if ctx.Err() == nil {
		l.log.Warn("board disconnected: waiting for it to come back", "why", why)
	}
}

// sweep removes what interrupted uploads left: a connection is made only
// when no upload can be in flight, so every temporary is stale.
func (f *FS) sweep(ctx context.Context) error {
	out, err := f.call(ctx, "sweep", "/", f.d.sweepCode())
	if err != nil {
		return err
	}
	for _, h := range strings.Fields(string(out)) {
		name, err := hex.DecodeString(h)
		if err != nil {
			return fmt.Errorf("boardfs: sweep: %w: %q", ErrProtocol, h)
		}
		f.log.Info("removed an interrupted upload's temporary file", "path", string(name))
	}
	return nil
}
