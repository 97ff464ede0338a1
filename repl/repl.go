// Package repl speaks MicroPython's raw REPL over a serial line: it takes a
// board from whatever state it is in into raw mode, runs code there and
// returns its output, streams a program's stdin and stdout for the layers
// above, and notices resets and unplugged cables. It knows nothing of files.
//
// The protocol facts it relies on come from MicroPython's
// shared/runtime/pyexec.c and from real boards; each says where it is used.
package repl

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"time"
)

// Control characters of the REPL (pyexec.c).
const (
	ctrlA = 0x01 // enter raw REPL
	ctrlB = 0x02 // leave raw REPL
	ctrlC = 0x03 // interrupt
	ctrlD = 0x04 // end of code; soft reset on an empty line
	ctrlE = 0x05 // paste mode; with 'A' 0x01 at the raw prompt: raw-paste
)

var (
	rawBanner = []byte("raw REPL; CTRL-B to exit\r\n>")
	// A board that reset prints its banner and the friendly prompt where a
	// reply was expected; bytes the host still sends come after it, echoed
	// by the friendly REPL (the rest of an upload segment's pieces in
	// flight), so the prompt need not end what was read.
	friendlyBanner = regexp.MustCompile(`MicroPython v[^\n]*\n(Type "help\(\)" for more information\.\r?\n)?>>> `)
	softReboot     = []byte("soft reboot")
)

// Errors that say why an exchange with the board ended.
var (
	// ErrBoardReset: the board reset (button, watchdog, machine.reset()) while
	// a reply was expected. The next Exec re-enters raw mode by itself.
	ErrBoardReset = errors.New("repl: board reset")
	// ErrDisconnected: reading or writing the serial port failed (unplugged).
	ErrDisconnected = errors.New("repl: board disconnected")
	// ErrNoRawREPL: the board did not give a raw REPL prompt.
	ErrNoRawREPL = errors.New("repl: cannot enter raw REPL")
	// ErrProtocol: the board answered something the raw REPL never sends.
	ErrProtocol = errors.New("repl: unexpected reply")
	// ErrSilent: the board stopped answering with its line open (a hung
	// firmware, a stalled USB-serial adapter): nothing came from it for as
	// long as the wait allowed, or the port took no byte for
	// Options.Silence. The next exec interrupts it and re-enters raw mode;
	// until the board speaks again that fails with ErrSilent too, soon.
	ErrSilent = errors.New("repl: the board stopped answering")
)

// Port is what repl needs of a serial line; go.bug.st/serial's Port has
// it. A Port that is also an io.Closer is closed by Close and ClosePort.
type Port interface {
	io.ReadWriter
	SetReadTimeout(t time.Duration) error
}

// Options tune a Conn. The zero value works.
type Options struct {
	// Logger gets debug traces of each exec: sizes, durations, outcomes.
	Logger *slog.Logger
	// Prepare runs whenever the conn has (re-)entered raw mode, which is
	// the case on first use and after any reset, before the pending exec.
	// It may call Exec; it is not re-invoked from within itself.
	Prepare func(ctx context.Context, c *Conn) error
	// PieceSize and PiecePause pace code sent in plain raw mode, which has
	// no flow control: boards with a small receive buffer (ESP8266,
	// micro:bit) lose bytes that arrive faster than they are stored.
	PieceSize  int
	PiecePause time.Duration
	// AnswerWait bounds the wait for an answer the board gives at once
	// when it is where the conn thinks (OK for code, a banner, a loader's
	// acknowledgement): silence that long means it is not. Default 10 s,
	// far longer than a board needs, because a loaded host running
	// emulated boards delays their answers by seconds.
	AnswerWait time.Duration
	// EnterRawWait is how long the first of three tries to enter raw mode
	// waits for the raw REPL banner; the second waits three times as long,
	// the third five times, for a booting board that does not listen yet.
	// Default 1 s.
	EnterRawWait time.Duration
	// Silence bounds the pauses in a program's output while the caller
	// reads it (Run.Read), and how long a write may wait for the port
	// to take a byte: the board is sending a transfer then, and silence
	// that long means it stopped answering (ErrSilent). Default 10 s,
	// for the same loaded hosts as AnswerWait.
	Silence time.Duration
}

