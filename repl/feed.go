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
// is fed through a loader that acknowledges each piece and checks the sum
// of what it got before running it, wherever the board has a way to read
// its serial line from Python:
//
//   - sys.stdin.buffer (ESP8266 firmware before raw-paste, 1.14): the loader
//     is sent with the code, two pieces of 128 bytes in flight (the
//     ESP8266's buffer holds 256).
//   - microbit.uart (the micro:bit, whose buffer holds 63 bytes): the
//     loader stays on the board as _fc, installed in execs short enough to
//     fit the buffer whole, and takes two pieces of 30 bytes in flight.
const (
	// plainSafe is the longest code sent without a loader where one
	// exists: with its Ctrl-D it fits the smallest receive buffer (the
	// micro:bit's 63 bytes), whatever the board is doing.
	plainSafe = 56
	// stdinMin is the shortest code the ESP8266's loader takes: shorter
	// code fits its 256-byte buffer.
	stdinMin   = 192
	stdinPiece = 128
	uartPiece  = 30
	feedAck    = 0x06
	stdinFeed  = "import sys,micropython as M\nM.kbd_intr(-1)\nr=sys.stdin.buffer.read;w=sys.stdout.buffer.write;c=b''\nw(b'\\x06')\n" +
		"while len(c)<%d:\n c+=r(min(%d,%d-len(c)));w(b'\\x06')\nM.kbd_intr(3)\ndel r,w,M\n" +
		"if sum(c)!=%d:\n raise ValueError('code damaged on the way')\ntry:\n exec(c)\nfinally:\n del c\n"
	// uartFeed reads n bytes of code, acknowledging each piece, and
	// returns them if their sum is s. Ctrl-C is data while it reads. The
	// micro:bit has neither memoryview nor slice assignment: the bytes go
	// one by one into a buffer of the final size, since one grown piece by
	// piece fragments its few KB of heap.
	uartFeed = "def _fc(n,s):\n from microbit import uart as u\n import micropython as M,gc\n gc.collect();b=bytearray(n);t=bytearray(%d);i=0;e=0\n M.kbd_intr(-1)\n try:\n" +
		"  u.write(b'\\x06')\n  while e<n:\n   e=min(n,e+%d)\n   while i<e:\n    k=u.readinto(t,e-i)\n    if k:\n     for j in range(k):\n      b[i]=t[j];i+=1\n" +
		"   u.write(b'\\x06')\n finally:\n  M.kbd_intr(3)\n if sum(b)!=s:\n  raise ValueError('code damaged on the way')\n return bytes(b)\n"
)

// feeder says how a board can be fed code: 0 not yet known, and then one
// of these.
const (
	feedNone = iota + 1
	feedStdin
	feedUART
)

// sendFed sends code through the board's loader; used is false when the
// board has none for code of this length.
func (c *Conn) sendFed(ctx context.Context, code []byte) (used bool, err error) {
	if err := c.learnFeeder(ctx); err != nil {
		return false, err
	}
	sum := 0
	for _, b := range code {
		sum += int(b)
	}
	switch c.feeder {
	case feedStdin:
		if len(code) <= stdinMin {
			return false, nil
		}
		if err := c.sendPlain(ctx, []byte(fmt.Sprintf(stdinFeed, len(code), stdinPiece, len(code), sum))); err != nil {
			return true, err
		}
		return true, c.stream(ctx, code, stdinPiece)
	case feedUART:
		call := fmt.Appendf(nil, "exec(_fc(%d,%d))", len(code), sum)
		for attempt := 0; ; attempt++ {
			if !c.fedReady {
				if err := c.installUARTFeed(ctx); err != nil {
					return true, err
				}
			}
			if err := c.sendPlain(ctx, call); err != nil {
				return true, err
			}
			err := c.stream(ctx, code, uartPiece)
			var pe *PyError
			if attempt == 0 && errors.As(err, &pe) && pe.Type == "NameError" && strings.Contains(pe.Message, "_fc") {
				// Something removed the loader since it was installed.
				c.fedReady = false
				continue
			}
			return true, err
		}
	}
	return false, nil
}

// learnFeeder asks the board once which loader it can run. The probes are
// short enough to need none.
func (c *Conn) learnFeeder(ctx context.Context) error {
	if c.feeder != 0 {
		return nil
	}
	probes := []struct {
		code   string
		feeder int
	}{
		{"import sys\nprint(hasattr(sys.stdin,'buffer'))", feedStdin},
		{"from microbit import uart\nprint(True)", feedUART},
	}
	for _, p := range probes {
		out, err := c.execPlain(ctx, p.code)
		var pe *PyError
		if err != nil && !errors.As(err, &pe) {
			return fmt.Errorf("repl: asking how to feed the board code: %w", err)
		}
		if err == nil && strings.TrimSpace(string(out)) == "True" {
			c.feeder = p.feeder
			return nil
		}
	}
	c.feeder = feedNone
	return nil
}

// execPlain runs code sent in plain raw mode; the code must be short
// enough for that (plainSafe).
func (c *Conn) execPlain(ctx context.Context, code string) ([]byte, error) {
	if err := c.sendPlain(ctx, []byte(code)); err != nil {
		return nil, err
	}
	r := &Run{c: c, size: len(code), start: time.Now()}
	return r.Wait(ctx)
}

// installUARTFeed defines _fc on the board through execs of at most
// plainSafe bytes, each adding a piece of its source to a string.
func (c *Conn) installUARTFeed(ctx context.Context) error {
	src := fmt.Sprintf(uartFeed, uartPiece, uartPiece)
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
			actx, cancel := context.WithTimeout(ctx, answerWait)
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
			r := &Run{c: c, start: time.Now()}
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
		actx, cancel := context.WithTimeout(ctx, answerWait)
		err := c.line.fill(actx)
		cancel()
		if err != nil {
			return c.waitError("the end of a loader that lost code", err)
		}
		for len(c.line.buf) > 0 && c.line.buf[0] == feedAck {
			c.line.consume(1)
		}
		if len(c.line.buf) > 0 {
			r := &Run{c: c, start: time.Now()}
			_, err := r.Wait(ctx)
			return fmt.Errorf("%w: code lost bytes on its way to the board (%v)", ErrProtocol, err)
		}
	}
	return fmt.Errorf("%w: the board's code loader took %d bytes more and still did not end", ErrProtocol, need+piece)
}
