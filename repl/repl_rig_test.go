package repl_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.bug.st/serial"

	"github.com/ftpbridge/ftpbridge/repl"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

func open(t testing.TB, b *boardtest.Board, opts repl.Options) *repl.Conn {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	port, err := b.Open()
	if err != nil {
		t.Fatalf("open %s: %v", b.Device, err)
	}
	c := repl.New(port, opts)
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func trim(b []byte) string { return strings.TrimRight(string(b), "\r\n") }

func TestExecOnEveryProfile(t *testing.T) {
	t.Parallel()
	for _, p := range boardtest.Profiles {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			b := boardtest.Start(t, p, boardtest.Options{Baud: 115200})
			prepared := 0
			c := open(t, b, repl.Options{Prepare: func(ctx context.Context, c *repl.Conn) error {
				prepared++
				_, err := c.Exec(ctx, "helper_defined=1")
				return err
			}})
			ctx := ctxFor(t, 60*time.Second)
			if _, err := c.Exec(ctx, "x=41"); err != nil {
				t.Fatalf("Exec(x=41): %v", err)
			}
			if out, err := c.Exec(ctx, "print(x+1)"); err != nil || trim(out) != "42" {
				t.Errorf("Exec(print(x+1)) = %q, %v, want 42", out, err)
			}
			_, err := c.Exec(ctx, "print(1/0)")
			var pe *repl.PyError
			if !errors.As(err, &pe) || pe.Type != "ZeroDivisionError" || !strings.Contains(pe.Traceback, "Traceback") {
				t.Errorf("Exec(print(1/0)) error = %#v, want a ZeroDivisionError with its traceback", err)
			}
			_, err = c.Exec(ctx, "open('no_such_file')")
			// The micro:bit's 1.9.2 says "file not found" without an errno.
			if !errors.As(err, &pe) || pe.Type != "OSError" || (pe.Errno != 2 && p != boardtest.Microbit) {
				t.Errorf("open of a missing file: %#v, want OSError errno 2", err)
			}
			if err := c.SoftReset(ctx); err != nil {
				t.Fatalf("SoftReset: %v", err)
			}
			if _, err := c.Exec(ctx, "print(x)"); !errors.As(err, &pe) || pe.Type != "NameError" {
				t.Errorf("after SoftReset, print(x) error = %v, want NameError", err)
			}
			if out, err := c.Exec(ctx, "print(helper_defined)"); err != nil || trim(out) != "1" {
				t.Errorf("after SoftReset Prepare did not run again: %q, %v", out, err)
			}
			if prepared != 2 {
				t.Errorf("Prepare ran %d times, want 2 (first use, soft reset)", prepared)
			}
			info, err := c.Info(ctx)
			if err != nil {
				t.Fatalf("Info: %v", err)
			}
			t.Logf("%s: %+v", p, info)
			wantPaste := p == boardtest.ESP32 || p == boardtest.Pyboard
			if info.RawPaste != wantPaste || info.MemFree <= 0 || !strings.HasPrefix(info.Implementation, "micropython ") {
				t.Errorf("Info = %+v, want raw-paste %v, free memory, an implementation", info, wantPaste)
			}
			// The VM is a full build with machine.RTC; an ESP's clock starts
			// at 2000-01-01 on power-up, a Pyboard's keeps time. The
			// micro:bit's 1.9.2 has no deflate and no RTC.
			vm := p != boardtest.Microbit
			if info.Deflate != vm || info.Compress != vm || info.RTC != vm {
				t.Errorf("Info = %#v, want deflate, compress and RTC %v", info, vm)
			}
			boardNow := time.Date(info.Epoch, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(info.Clock) * time.Second)
			wantNow := time.Now()
			if p == boardtest.ESP32 || p == boardtest.ESP8266 {
				wantNow = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
			}
			if vm && boardNow.Sub(wantNow).Abs() > time.Minute {
				t.Errorf("the board's clock says %v, want about %v", boardNow, wantNow)
			}
		})
	}
}

// bigCode is n bytes of valid Python whose output proves it all arrived.
func bigCode(n int) (string, string) {
	var sb strings.Builder
	sb.WriteString("s=0\n")
	i := 0
	for sb.Len() < n {
		fmt.Fprintf(&sb, "s+=%d # keep the line long enough to count\n", i)
		i++
	}
	sb.WriteString("print(s)\n")
	return sb.String(), fmt.Sprint(i * (i - 1) / 2)
}