// Conn is a raw REPL conversation with one board. It is not safe for
// concurrent use: the layer above serializes access to the board.
type Conn struct {
	port    Port
	line    *line
	opts    Options
	log     *slog.Logger
	inRaw   bool
	prepare bool // Prepare is due before the next exec
	busy    bool // inside Prepare
	// rawPaste: 0 not yet known, 1 supported, -1 not supported.
	rawPaste int
	// pasteWindow is the raw-paste window the board last gave; 0 before.
	pasteWindow int
	// settled: the last exec ended cleanly at the raw prompt, with nothing
	// from the board after it and nothing sent since, so the board's next
	// answer is to the next request and not a late one to something else.
	settled bool
	// feeder is how long code reaches the board (feed.go): 0 not yet
	// known, -1 no loader, else 1 + its index in feeders. fedReady says
	// the board holds the loader.
	feeder   int
	fedReady bool
	execs    int64
}

// Stats counts a conn's traffic since it was made.
type Stats struct {
	Execs    int64 // programs started (Exec, Start), Prepare's included
	Sent     int64 // bytes written to the board
	Received int64 // bytes read from the board
}

// Stats returns the conn's traffic so far, for benchmarks and logs.
func (c *Conn) Stats() Stats {
	return Stats{Execs: c.execs, Sent: c.line.sent, Received: c.line.received}
}

