package repl

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Plain raw mode has no flow control: the board stores what arrives in its
// receive buffer and drops what does not fit, and a board busy for a moment
// (a garbage collection while it stores the code) falls behind at any
// pace. A lost byte is rarely harmless: it may still compile, as a
// different name or number. So code longer than a board's receive buffer
// is fed through a loader, _fc, that acknowledges each piece, at most two
// in flight, and checks the sum of what it got before the code runs. The
// loader stays on the board, installed through execs short enough to fit
// any receive buffer whole. It reads the serial line through what the
// board has:
//
//   - sys.stdin.buffer (ESP8266 firmware before raw-paste, 1.14): pieces
//     of 128 bytes (its buffer holds 256);
//   - microbit.uart (the micro:bit, whose buffer holds 63 bytes): pieces
//     of 30 bytes.
const (
	// plainSafe is the longest code sent without the loader where there is
	// one: with its Ctrl-D it fits the smallest receive buffer (the
	// micro:bit's 63 bytes), whatever the board is doing.
	plainSafe = 56
	feedAck   = 0x06
	// stdinFeed and uartFeed read n bytes of code, acknowledging each
	// piece, and return them if their sum is s. Ctrl-C is data while they
	// read. The micro:bit has neither memoryview nor slice assignment: the
	// bytes go one by one into a buffer of the final size, since one grown
	// piece by piece fragments its few KB of heap.
	stdinFeed = "def _fc(n,s):\n import sys,micropython as M\n b=bytearray(n);m=memoryview(b);i=0;e=0\n" +
		" r=sys.stdin.buffer.readinto;w=sys.stdout.buffer.write\n M.kbd_intr(-1)\n try:\n  w(b'\\x06')\n  while e<n:\n" +
		"   e=min(n,e+%[1]d)\n   while i<e:\n    i+=r(m[i:e])\n   w(b'\\x06')\n finally:\n  M.kbd_intr(3)\n" +
		" del m\n if sum(b)!=s:\n  raise ValueError('code damaged on the way')\n return bytes(b)\n"
	uartFeed = "def _fc(n,s):\n from microbit import uart as u\n import micropython as M,gc\n gc.collect();b=bytearray(n);t=bytearray(%[1]d);i=0;e=0\n M.kbd_intr(-1)\n try:\n" +
		"  u.write(b'\\x06')\n  while e<n:\n   e=min(n,e+%[1]d)\n   while i<e:\n    k=u.readinto(t,e-i)\n    if k:\n     for j in range(k):\n      b[i]=t[j];i+=1\n" +
		"   u.write(b'\\x06')\n finally:\n  M.kbd_intr(3)\n if sum(b)!=s:\n  raise ValueError('code damaged on the way')\n return bytes(b)\n"
)

// feeders are the loaders, in the order the board is asked about them.
var feeders = []struct {
	probe string // prints True where the loader can run; short enough to need none
	src   string // the loader's source, with the piece size to fill in
	piece int
}{
	{"import sys\nprint(hasattr(sys.stdin,'buffer'))", stdinFeed, 128},
	{"from microbit import uart\nprint(True)", uartFeed, 30},
}

// sendFed sends code through the board's loader; used is false when the
// board has none.
func (c *Conn) sendFed(ctx context.Context, code []byte) (used bool, err error) {
	if err := c.learnFeeder(ctx); err != nil {
		return false, err
	}
	if c.feeder < 0 {
		return false, nil
	}
	feeder := feeders[c.feeder-1]
	sum := 0
	for _, b := range code {
		sum += int(b)
	}
	call := fmt.Appendf(nil, "exec(_fc(%d,%d))", len(code), sum)
	for attempt := 0; ; attempt++ {
		if !c.fedReady {
			if err := c.installFeed(ctx, fmt.Sprintf(feeder.src, feeder.piece)); err != nil {
				return true, err
			}
		}
		if err := c.sendPlain(ctx, call); err != nil {
			return true, err
		}
		err := c.stream(ctx, code, feeder.piece)
		var pe *PyError
		if attempt == 0 && errors.As(err, &pe) && pe.Type == "NameError" && strings.Contains(pe.Message, "_fc") {
			// Something removed the loader since it was installed.
			c.fedReady = false
			continue
		}
		return true, err
	}
}

// learnFeeder asks the board once which loader it can run.
func (c *Conn) learnFeeder(ctx context.Context) error {
	if c.feeder != 0 {
		return nil
	}
	for i, f := range feeders {
		out, err := c.execPlain(ctx, f.probe)
		var pe *PyError
		if err != nil && !errors.As(err, &pe) {
			return fmt.Errorf("repl: asking how to feed the board code: %w", err)
		}
		if err == nil && strings.TrimSpace(string(out)) == "True" {
			c.feeder = i + 1
			return nil
		}
	}
	c.feeder = -1
	return nil
}