func TestLargeCodeOnEveryProfile(t *testing.T) {
	t.Parallel()
	for _, p := range boardtest.Profiles {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			b := boardtest.Start(t, p, boardtest.Options{Baud: 115200})
			c := open(t, b, repl.Options{})
			size := 10 * 1024
			if p == boardtest.Microbit {
				size = 2 * 1024 // the micro:bit compiles in a few KB of heap
			}
			code, want := bigCode(size)
			out, err := c.Exec(ctxFor(t, 60*time.Second), code)
			if err != nil || trim(out) != want {
				t.Errorf("Exec(%d bytes) = %q, %v, want %s", len(code), out, err, want)
			}
		})
	}
}

// TestLostByteIsCaught loses one digit of long code on its way to a board
// without raw-paste, as a board whose receive buffer overflowed loses one.
// In plain raw mode the code would still compile and print a wrong sum.
func TestLostByteIsCaught(t *testing.T) {
	t.Parallel()
	for _, p := range []boardtest.Profile{boardtest.ESP8266, boardtest.Microbit} {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			b := boardtest.Start(t, p, boardtest.Options{Baud: 115200})
			// The loader's silence ends the exec that lost a byte: how long
			// the conn waits for it (10 s by default) is not under test.
			c := open(t, b, repl.Options{AnswerWait: 3 * time.Second})
			ctx := ctxFor(t, 60*time.Second)
			code, want := bigCode(600)
			// The second exec learns how many bytes go out before the code.
			var sent [3]int64
			for i := range 2 {
				sent[i] = c.Stats().Sent
				if out, err := c.Exec(ctx, code); err != nil || trim(out) != want {
					t.Fatalf("Exec(%d bytes) = %q, %v, want %s", len(code), out, err, want)
				}
			}
			sent[2] = c.Stats().Sent
			before := sent[2] - sent[1] - int64(len(code))
			digit := len(code)/2 + strings.IndexAny(code[len(code)/2:], "123456789")
			b.DropIn(before + int64(digit) + 1)
			out, err := c.Exec(ctx, code)
			if !errors.Is(err, repl.ErrProtocol) || !strings.Contains(err.Error(), "ValueError") {
				t.Errorf("Exec with digit %q at %d lost = %q, %v; want the loader's sum check to fail", code[digit], digit, out, err)
			}
			if out, err := c.Exec(ctx, code); err != nil || trim(out) != want {
				t.Errorf("the next Exec = %q, %v, want %s", out, err, want)
			}
			t.Logf("exec with a lost byte: %v", err)
		})
	}
}

func TestEnterRawFromAnyState(t *testing.T) {
	t.Parallel()
	states := map[string]string{
		"half-typed line":   "x = 'unfinished",
		"friendly paste":    "\x05for i in range(3):\r\n",
		"already raw":       "\x01",
		"raw, half a line":  "\x01print('half",
		"friendly, at rest": "\r\n",
	}
	for name, typed := range states {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := boardtest.Start(t, boardtest.ESP32, boardtest.Options{})
			// Put the board in the state by hand, as another program would
			// have left it.
			port, err := serial.Open(b.Device, &serial.Mode{BaudRate: 115200})
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond) // the board boots
			if _, err := port.Write([]byte(typed)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
			port.Close()
			c2 := open(t, b, repl.Options{})
			if out, err := c2.Exec(ctxFor(t, 20*time.Second), "print('back')"); err != nil || trim(out) != "back" {
				t.Errorf("Exec after %s = %q, %v", name, out, err)
			}
		})
	}
}

func TestEnterRawWhileProgramRuns(t *testing.T) {
	t.Parallel()
	for _, p := range []boardtest.Profile{boardtest.ESP32, boardtest.ESP8266} {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			b := boardtest.Start(t, p, boardtest.Options{Baud: 115200, Running: true})
			time.Sleep(500 * time.Millisecond) // let it print for a while
			c := open(t, b, repl.Options{})
			if out, err := c.Exec(ctxFor(t, 30*time.Second), "print(6*7)"); err != nil || trim(out) != "42" {
				t.Errorf("Exec on a running board = %q, %v, want 42", out, err)
			}
		})
	}
}