// New starts a conversation over port, which the caller opened (repl
// never opens a port by name). Nothing is sent until the first call that
// needs the board; Close closes the port.
func New(port Port, opts Options) *Conn {
	if opts.PieceSize <= 0 {
		opts.PieceSize = 256
	}
	if opts.PiecePause <= 0 {
		opts.PiecePause = 5 * time.Millisecond
	}
	if opts.AnswerWait <= 0 {
		opts.AnswerWait = 10 * time.Second
	}
	if opts.EnterRawWait <= 0 {
		opts.EnterRawWait = time.Second
	}
	if opts.Silence <= 0 {
		opts.Silence = 10 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Conn{port: port, line: newLine(port, opts.Silence), opts: opts, log: log}
}

// Silence says how long the board has said nothing while it owed an
// answer: quiet is how long the conn's current wait on the board has gone
// without a byte, or the port without taking one (0 when no wait is under
// way), or, when stopped, how long
// ago an exchange ended because the board stopped answering (ErrSilent),
// which holds until it sends a byte again. Unlike the rest of Conn it may
// be called from any goroutine while another uses the conn: it is how
// those waiting for the board tell a silent board from a busy one.
func (c *Conn) Silence() (quiet time.Duration, stopped bool) {
	now := time.Now().UnixNano()
	if since := c.line.silentSince.Load(); since != 0 {
		return time.Duration(now - since), true
	}
	if from := c.line.waitFrom.Load(); from != 0 {
		quiet = time.Duration(now - from)
	}
	if w := c.line.writing.Load(); w != nil {
		quiet = max(quiet, time.Duration(now-w.moved.Load()))
	}
	return quiet, false
}

// Done is closed once the serial port has failed (the board was
// unplugged): every later call returns ErrDisconnected. It may be watched
// from any goroutine.
func (c *Conn) Done() <-chan struct{} { return c.line.dead }

// Close leaves the board in the friendly REPL, as a person expects to find
// it, and closes the port if it can be closed.
func (c *Conn) Close() error {
	if c.inRaw && c.line.err == nil {
		_ = c.line.write([]byte{ctrlB})
	}
	c.inRaw = false
	if cl, ok := c.port.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// ClosePort closes the port and says nothing to the board. Unlike the
// rest of Conn it may be called while another goroutine uses the conn,
// whose calls then fail with ErrDisconnected: it is how a caller that
// cannot get the conn back from a stuck exchange lets go of the device.
func (c *Conn) ClosePort() error {
	if cl, ok := c.port.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// Interrupt stops whatever the board runs (Ctrl-C twice, with a pause, since
// a program may catch the first) and leaves the conn to re-enter raw mode.
func (c *Conn) Interrupt(ctx context.Context) error {
	c.inRaw = false
	if err := c.line.write([]byte{ctrlC}); err != nil {
		return err
	}
	if err := sleep(ctx, 100*time.Millisecond); err != nil {
		return err
	}
	return c.line.write([]byte{ctrlC})
}

// SoftReset restarts the board's interpreter (Ctrl-D on an empty raw line):
// globals are gone; Prepare runs again before the next exec.
func (c *Conn) SoftReset(ctx context.Context) error {
	if err := c.enterRaw(ctx); err != nil {
		return err
	}
	if err := c.line.write([]byte{ctrlD}); err != nil {
		return err
	}
	if _, err := c.line.until(ctx, softReboot, nil); err != nil {
		return fmt.Errorf("repl: soft reset: waiting for the reboot line: %w (board printed %s)", err, c.line.lastSeen())
	}
	if _, err := c.line.until(ctx, rawBanner, nil); err != nil {
		return fmt.Errorf("repl: soft reset: waiting for the raw prompt: %w (board printed %s)", err, c.line.lastSeen())
	}
	c.prepare = true
	c.fedReady = false
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stuckReadFiller is how many bytes enterRaw sends to a board stuck
// reading: more than any helper reads with Ctrl-C off (boardfs's upload
// segments, repl's code loader).
const stuckReadFiller = 8 << 10

// fill sends n Ctrl-C bytes in paced pieces.
func (c *Conn) fill(ctx context.Context, n int) error {
	piece := bytes.Repeat([]byte{ctrlC}, c.opts.PieceSize)
	for sent := 0; sent < n; sent += len(piece) {
		if err := c.line.write(piece); err != nil {
			return err
		}
		if err := sleep(ctx, c.opts.PiecePause); err != nil {
			return err
		}
	}
	c.line.filled = true
	return c.line.drain(ctx, 50*time.Millisecond)
}

// enterRaw takes the board from any state to the raw prompt: a program
// running is interrupted, a half-typed line or paste mode is cancelled, and
// whatever the board printed before the banner is skipped.
//
// A board that stopped answering (ErrSilent before, and silent since)
// that says nothing at all to one try, once a filler has gone out, fails
// with ErrSilent at once rather than after all three: the operations
// queued behind hear so in seconds, and the first one after the board
// speaks again finds it.
func (c *Conn) enterRaw(ctx context.Context) error {
	c.settled = false
	var lastErr error
	_, wasSilent := c.Silence()
	before := c.line.received
	for attempt := range 3 {
		heard := c.line.received
		if err := c.line.write([]byte{'\r', ctrlC}); err != nil {
			return err
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
		if err := c.line.write([]byte{ctrlC}); err != nil {
			return err
		}
		// What the board printed before now (a program's output, echo,
		// boot messages) is noise.
		if err := c.line.drain(ctx, 50*time.Millisecond); err != nil {
			return err
		}
		if err := c.line.write([]byte{ctrlA}); err != nil {
			return err
		}
		// A booting board may take a while before it listens.
		wait := time.Duration(1+attempt*2) * c.opts.EnterRawWait
		wctx, cancel := context.WithTimeout(ctx, wait)
		_, err := c.line.until(wctx, rawBanner, nil)
		cancel()
		if err == nil {
			if attempt > 0 {
				// An earlier try's banner may be late, or this one may
				// have been the earlier's: whichever is still on its way
				// must not be taken for the next exec's reply.
				if err := c.line.drain(ctx, 200*time.Millisecond); err != nil {
					return err
				}
			}
			c.inRaw = true
			c.prepare = true
			return nil
		}
		if ctx.Err() != nil || errors.Is(err, ErrDisconnected) {
			return err
		}
		lastErr = err
		silent := c.line.received == before
		if silent && wasSilent && c.line.filled {
			c.line.stopped()
			return fmt.Errorf("%w: no answer to Ctrl-C and Ctrl-A in %v (board printed %s)", ErrSilent, wait, c.line.lastSeen())
		}
		if attempt == 0 && c.line.received-heard <= 2 && !c.line.filled {
			// A board that stays silent (but for an acknowledgement) and
			// does not break on Ctrl-C may be reading a transfer whose
			// sender died, with Ctrl-C off (boardfs's upload helpers read
			// up to a few KB that way). It takes what comes as the missing
			// data until the program ends; the stray file it leaves is an
			// upload temporary, swept on the next connect. A board that
			// answers anything, a slow one booting, is not flooded.
			if err := c.fill(ctx, stuckReadFiller); err != nil {
				return err
			}
		}
	}
	if c.line.received == before {
		c.line.stopped()
		return fmt.Errorf("%w: %w: nothing came from it (%w)", ErrNoRawREPL, ErrSilent, lastErr)
	}
	return fmt.Errorf("%w: %w; the board last printed %s", ErrNoRawREPL, lastErr, c.line.lastSeen())
}

// ready makes sure the board sits at the raw prompt with Prepare done.
func (c *Conn) ready(ctx context.Context) error {
	// A board at rest at the raw prompt says nothing; anything it sent
	// since (boot messages, a banner) means it reset while idle.
	if c.inRaw && c.line.pending() {
		c.log.Debug("board spoke while idle: re-entering raw mode", "bytes", len(c.line.buf))
		c.inRaw = false
	}
	if !c.inRaw {
		if err := c.enterRaw(ctx); err != nil {
			return err
		}
	}
	if c.prepare && !c.busy && c.opts.Prepare != nil {
		c.busy = true
		err := c.opts.Prepare(ctx, c)
		c.busy = false
		if err != nil {
			return fmt.Errorf("repl: prepare: %w", err)
		}
		c.prepare = false
	}
	return nil
}

// Exec runs code in the raw REPL and returns what it printed. A Python
// exception on the board is returned as *PyError.
func (c *Conn) Exec(ctx context.Context, code string) ([]byte, error) {
	r, err := c.Start(ctx, code)
	if err != nil {
		return nil, err
	}
	return r.Wait(ctx)
}

// Start sends code to the board and returns while it runs, so the caller
// can stream its stdin and stdout.
func (c *Conn) Start(ctx context.Context, code string) (*Run, error) {
	if err := c.ready(ctx); err != nil {
		return nil, err
	}
	start := time.Now()
	c.execs++
	if err := c.send(ctx, []byte(code)); err != nil {
		c.fail(ctx, err)
		c.log.Debug("exec failed to start", "bytes", len(code), "err", err)
		return nil, err
	}
	return &Run{c: c, ctx: ctx, size: len(code), start: start}, nil
}

// fail leaves the board usable after an exchange went wrong: a cancelled or
// confused exchange is interrupted, and the next exec re-enters raw mode.
func (c *Conn) fail(ctx context.Context, err error) {
	c.inRaw = false
	c.settled = false
	if errors.Is(err, ErrDisconnected) || errors.Is(err, ErrBoardReset) {
		return
	}
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_ = c.Interrupt(ictx)
}

// send puts code on the line, by raw-paste where the board has it.
func (c *Conn) send(ctx context.Context, code []byte) error {
	if c.rawPaste >= 0 {
		used, err := c.tryRawPaste(ctx, code)
		if used || err != nil {
			return err
		}
	}
	if len(code) > plainSafe {
		if used, err := c.sendFed(ctx, code); used || err != nil {
			return err
		}
	}
	return c.sendPlain(ctx, code)
}

// sendPlain sends code in plain raw mode, which has no flow control: in
// pieces with pauses, so a board with a small receive buffer keeps up.
func (c *Conn) sendPlain(ctx context.Context, code []byte) error {
	for p := code; len(p) > 0; {
		n := min(len(p), c.opts.PieceSize)
		if err := c.line.write(p[:n]); err != nil {
			return err
		}
		p = p[n:]
		if len(p) > 0 {
			if err := sleep(ctx, c.opts.PiecePause); err != nil {
				return err
			}
		}
	}
	if err := c.line.write([]byte{ctrlD}); err != nil {
		return err
	}
	// The raw REPL answers OK as soon as it has the code; a board that
	// does not was not at the raw prompt.
	heard := c.line.received
	octx, cancel := context.WithTimeout(ctx, c.opts.AnswerWait)
	head, err := c.line.until(octx, []byte("OK"), c.resetSeen)
	cancel()
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = c.noAnswer(heard)
		}
		return c.waitError("OK", err)
	}
	// A plain raw exec answers OK at once; anything else means the board
	// was not where we thought. But for a banner: a loaded board may
	// answer a Ctrl-A from entering raw mode late, and since that Ctrl-A
	// went out before the code, the code arrived whole after it.
	if rest := bytes.ReplaceAll(head, rawBanner, nil); len(bytes.TrimSpace(rest)) > 0 {
		return fmt.Errorf("%w: %q before OK", ErrProtocol, head)
	} else if len(rest) != len(head) {
		c.log.Debug("late raw REPL banner before OK", "bytes", len(head))
	}
	return nil
}

// tryRawPaste asks for raw-paste mode and, if the board agrees, sends code
// with its flow control. used is false when the board does not support it;
// the board is then back at an empty raw prompt.
func (c *Conn) tryRawPaste(ctx context.Context, code []byte) (used bool, err error) {
	settled := c.settled
	c.settled = false
	if settled && c.rawPaste > 0 && len(code)+1 <= min(c.pasteWindow, pipelined) {
		return true, c.pipelinePaste(ctx, code)
	}
	if err := c.line.write([]byte{ctrlE, 'A', ctrlA}); err != nil {
		return false, err
	}
	return c.tryRawPasteAnswer(ctx, code)
}

// pipelined is the most code, its end included, that goes out right
// behind the raw-paste request. The board's answer to the request would
// cost a round trip (two latency-timer waits behind a USB-serial adapter),
// and short code needs no grant: the board's window covers it, and while
// the board answers, the request and the code wait in its input ring,
// which on the smallest (the ESP8266's) holds 255.
const pipelined = 128

// pipelinePaste sends the raw-paste request, code and its end at once to
// a board that took raw-paste before and whose window covers the code,
// then reads its answer and the end's acknowledgement. An answer other
// than yes is a protocol error, never a reason to send the code again in
// plain raw mode: the board may have run it already.
func (c *Conn) pipelinePaste(ctx context.Context, code []byte) error {
	msg := make([]byte, 0, len(code)+4)
	msg = append(append(append(msg, ctrlE, 'A', ctrlA), code...), ctrlD)
	if err := c.line.write(msg); err != nil {
		return err
	}
	for len(c.line.buf) < 4 {
		if err := c.answer(ctx); err != nil {
			return c.waitError("raw-paste answer", err)
		}
	}
	if !bytes.HasPrefix(c.line.buf, []byte("R\x01")) {
		// The board reset since the last exec (its boot messages come
		// first, then its friendly banner), or it is not the board that
		// took raw-paste before: ask again next time.
		c.rawPaste = 0
		got := append([]byte(nil), c.line.buf[:4]...)
		bctx, cancel := context.WithTimeout(ctx, c.opts.AnswerWait)
		_, err := c.line.until(bctx, rawBanner, c.resetSeen)
		cancel()
		if errors.Is(err, ErrBoardReset) || errors.Is(err, ErrDisconnected) {
			return err
		}
		return fmt.Errorf("%w: %q instead of raw-paste's yes", ErrProtocol, got)
	}
	c.line.consume(2)
	if window := int(binary.LittleEndian.Uint16(c.line.consume(2))); window != c.pasteWindow {
		c.rawPaste = 0
		return fmt.Errorf("%w: raw-paste window %d, was %d", ErrProtocol, window, c.pasteWindow)
	}
	return c.endPaste(ctx)
}

// tryRawPasteAnswer reads the board's answer to the raw-paste probe and,
// where it says yes, sends the code.
func (c *Conn) tryRawPasteAnswer(ctx context.Context, code []byte) (used bool, err error) {
	for len(c.line.buf) < 2 {
		if err := c.answer(ctx); err != nil {
			return false, c.waitError("raw-paste answer", err)
		}
	}
	switch {
	case bytes.HasPrefix(c.line.buf, []byte("R\x01")):
		c.line.consume(2)
		c.rawPaste = 1
	case bytes.HasPrefix(c.line.buf, []byte("R\x00")):
		// Understood but not supported: the board waits for plain raw code.
		c.line.consume(2)
		c.rawPaste = -1
		return false, nil
	default:
		// Firmware without raw-paste took 0x01 as Ctrl-A: banner again,
		// at once. A board that does not answer so was not at the raw
		// prompt (it reset): give up soon and let the next exec re-enter.
		heard := c.line.received
		bctx, cancel := context.WithTimeout(ctx, c.opts.AnswerWait)
		_, err := c.line.until(bctx, rawBanner, c.resetSeen)
		cancel()
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				err = c.noAnswer(heard)
			}
			return false, c.waitError("raw prompt after raw-paste probe", err)
		}
		// That banner may have been a late one from entering raw mode,
		// with the real answer behind it: look briefly before deciding.
		pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		for len(c.line.buf) < 2 && c.line.fill(pctx) == nil {
		}
		cancel()
		if bytes.HasPrefix(c.line.buf, []byte("R\x01")) || bytes.HasPrefix(c.line.buf, []byte("R\x00")) {
			return c.tryRawPasteAnswer(ctx, code)
		}
		c.rawPaste = -1
		return false, nil
	}
	for len(c.line.buf) < 2 {
		if err := c.answer(ctx); err != nil {
			return true, c.waitError("raw-paste window", err)
		}
	}
	window := int(binary.LittleEndian.Uint16(c.line.consume(2)))
	if window == 0 {
		return true, fmt.Errorf("%w: raw-paste window of 0", ErrProtocol)
	}
	c.pasteWindow = window
	credit := window
	for sent := 0; sent < len(code); {
		// Take the grants that have arrived; wait for one when out of credit.
		for credit == 0 || len(c.line.buf) > 0 {
			if len(c.line.buf) == 0 {
				if err := c.answer(ctx); err != nil {
					return true, c.waitError("raw-paste flow control", err)
				}
			}
			switch b := c.line.consume(1)[0]; b {
			case ctrlA:
				credit += window
			case ctrlD:
				// The board stopped reading (a syntax error, say): end the
				// code; its reply follows as usual.
				if err := c.line.write([]byte{ctrlD}); err != nil {
					return true, err
				}
				return true, nil
			default:
				return true, fmt.Errorf("%w: %q during raw-paste", ErrProtocol, b)
			}
		}
		n := min(credit, len(code)-sent)
		if err := c.line.write(code[sent : sent+n]); err != nil {
			return true, err
		}
		sent += n
		credit -= n
	}
	if err := c.line.write([]byte{ctrlD}); err != nil {
		return true, err
	}
	return true, c.endPaste(ctx)
}

// endPaste reads the board's acknowledgement of the code's end, 0x04;
// grants that were in flight may come first.
func (c *Conn) endPaste(ctx context.Context) error {
	for {
		if len(c.line.buf) == 0 {
			if err := c.answer(ctx); err != nil {
				return c.waitError("end of raw-paste", err)
			}
		}
		switch b := c.line.consume(1)[0]; b {
		case ctrlA:
		case ctrlD:
			return nil
		default:
			return fmt.Errorf("%w: %q ending raw-paste", ErrProtocol, b)
		}
	}
}

// answer reads at least one more byte of an answer the board gives at
// once (a raw-paste grant, an acknowledgement): nothing within AnswerWait
// means it stopped answering.
func (c *Conn) answer(ctx context.Context) error {
	actx, cancel := context.WithTimeout(ctx, c.opts.AnswerWait)
	defer cancel()
	err := c.line.fill(actx)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		c.line.stopped()
		return fmt.Errorf("%w: nothing came for %v", ErrSilent, c.opts.AnswerWait)
	}
	return err
}