// execPlain runs code sent in plain raw mode; the code must be short
// enough for that (plainSafe).
func (c *Conn) execPlain(ctx context.Context, code string) ([]byte, error) {
	if err := c.sendPlain(ctx, []byte(code)); err != nil {
		return nil, err
	}
	r := &Run{c: c, ctx: ctx, size: len(code), start: time.Now()}
	return r.Wait(ctx)
}

// installFeed defines the loader on the board through execs of at most
// plainSafe bytes, each adding a piece of its source to a string.
func (c *Conn) installFeed(ctx context.Context, src string) error {
	first := true
	for len(src) > 0 {
		prefix := "_s+='"
		if first {
			prefix = "_s='"
		}
		var lit strings.Builder
		n := 0
		for n < len(src) {
			q := quoteChar(src[n])
			if len(prefix)+lit.Len()+len(q)+1 > plainSafe {
				break
			}
			lit.WriteString(q)
			n++
		}
		if _, err := c.execPlain(ctx, prefix+lit.String()+"'"); err != nil {
			return fmt.Errorf("repl: installing the code loader: %w", err)
		}
		src, first = src[n:], false
	}
	if _, err := c.execPlain(ctx, "exec(_s)\ndel _s"); err != nil {
		return fmt.Errorf("repl: installing the code loader: %w", err)
	}
	c.fedReady = true
	return nil
}

// quoteChar is one ASCII byte as it goes inside a single-quoted literal.
func quoteChar(b byte) string {
	switch b {
	case '\n':
		return `\n`
	case '\'':
		return `\'`
	case '\\':
		return `\\`
	}
	return string(rune(b))
}

// errNoAck is a loader that stopped acknowledging: it waits for bytes
// that were lost on the way.
var errNoAck = errors.New("no acknowledgement from the board's code loader")

// stream sends code to a loader that has just started: it acknowledges
// once when ready and once per piece, and at most two pieces are in flight.
func (c *Conn) stream(ctx context.Context, code []byte, piece int) error {
	awaitAck := func() error {
		if len(c.line.buf) == 0 {
			actx, cancel := context.WithTimeout(ctx, c.opts.AnswerWait)
			err := c.line.fill(actx)
			cancel()
			if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				return errNoAck
			}
			if err != nil {
				return c.waitError("the loader's acknowledgement", err)
			}
		}
		if got := c.line.buf[0]; got != feedAck {
			// The loader failed: its output and error follow as usual.
			r := &Run{c: c, ctx: ctx, start: time.Now()}
			_, err := r.Wait(ctx)
			if err == nil {
				err = fmt.Errorf("%w: %q instead of the loader's acknowledgement", ErrProtocol, got)
			}
			return err
		}
		c.line.consume(1)
		return nil
	}
	sent, acked := 0, -1 // the first acknowledgement says the loader is ready
	for acked*piece < len(code) {
		for acked >= 0 && sent < len(code) && sent-acked*piece < 2*piece {
			n := min(piece, len(code)-sent)
			if err := c.line.write(code[sent : sent+n]); err != nil {
				return err
			}
			sent += n
		}
		if err := awaitAck(); errors.Is(err, errNoAck) {
			return c.endLoader(ctx, len(code)-max(acked, 0)*piece, piece)
		} else if err != nil {
			return err
		}
		acked++
	}
	return nil
}

// endLoader ends a loader that waits for bytes lost on the way. NUL bytes,
// a piece at a time, complete its read; its sum check then fails and the
// board is back at the raw prompt. Ctrl-C would do it too, but where a
// second one lands after the loader has turned Ctrl-C back on, old
// firmware keeps the KeyboardInterrupt pending for the next exec.
func (c *Conn) endLoader(ctx context.Context, need, piece int) error {
	filler := make([]byte, piece)
	for range need/piece + 2 {
		if err := c.line.write(filler); err != nil {
			return err
		}
		if err := c.answer(ctx); err != nil {
			return c.waitError("the end of a loader that lost code", err)
		}
		for len(c.line.buf) > 0 && c.line.buf[0] == feedAck {
			c.line.consume(1)
		}
		if len(c.line.buf) > 0 {
			r := &Run{c: c, ctx: ctx, start: time.Now()}
			_, err := r.Wait(ctx)
			return fmt.Errorf("%w: code lost bytes on its way to the board (%v)", ErrProtocol, err)
		}
	}
	return fmt.Errorf("%w: the board's code loader took %d bytes more and still did not end", ErrProtocol, need+piece)
}
