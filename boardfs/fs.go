package boardfs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ftpbridge/ftpbridge/repl"
)

// Errors beyond io/fs's ErrNotExist, ErrExist and ErrPermission.
var (
	ErrBadName      = errors.New("boardfs: name the board cannot hold")
	ErrNotEmpty     = errors.New("boardfs: directory not empty")
	ErrNotSupported = errors.New("boardfs: not supported by this board")
	ErrProtocol     = errors.New("boardfs: unexpected reply from the board")
	ErrCorrupt      = errors.New("boardfs: data changed on the way")
	ErrBusy         = errors.New("boardfs: board busy")
	ErrNoSpace      = errors.New("boardfs: no space left on the board")
	// ErrChanged: the file changed on the board (another session replaced,
	// removed or appended to it) while it was being read.
	ErrChanged = errors.New("boardfs: the file changed during the transfer")
	// ErrReserved: a name of the form ftpbridge gives its upload
	// temporaries (".ftpbridge-" and 8 lowercase hex digits), refused as
	// the name of a new file or directory. It is an ErrBadName.
	ErrReserved = fmt.Errorf("%w: reserved for ftpbridge's temporary files (%s and %d hex digits)", ErrBadName, tempPrefix, tempDigits)
	// ErrDirAcrossMounts: a rename would move a directory from one mount
	// to another (a Pyboard's /flash to /sd), which takes a copy of every
	// file in it. It is an ErrNotSupported.
	ErrDirAcrossMounts = fmt.Errorf("%w: a directory cannot move between mounts", ErrNotSupported)
	// ErrNotConnected: the board is unplugged; a Link is waiting for it
	// to come back.
	ErrNotConnected = errors.New("boardfs: board not connected")
	// ErrDisconnected: the serial line failed (the board was unplugged)
	// during an operation. It is repl's, so users of boardfs need not
	// import repl.
	ErrDisconnected = repl.ErrDisconnected
	// ErrBoardReset: the board reset during an operation; the next one
	// finds it again, helpers installed. It is repl's.
	ErrBoardReset = repl.ErrBoardReset
	// ErrSilent: the board stopped answering with its port open (a hung
	// firmware, a stalled USB-serial adapter). The operation that met it
	// fails with it, so do those that wait for the board meanwhile, and
	// the first after the board speaks again finds it, helpers
	// installed. It is repl's.
	ErrSilent = repl.ErrSilent
	// ErrLineNotHeld: an upload sent without waiting for the board
	// (Options.HeldBack) stopped being acknowledged: the line lost bytes
	// the board could not take, as a UART's ring does, so it is not the
	// native USB HeldBack says. The target is as it was.
	ErrLineNotHeld = errors.New("boardfs: the board stopped taking an upload sent without waiting for it (the line dropped bytes: it does not hold the host back)")
	// ErrProgramRunning: the board's holder keeps it for a program that
	// runs (Hold.Keep). It is an ErrBusy.
	ErrProgramRunning = fmt.Errorf("%w running a program", ErrBusy)
)

// Info says what a board is and what it can do, as it answered about
// itself when it was connected.
type Info = repl.Info

// PyError is a Python exception the board raised: its type, message,
// traceback and errno. Its Unwrap maps the errno to io/fs's errors.
type PyError = repl.PyError

// Stats counts the traffic with a board: execs, bytes sent and received.
type Stats = repl.Stats

// Entry is a file or directory on the board.
type Entry struct {
	Name    string
	IsDir   bool
	Size    int64
	ModTime time.Time
}

