package repl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"go.bug.st/serial"
)

// pollInterval is how long one read on the port may block before the reader
// looks at its context again.
const pollInterval = 20 * time.Millisecond

// line reads the port with a context: go.bug.st/serial's Read returns (0, nil)
// when its read timeout passes, which means "nothing yet", so the reader
// loops on short timeouts and checks ctx between them.
type line struct {
	port Port
	buf  []byte // read from the port, not yet consumed
	tail []byte // the last bytes consumed, for error messages
	err  error  // sticky: once the port fails, it stays failed
	// dead is closed when err is set, so a watcher in another goroutine
	// learns of the failure without touching the port.
	dead chan struct{}

	sent, received int64 // bytes on the wire, each way

	// Silence on the line, which other goroutines may ask about while
	// the conn's user waits (Conn.Silence): when the wait for the
	// board's next byte began (0: no wait under way), and when an
	// exchange ended because the board stopped answering (0: it has
	// spoken since). Unix nanoseconds.
	waitFrom, silentSince atomic.Int64
	// writing is the write the conn's user waits for the port to take,
	// if any: a port that takes nothing is as silent as a board that
	// says nothing.
	writing atomic.Pointer[pendingWrite]
	// filled: a Ctrl-C filler went out (Conn.fill) and the board has said
	// nothing since, so another would only queue behind it.
	filled bool

	// writeWait bounds how long a write may go without the port taking
	// a byte; stuck is a write the port stopped taking, which the next
	// write waits for first, so bytes keep their order.
	writeWait time.Duration
	stuck     *pendingWrite
}

func newLine(port Port, writeWait time.Duration) *line {
	_ = port.SetReadTimeout(pollInterval)
	return &line{port: port, dead: make(chan struct{}), writeWait: writeWait}
}

// heard notes n bytes from the board: it is not silent.
func (l *line) heard(n int) {
	l.received += int64(n)
	l.silentSince.Store(0)
	l.filled = false
}

// stopped marks the board as having stopped answering, for Conn.Silence,
// until it next sends a byte.
func (l *line) stopped() {
	l.silentSince.CompareAndSwap(0, time.Now().UnixNano())
}

// broke records the port's failure; the first one is the one kept.
func (l *line) broke(op string, err error) error {
	if l.err == nil {
		l.err = disconnected(op, err)
		close(l.dead)
	}
	return l.err
}

// fill reads at least one more byte into l.buf.
func (l *line) fill(ctx context.Context) error {
	if l.err != nil {
		return l.err
	}
	var chunk [1024]byte
	l.waitFrom.Store(time.Now().UnixNano())
	defer l.waitFrom.Store(0)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := l.port.Read(chunk[:])
		if n > 0 {
			l.buf = append(l.buf, chunk[:n]...)
			l.heard(n)
			return nil
		}
		if err != nil {
			return l.broke("read", err)
		}
	}
}

// disconnected turns a port failure into ErrDisconnected, keeping the cause.
func disconnected(op string, err error) error {
	var perr *serial.PortError
	if errors.As(err, &perr) {
		return fmt.Errorf("%w: %s: %s", ErrDisconnected, op, perr.Error())
	}
	return fmt.Errorf("%w: %s: %w", ErrDisconnected, op, err)
}

// writePiece is the most one call of the port's Write is given, so that
// a write that stalls is seen to stall (pendingWrite.moved).
const writePiece = 256

// A pendingWrite is a write under way in its own goroutine: a serial
// port's Write has no timeout, and blocks for ever once a stalled
// adapter's buffers are full.
type pendingWrite struct {
	moved atomic.Int64 // when the port last took bytes, Unix nanoseconds
	sent  atomic.Int64 // bytes the port took
	done  chan error   // the write's end: nil, or why the port failed
}

// write puts p on the line. It fails with ErrSilent when the port takes no
// byte for writeWait; the bytes go on out in the background, and later
// writes wait for them.
func (l *line) write(p []byte) error {
	if l.err != nil {
		return l.err
	}
	if l.stuck != nil {
		if err := l.await(l.stuck); err != nil {
			return err
		}
	}
	w := &pendingWrite{done: make(chan error, 1)}
	w.moved.Store(time.Now().UnixNano())
	data := bytes.Clone(p) // the caller may reuse p while the port still takes it
	go func() {
		for len(data) > 0 {
			n, err := l.port.Write(data[:min(len(data), writePiece)])
			if n > 0 {
				w.sent.Add(int64(n))
				w.moved.Store(time.Now().UnixNano())
			}
			if err == nil && n == 0 {
				err = io.ErrShortWrite
			}
			if err != nil {
				w.done <- err
				return
			}
			data = data[n:]
		}
		w.done <- nil
	}()
	return l.await(w)
}

