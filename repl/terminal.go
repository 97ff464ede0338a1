package repl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
)

// friendlyPrompt is the friendly REPL's prompt (pyexec.c).
var friendlyPrompt = []byte(">>> ")

// Friendly takes the board to the friendly REPL and returns once its
// prompt arrives, with what the board printed up to and including it (the
// banner). A board not at the raw prompt is taken there first, which
// interrupts whatever it runs. From then on the board is the caller's to
// hand to a person (Pass); the next Exec enters raw mode again from
// whatever state that person left. It fails with ErrNoRawREPL or
// ErrDisconnected, or when no prompt comes within a few seconds.
func (c *Conn) Friendly(ctx context.Context) ([]byte, error) {
	if !c.inRaw || c.line.pending() {
		if err := c.enterRaw(ctx); err != nil {
			return nil, err
		}
	}
	c.inRaw, c.settled = false, false
	if err := c.line.write([]byte{ctrlB}); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, c.opts.AnswerWait)
	defer cancel()
	banner, err := c.line.until(wctx, friendlyPrompt, nil)
	if err != nil {
		return banner, fmt.Errorf("repl: waiting for the friendly prompt: %w (board printed %s)", err, c.line.lastSeen())
	}
	return append(banner, friendlyPrompt...), nil
}

// Pass hands the serial line to a terminal until ctx is done: what the
// board sends goes to out as it arrives (first what repl had read and not
// used), and what in returns goes to the board unchanged. in is called
// between reads of the port, at least every 20 ms, and returns bytes for
// the board or nil. Nothing is interpreted: Ctrl-C, Ctrl-D and paste mode
// work as on the serial line, and the next Exec enters raw mode again
// from whatever state the terminal left. out must not block for long:
// what the board sends meanwhile waits in the port's buffer. Pass returns
// nil once ctx is done (bytes already read from the port are written to
// out first), ErrDisconnected when the port fails, or out's error.
func (c *Conn) Pass(ctx context.Context, out io.Writer, in func() []byte) error {
	// A person may reset the board (Ctrl-D): what was defined on it
	// may be gone.
	c.inRaw, c.settled = false, false
	c.fedReady = false
	if len(c.line.buf) > 0 {
		if _, err := out.Write(c.line.consume(len(c.line.buf))); err != nil {
			return err
		}
	}
	if c.line.err != nil {
		return c.line.err
	}
	var chunk [1024]byte
	for {
		// One read waits at most pollInterval, so input and ctx are
		// looked at that often.
		n, err := c.line.port.Read(chunk[:])
		if n > 0 {
			c.line.heard(n)
			c.line.remember(chunk[:n])
			if _, werr := out.Write(chunk[:n]); werr != nil {
				return werr
			}
		}
		if err != nil {
			return c.line.broke("read", err)
		}
		if p := in(); len(p) > 0 {
			if err := c.line.write(p); err != nil {
				return err
			}
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// remember keeps the last bytes that went by, for error messages.
func (l *line) remember(p []byte) {
	l.tail = append(l.tail, p...)
	if len(l.tail) > 256 {
		l.tail = bytes.Clone(l.tail[len(l.tail)-256:])
	}
}

// Raw takes the board back from a terminal to the raw prompt, ready for
// the next Exec. atPrompt says the terminal left it at the friendly
// prompt, with at most a line begun: Ctrl-C clears that line and Ctrl-A
// enters raw mode at once. Otherwise (a program runs, a statement is half
// typed, paste or raw mode) the board is interrupted, then taken as from
// any state. Either way a line the person half typed is cleared, never
// run: entering raw mode from any state starts with a line end, which
// would run it. It fails as Exec does when the board gives no raw prompt.
func (c *Conn) Raw(ctx context.Context, atPrompt bool) error {
	c.inRaw, c.settled = false, false
	if err := c.line.write([]byte{ctrlC}); err != nil {
		return err
	}
	if atPrompt {
		if err := c.line.write([]byte{ctrlA}); err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, c.opts.AnswerWait)
		_, err := c.line.until(wctx, rawBanner, nil)
		cancel()
		if err == nil {
			c.inRaw, c.prepare = true, true
			return nil
		}
		if ctx.Err() != nil || errors.Is(err, ErrDisconnected) {
			return err
		}
	}
	return c.enterRaw(ctx)
}