// noAnswer is why an answer the board gives at once (OK, a banner) did not
// come within AnswerWait, given the count of bytes received before the
// wait: it said nothing at all, or something else (it reset: the next exec
// re-enters raw mode).
func (c *Conn) noAnswer(heard int64) error {
	if c.line.received == heard {
		c.line.stopped()
		return fmt.Errorf("%w: nothing came for %v", ErrSilent, c.opts.AnswerWait)
	}
	return ErrBoardReset
}

// resetSeen ends a wait when the board shows signs of having reset.
func (c *Conn) resetSeen(seen []byte) error {
	if friendlyBanner.Match(seen) || bytes.Contains(seen, softReboot) {
		return ErrBoardReset
	}
	return nil
}

// waitError says what was awaited and what arrived instead.
func (c *Conn) waitError(awaited string, err error) error {
	if errors.Is(err, ErrBoardReset) {
		c.inRaw = false
		c.prepare = true
		c.fedReady = false
		return fmt.Errorf("%w while waiting for %s (board printed %s)", ErrBoardReset, awaited, c.line.lastSeen())
	}
	return fmt.Errorf("repl: waiting for %s: %w (board printed %s)", awaited, err, c.line.lastSeen())
}

// Run is code running on the board.
type Run struct {
	c     *Conn
	ctx   context.Context // Start's: bounds Read
	size  int
	start time.Time
	done  bool
	err   error // a Read or Write failed: the exchange is over
}