// Options tune an FS. The zero value works.
type Options struct {
	Logger *slog.Logger
	// Clock, if set, is the time New gives the board when its clock is
	// more than a minute off (unset boards start at 2000-01-01), through
	// machine.RTC, in UTC, and again whenever the board comes back from a
	// reset: files written through the bridge then get true times. Nil
	// leaves the board's clock alone.
	Clock func() time.Time
	// Name tells this board's copies in the Cache from another's when the
	// board has no machine.unique_id (the port it is on, say).
	Name string
	// Cache, if set, keeps copies of the files moved, so that downloads
	// move only what changed since.
	Cache Cache
	// BusyWait is how long an operation waits for the board while other
	// operations hold it before it gives up with ErrBusy (default 5 s).
	BusyWait time.Duration
	// HeldBack says the line holds the host back while the board's input
	// buffer is full, as native USB does (the device NAKs its OUT
	// endpoint): nothing sent is lost while the board is busy, so uploads
	// need not wait for the board's acknowledgements. Off, the host keeps
	// no more unacknowledged than a UART's input ring holds.
	HeldBack bool
}

// FS is a board's filesystem. It is safe for concurrent use: operations
// take turns on the board, in the order they asked, and long transfers give
// the board up between segments.
type FS struct {
	conn   *repl.Conn
	info   Info
	epoch  time.Time
	opts   Options
	log    *slog.Logger
	board  chan struct{} // holds a token while an operation uses the board
	share  sharing       // who waits for the board, and its holder (hold.go)
	litter litter        // temporaries aborted uploads left (litter.go)
	d      dialect       // how this board is spoken to
	// listBudget is the bytes of entries a listing page asks for: listPage,
	// or less once a page ran the board out of memory (list.go).
	listBudget atomic.Int64
	// noInflate: the board ran out of memory inflating an upload (write.go):
	// uploads go plain.
	noInflate atomic.Bool
}

// Port is the serial line to a board, opened by the caller (boardfs never
// opens a port by name); go.bug.st/serial's Port has it.
type Port = repl.Port

// New speaks to the board on port: it detects what the board can do and
// installs the helpers, which it installs again whenever the board comes
// back from a reset. New owns port: when it fails it closes it, leaving
// the board in its friendly REPL, and otherwise the FS's Close does.
func New(ctx context.Context, port Port, opts Options) (*FS, error) {
	if opts.BusyWait <= 0 {
		opts.BusyWait = 5 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &FS{opts: opts, log: log, board: make(chan struct{}, 1)}
	f.conn = repl.New(port, repl.Options{Logger: log.With("layer", "repl"), Prepare: f.prepare})
	if err := f.start(ctx); err != nil {
		_ = f.conn.Close()
		return nil, err
	}
	return f, nil
}

// start is New once the conn is made: Info's exec, the conn's first,
// installs the helpers (repl runs Prepare before it, when Info is not yet
// known: that prepare leaves the clock to start).
func (f *FS) start(ctx context.Context) error {
	info, err := f.conn.Info(ctx)
	if err != nil {
		return fmt.Errorf("boardfs: %w", err)
	}
	f.info = info
	f.epoch = time.Date(info.Epoch, 1, 1, 0, 0, 0, 0, time.UTC)
	f.d = newDialect(info.StdinBuffer && info.StdoutBuffer, info.Binascii)
	if f.opts.Clock != nil {
		return f.setClock(ctx, f.opts.Clock())
	}
	return nil
}

// Close leaves the board in its friendly REPL, as a person expects to find
// it, and closes the port. No operation may be under way.
func (f *FS) Close() error { return f.conn.Close() }

// Stats returns the traffic with the board since New.
func (f *FS) Stats() Stats { return f.conn.Stats() }

// Board says what the board is.
func (f *FS) Board() Info { return f.info }

func (f *FS) entry(name, fields string) (Entry, error) {
	var isDir, size, mtime int64
	if _, err := fmt.Sscan(fields, &isDir, &size, &mtime); err != nil {
		return Entry{}, fmt.Errorf("%w: %q", ErrProtocol, fields)
	}
	return Entry{Name: name, IsDir: isDir == 1, Size: size, ModTime: f.epoch.Add(time.Duration(mtime) * time.Second)}, nil
}