func TestStreamingStdinStdout(t *testing.T) {
	t.Parallel()
	for _, p := range []boardtest.Profile{boardtest.ESP32, boardtest.ESP8266, boardtest.Pyboard} {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			b := boardtest.Start(t, p, boardtest.Options{Baud: 115200})
			c := open(t, b, repl.Options{})
			ctx := ctxFor(t, 60*time.Second)
			// Echo 4 KB of every byte value (0x03 and 0x04 included) back,
			// in 128-byte pieces, acknowledged one at a time as the ESP8266's
			// 256-byte receive buffer needs.
			code := "import sys,micropython\nmicropython.kbd_intr(-1)\ntry:\n" +
				" for i in range(32):\n  d=sys.stdin.buffer.read(128)\n  sys.stdout.buffer.write(d)\n" +
				"finally:\n micropython.kbd_intr(3)\n"
			r, err := c.Start(ctx, code)
			if err != nil {
				t.Fatal(err)
			}
			var sent, got bytes.Buffer
			for i := range 32 {
				piece := make([]byte, 128)
				for j := range piece {
					piece[j] = byte(i*128 + j)
				}
				sent.Write(piece)
				if _, err := r.Write(piece); err != nil {
					t.Fatal(err)
				}
				if _, err := io.CopyN(&got, r, 128); err != nil {
					t.Fatalf("read echo %d: %v", i, err)
				}
			}
			if _, err := r.Wait(ctx); err != nil {
				t.Fatalf("Wait: %v", err)
			}
			if !bytes.Equal(got.Bytes(), sent.Bytes()) {
				t.Errorf("echo differs from what was sent")
			}
		})
	}
}

func TestDeadlineInterruptsAndLeavesBoardUsable(t *testing.T) {
	t.Parallel()
	b := boardtest.Start(t, boardtest.ESP32, boardtest.Options{})
	c := open(t, b, repl.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := c.Exec(ctx, "import time\nwhile True:\n print('busy')\n time.sleep_ms(20)\n")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Exec past its deadline: %v, want DeadlineExceeded", err)
	}
	if out, err := c.Exec(ctxFor(t, 20*time.Second), "print('usable')"); err != nil || trim(out) != "usable" {
		t.Errorf("Exec after an interrupted one = %q, %v", out, err)
	}
}

func TestResetDuringExec(t *testing.T) {
	t.Parallel()
	for _, p := range boardtest.Profiles {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			b := boardtest.Start(t, p, boardtest.Options{})
			prepared := 0
			c := open(t, b, repl.Options{Prepare: func(ctx context.Context, c *repl.Conn) error {
				prepared++
				return nil
			}})
			ctx := ctxFor(t, 60*time.Second)
			r, err := c.Start(ctx, "import time\nfor i in range(100):\n print(i)\n time.sleep_ms(50)\n")
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			b.Reset()
			if _, err := r.Wait(ctx); !errors.Is(err, repl.ErrBoardReset) {
				t.Fatalf("Wait across a reset: %v, want ErrBoardReset", err)
			}
			if out, err := c.Exec(ctx, "print('again')"); err != nil || trim(out) != "again" {
				t.Errorf("Exec after the reset = %q, %v", out, err)
			}
			if prepared != 2 {
				t.Errorf("Prepare ran %d times, want 2", prepared)
			}
		})
	}
}

// TestResetWhileIdle: the board resets between two execs. The second
// would go out right behind its raw-paste request (the first ended
// cleanly); the board's banner says it reset, so the conn enters raw mode
// again instead and the code runs once, whole.
func TestResetWhileIdle(t *testing.T) {
	t.Parallel()
	for _, p := range boardtest.Profiles {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			b := boardtest.Start(t, p, boardtest.Options{})
			c := open(t, b, repl.Options{})
			ctx := ctxFor(t, 60*time.Second)
			for _, code := range []string{"n = 1", "n += 1"} {
				if _, err := c.Exec(ctx, code); err != nil {
					t.Fatal(err)
				}
			}
			b.Reset()
			time.Sleep(time.Second) // the banner and prompt come out
			if _, err := c.Exec(ctx, "n = 40"); err != nil {
				t.Fatalf("Exec after the reset: %v", err)
			}
			if out, err := c.Exec(ctx, "n += 2\nprint(n)"); err != nil || trim(out) != "42" {
				t.Errorf("n after the reset = %q, %v; want 42", out, err)
			}
		})
	}
}