// Read returns the program's stdout bytes as they arrive, uninterpreted:
// binary output may hold 0x04, so the caller reads exactly as many bytes as
// it expects and then calls Wait for the rest. It waits as long as the
// context given to Start allows, and fails with ErrSilent when the board
// sends nothing for Options.Silence.
func (r *Run) Read(p []byte) (int, error) {
	return r.ReadContext(r.ctx, p)
}

// ReadContext is Read bounded by ctx rather than Start's context, and as
// Read by Options.Silence.
func (r *Run) ReadContext(ctx context.Context, p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	c := r.c
	sctx, cancel := context.WithTimeout(ctx, c.opts.Silence)
	n, err := c.line.read(sctx, p)
	cancel()
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			c.line.stopped()
			err = fmt.Errorf("%w: nothing came for %v while reading the program's output (board printed %s)", ErrSilent, c.opts.Silence, c.line.lastSeen())
		}
		r.err = err
		c.fail(ctx, err)
	}
	return n, err
}

// Unread puts back bytes the caller read but did not expect (the end of the
// program's output, say), so that Wait sees them.
func (r *Run) Unread(p []byte) {
	r.c.line.buf = append(append([]byte(nil), p...), r.c.line.buf...)
}

// Abandon gives up on a program whose output the caller can no longer
// follow (a damaged frame length, say): the board is interrupted and the
// next exec re-enters raw mode, skipping whatever the program still prints.
func (r *Run) Abandon(ctx context.Context) {
	r.done = true
	r.c.fail(ctx, ErrProtocol)
}