// await waits for w to end, as long as the port keeps taking its bytes.
func (l *line) await(w *pendingWrite) error {
	l.writing.Store(w)
	defer l.writing.Store(nil)
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		select {
		case err := <-w.done:
			l.stuck = nil
			l.sent += w.sent.Load()
			if err != nil {
				return l.broke("write", err)
			}
			return nil
		case <-t.C:
			if still := time.Since(time.Unix(0, w.moved.Load())); still >= l.writeWait {
				l.stuck = w
				l.stopped()
				return fmt.Errorf("%w: the serial port took no byte for %v", ErrSilent, still.Round(time.Second))
			}
		}
	}
}

func (l *line) consume(n int) []byte {
	out := append([]byte(nil), l.buf[:n]...)
	l.buf = l.buf[n:]
	l.tail = append(l.tail, out...)
	if len(l.tail) > 256 {
		l.tail = l.tail[len(l.tail)-256:]
	}
	return out
}

// read returns at least one byte and at most len(p).
func (l *line) read(ctx context.Context, p []byte) (int, error) {
	if len(l.buf) == 0 {
		if err := l.fill(ctx); err != nil {
			return 0, err
		}
	}
	n := copy(p, l.buf)
	l.consume(n)
	return n, nil
}

// until reads up to and including marker and returns what came before it.
// stop, if not nil, is asked about the bytes so far each time more arrive,
// and ends the wait early with its error.
func (l *line) until(ctx context.Context, marker []byte, stop func([]byte) error) ([]byte, error) {
	searched := 0
	for {
		if i := bytes.Index(l.buf[searched:], marker); i >= 0 {
			out := l.consume(searched + i + len(marker))
			return out[:len(out)-len(marker)], nil
		}
		searched = max(0, len(l.buf)-len(marker)+1)
		if stop != nil {
			if err := stop(l.buf); err != nil {
				return l.consume(len(l.buf)), err
			}
		}
		if err := l.fill(ctx); err != nil {
			return l.consume(len(l.buf)), err
		}
	}
}

// pending reports whether the board has sent anything that is waiting to be
// read, without waiting for more.
func (l *line) pending() bool {
	if len(l.buf) > 0 {
		return true
	}
	if l.err != nil {
		return false
	}
	_ = l.port.SetReadTimeout(0)
	var chunk [256]byte
	n, err := l.port.Read(chunk[:])
	_ = l.port.SetReadTimeout(pollInterval)
	if n > 0 {
		l.buf = append(l.buf, chunk[:n]...)
		l.heard(n)
		return true
	}
	if err != nil {
		l.broke("read", err)
	}
	return false
}

// drain discards what arrives until the line has been quiet for quiet.
func (l *line) drain(ctx context.Context, quiet time.Duration) error {
	l.consume(len(l.buf))
	for {
		qctx, cancel := context.WithTimeout(ctx, quiet)
		err := l.fill(qctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				return nil
			}
			return err
		}
		l.consume(len(l.buf))
	}
}

// lastSeen is what the board printed last, for error messages.
// Errors end up in logs, and after a binary transfer these bytes may be a
// file's, so only the last 64 are quoted: enough for a prompt, a banner's end
// or a traceback's last line.
func (l *line) lastSeen() string {
	seen := append(append([]byte(nil), l.tail...), l.buf...)
	if len(seen) > 64 {
		seen = seen[len(seen)-64:]
	}
	// Mostly binary bytes are a file's contents (a transfer broke off),
	// which have no place in a log line: only the text after them is
	// quoted. A board answering stray bytes amid text is quoted whole.
	binary := 0
	for _, b := range seen {
		if !textLike(b) {
			binary++
		}
	}
	if binary*4 > len(seen) {
		i := len(seen)
		for i > 0 && textLike(seen[i-1]) {
			i--
		}
		return fmt.Sprintf("binary data, then %q", seen[i:])
	}
	return fmt.Sprintf("%q", seen)
}

// textLike is what a board prints outside a binary transfer: printable
// ASCII, line ends, tabs and the raw REPL's control bytes (0x01-0x06).
func textLike(b byte) bool {
	return (b >= 0x20 && b < 0x7f) || b == '\r' || b == '\n' || b == '\t' || (b >= 0x01 && b <= 0x06)
}