// TestResetWhileFed: the board resets while a program reads data from the
// host, as during an upload segment. The friendly REPL echoes the bytes
// still on their way after its prompt, and Wait sees the reset there
// instead of waiting out its deadline for an end that never comes.
func TestResetWhileFed(t *testing.T) {
	t.Parallel()
	b := boardtest.Start(t, boardtest.ESP32, boardtest.Options{Baud: 115200})
	c := open(t, b, repl.Options{})
	ctx := ctxFor(t, 60*time.Second)
	r, err := c.Start(ctx, "import sys,micropython\nmicropython.kbd_intr(-1)\nsys.stdin.buffer.read(4096)\nmicropython.kbd_intr(3)")
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	time.Sleep(time.Second) // the banner and prompt come out
	if _, err := r.Write(bytes.Repeat([]byte("x"), 256)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the echo comes out: Wait reads it with the banner
	start := time.Now()
	if _, err := r.Wait(ctxFor(t, 20*time.Second)); !errors.Is(err, repl.ErrBoardReset) {
		t.Fatalf("Wait across a reset with data echoed after the prompt: %v after %v, want ErrBoardReset",
			err, time.Since(start).Round(time.Millisecond))
	}
	if out, err := c.Exec(ctx, "print('again')"); err != nil || trim(out) != "again" {
		t.Errorf("Exec after the reset = %q, %v", out, err)
	}
}

func TestCutLine(t *testing.T) {
	t.Parallel()
	for _, p := range boardtest.Profiles {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			b := boardtest.Start(t, p, boardtest.Options{CutAfter: 3000})
			c := open(t, b, repl.Options{})
			ctx := ctxFor(t, 30*time.Second)
			_, err := c.Exec(ctx, "for i in range(1000): print('a line of output', i)")
			if !errors.Is(err, repl.ErrDisconnected) {
				t.Fatalf("Exec across a cut: %v, want ErrDisconnected", err)
			}
			if _, err := c.Exec(ctx, "print(1)"); !errors.Is(err, repl.ErrDisconnected) {
				t.Errorf("Exec after the cut: %v, want ErrDisconnected", err)
			}
		})
	}
}

func TestCloseLeavesFriendlyREPL(t *testing.T) {
	t.Parallel()
	b := boardtest.Start(t, boardtest.ESP32, boardtest.Options{})
	c := open(t, b, repl.Options{})
	if _, err := c.Exec(ctxFor(t, 10*time.Second), "pass"); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	port, err := serial.Open(b.Device, &serial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	port.SetReadTimeout(100 * time.Millisecond)
	port.Write([]byte("\r"))
	var got []byte
	buf := make([]byte, 1024)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !bytes.HasSuffix(got, []byte(">>> ")); {
		n, _ := port.Read(buf)
		got = append(got, buf[:n]...)
	}
	if !bytes.HasSuffix(got, []byte(">>> ")) {
		t.Errorf("after Close the board answers %q, want the friendly prompt", got)
	}
}

// TestRecoversFromAbandonedInput: the host died while the board read a
// transfer's bytes with Ctrl-C off (boardfs's upload helpers do). A new
// conn must still get in: the board takes what the conn sends as the
// missing data until the program ends.
func TestRecoversFromAbandonedInput(t *testing.T) {
	t.Parallel()
	for _, p := range []boardtest.Profile{boardtest.ESP32, boardtest.ESP8266} {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			b := boardtest.Start(t, p, boardtest.Options{Baud: 115200})
			first := open(t, b, repl.Options{})
			run, err := first.Start(ctxFor(t, 30*time.Second), "import sys,micropython\nmicropython.kbd_intr(-1)\nsys.stdin.buffer.read(4096)\nmicropython.kbd_intr(3)\nprint('done')")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := run.Write(make([]byte, 1000)); err != nil {
				t.Fatal(err)
			}
			first.Close() // the host is gone, 3096 bytes short

			second := open(t, b, repl.Options{})
			start := time.Now()
			out, err := second.Exec(ctxFor(t, 60*time.Second), "print(6*7)")
			if err != nil || trim(out) != "42" {
				t.Fatalf("Exec after an abandoned read: %q, %v", out, err)
			}
			// A board that was not stuck reading answers a few hundred
			// bytes; this one needed at least the 3096 it still waited for.
			if sent := second.Stats().Sent; sent < 3096 {
				t.Errorf("the second conn got in after sending %d bytes: the board was not stuck reading", sent)
			}
			t.Logf("got in after %v, %d bytes", time.Since(start).Round(time.Millisecond), second.Stats().Sent)
		})
	}
}