// Write sends bytes to the program's stdin (sys.stdin.buffer on the board).
// It fails with ErrSilent when the port takes no byte for Options.Silence
// (a stalled adapter whose buffers are full).
func (r *Run) Write(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if err := r.c.line.write(p); err != nil {
		r.err = err
		r.c.fail(r.ctx, err)
		return 0, err
	}
	return len(p), nil
}

// Wait reads the rest of the program's stdout up to its end marker, then its
// error text, and returns the stdout. A Python exception is a *PyError;
// a cancelled ctx interrupts the board. A deadline that passes after half
// of Options.Silence or more without a byte is ErrSilent; after a failed
// Read or Write, Wait returns that error at once.
func (r *Run) Wait(ctx context.Context) ([]byte, error) {
	c := r.c
	if r.done {
		return nil, errors.New("repl: Wait called twice")
	}
	r.done = true
	if r.err != nil {
		// The exchange ended with a failed Read or Write, and the board
		// was interrupted then.
		return nil, r.err
	}
	heard, waited := c.line.received, time.Now()
	out, err := c.line.until(ctx, []byte{ctrlD}, c.resetSeen)
	if err == nil {
		var errText []byte
		errText, err = c.line.until(ctx, []byte{ctrlD}, c.resetSeen)
		if err == nil {
			_, err = c.line.until(ctx, []byte{'>'}, c.resetSeen)
		}
		if err == nil {
			if len(errText) > 0 {
				err = ParseError(string(errText))
			}
			c.log.Debug("exec", "bytes", r.size, "stdout", len(out), "took", time.Since(r.start), "err", err)
			c.settled = c.inRaw && !c.line.pending()
			return out, err
		}
	}
	if silent := time.Since(waited); c.line.received == heard && errors.Is(err, context.DeadlineExceeded) && silent >= c.opts.Silence/2 {
		// A program may compute for long in silence; one that ran out
		// its deadline without a byte counts as a board that stopped,
		// unless the deadline came soon after the wait began (a caller's
		// bound of Silence, say, started a moment before it).
		c.line.stopped()
		err = fmt.Errorf("%w: nothing came for %v (%w)", ErrSilent, silent.Round(time.Second), err)
	}
	err = c.waitError("the end of the program's output", err)
	c.fail(ctx, err)
	c.log.Debug("exec", "bytes", r.size, "stdout", len(out), "took", time.Since(r.start), "err", err)
	return out, err
}
