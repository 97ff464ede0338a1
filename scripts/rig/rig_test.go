package rig_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.bug.st/serial"

	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
	"github.com/ftpbridge/ftpbridge/scripts/rig"
)

// line is a bare serial client for checking the rig from the outside; it
// knows nothing of the repl package on purpose.
type line struct {
	t    testing.TB
	port serial.Port
	seen []byte // everything read so far
	rest []byte // read but not yet consumed by expect
}

func openLine(t testing.TB, device string) *line {
	t.Helper()
	var port serial.Port
	var err error
	for range 50 { // a replugged device takes a moment to appear
		port, err = serial.Open(device, &serial.Mode{BaudRate: 115200})
		if err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("open %s: %v", device, err)
	}
	if err := port.SetReadTimeout(50 * time.Millisecond); err != nil {
		t.Fatalf("set read timeout: %v", err)
	}
	t.Cleanup(func() { port.Close() })
	return &line{t: t, port: port}
}

func (l *line) write(s string) {
	l.t.Helper()
	if _, err := l.port.Write([]byte(s)); err != nil {
		l.t.Fatalf("write %q: %v", s, err)
	}
}

// expect reads until want has arrived and returns what came before it.
func (l *line) expect(want string, timeout time.Duration) string {
	l.t.Helper()
	got, err := l.readUntil(want, timeout)
	if err != nil {
		l.t.Fatalf("waiting for %q: %v; got %q", want, err, got)
	}
	return got
}

func (l *line) readUntil(want string, timeout time.Duration) (string, error) {
	got := l.rest
	l.rest = nil
	buf := make([]byte, 4096)
	deadline := time.Now().Add(timeout)
	for {
		if i := bytes.Index(got, []byte(want)); i >= 0 {
			l.rest = append([]byte(nil), got[i+len(want):]...)
			return string(got[:i]), nil
		}
		if time.Now().After(deadline) {
			return string(got), errors.New("timed out")
		}
		n, err := l.port.Read(buf)
		got = append(got, buf[:n]...)
		l.seen = append(l.seen, buf[:n]...)
		if err != nil {
			return string(got), err
		}
	}
}

// next returns bytes already read but not consumed, or reads more.
func (l *line) next(timeout time.Duration) []byte {
	l.t.Helper()
	if len(l.rest) > 0 {
		p := l.rest
		l.rest = nil
		return p
	}
	buf := make([]byte, 4096)
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); {
		n, err := l.port.Read(buf)
		if err != nil {
			l.t.Fatalf("read: %v", err)
		}
		if n > 0 {
			l.seen = append(l.seen, buf[:n]...)
			return buf[:n]
		}
	}
	l.t.Fatalf("nothing arrived in %v", timeout)
	return nil
}

// enterRaw interrupts whatever runs and waits for the raw prompt.
func (l *line) enterRaw() {
	l.t.Helper()
	l.write("\r\x03")
	time.Sleep(100 * time.Millisecond)
	l.write("\x03\x01")
	l.expect("raw REPL; CTRL-B to exit\r\n>", 20*time.Second)
}

// exec runs code in raw mode and returns its stdout and error text.
func (l *line) exec(code string) (stdout, errText string) {
	l.t.Helper()
	l.write(code + "\x04")
	l.expect("OK", 10*time.Second)
	stdout = l.expect("\x04", 20*time.Second)
	errText = l.expect("\x04", 10*time.Second)
	l.expect(">", 10*time.Second)
	return stdout, errText
}

func TestRawREPLOnEveryProfile(t *testing.T) {
	for _, p := range boardtest.Profiles {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			b := boardtest.Start(t, p, boardtest.Options{})
			l := openLine(t, b.Device)
			l.enterRaw()
			if out, errText := l.exec("x=41"); out != "" || errText != "" {
				t.Errorf("exec(x=41) = %q, %q, want empty", out, errText)
			}
			if out, errText := l.exec("print(x+1)"); strings.TrimRight(out, "\r\n") != "42" || errText != "" {
				t.Errorf("exec(print(x+1)) = %q, %q, want 42", out, errText)
			}
			out, errText := l.exec("print(1/0)")
			if out != "" || !strings.Contains(errText, "Traceback") || !strings.Contains(errText, "ZeroDivisionError") {
				t.Errorf("exec(print(1/0)) = %q, %q, want a ZeroDivisionError traceback", out, errText)
			}
			// Soft reset: Ctrl-D on an empty raw line.
			l.write("\x04")
			l.expect("soft reboot", 10*time.Second)
			l.expect("raw REPL; CTRL-B to exit\r\n>", 20*time.Second)
			if _, errText := l.exec("print(x)"); !strings.Contains(errText, "NameError") {
				t.Errorf("after soft reset, print(x) error = %q, want NameError", errText)
			}
		})
	}
}

func TestRawPasteWindow(t *testing.T) {
	b := boardtest.Start(t, boardtest.ESP32, boardtest.Options{Baud: 115200})
	l := openLine(t, b.Device)
	l.enterRaw()
	var code strings.Builder
	for i := 0; code.Len() < 10*1024; i++ {
		fmt.Fprintf(&code, "v%d = %d  # padding to make the snippet long\n", i, i)
	}
	code.WriteString("print(v0 + v100)\n")
	src := []byte(code.String())

	l.write("\x05A\x01")
	l.expect("R\x01", 5*time.Second)
	var size []byte
	for len(size) < 2 {
		size = append(size, l.next(5*time.Second)...)
	}
	window := int(size[0]) | int(size[1])<<8
	if window != 128 {
		t.Fatalf("raw-paste window = %d, want 128", window)
	}
	// The size grants one window; each 0x01 from the board grants another.
	granted, sent := window, 0
	flow := size[2:]
	for sent < len(src) {
		for sent >= granted || len(flow) > 0 {
			if len(flow) == 0 {
				flow = l.next(10 * time.Second)
			}
			for _, c := range flow {
				switch c {
				case 0x01:
					granted += window
				case 0x04:
					t.Fatalf("board ended the paste early after %d bytes", sent)
				}
			}
			flow = nil
		}
		n := min(granted-sent, len(src)-sent)
		l.write(string(src[sent : sent+n]))
		sent += n
	}
	l.write("\x04")
	l.expect("\x04", 10*time.Second)
	out := l.expect("\x04", 10*time.Second)
	if errText := l.expect("\x04", 10*time.Second); errText != "" {
		t.Fatalf("paste error: %q", errText)
	}
	if strings.TrimRight(out, "\r\n") != "100" {
		t.Errorf("paste output = %q, want 100", out)
	}
	l.expect(">", 5*time.Second)
	var done string
	for _, s := range b.Log() {
		if strings.Contains(s, "overrun") {
			t.Errorf("emulator saw an overrun: %s", s)
		}
		if strings.Contains(s, "raw-paste done") {
			done = s
		}
	}
	var nbytes, outstanding, w int
	if _, err := fmt.Sscanf(done[strings.Index(done, "raw-paste done"):], "raw-paste done bytes=%d max-outstanding=%d window=%d", &nbytes, &outstanding, &w); err != nil {
		t.Fatalf("no raw-paste summary in the emulator log (%q): %v", done, err)
	}
	if nbytes != len(src) || outstanding > 2*window {
		t.Errorf("emulator: bytes=%d max-outstanding=%d, want bytes=%d, outstanding <= %d", nbytes, outstanding, len(src), 2*window)
	}
}

// TestReceiveRingDropsWhileBusy sends 2048 bytes at 115200 baud to a board
// that sleeps for a second before reading: each profile keeps what its
// firmware's ring holds (a ring of N bytes holds N-1) and loses the rest.
func TestReceiveRingDropsWhileBusy(t *testing.T) {
	rings := map[boardtest.Profile]int{boardtest.ESP32: 259, boardtest.ESP8266: 255, boardtest.Pyboard: 259}
	for p, kept := range rings {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			b := boardtest.Start(t, p, boardtest.Options{Baud: 115200})
			l := openLine(t, b.Device)
			l.enterRaw()
			// Interrupts off: the data holds 0x03.
			l.write(fmt.Sprintf("import sys,time,micropython\nmicropython.kbd_intr(-1)\ntime.sleep(1)\nd=sys.stdin.buffer.read(%d)\n"+
				"micropython.kbd_intr(3)\nprint(len(d), d == (bytes(range(256))*2)[:%d])\x04", kept, kept))
			l.expect("OK", 5*time.Second)
			data := make([]byte, 2048)
			for i := range data {
				data[i] = byte(i)
			}
			l.write(string(data))
			if out := l.expect("\x04", 10*time.Second); strings.TrimRight(out, "\r\n") != fmt.Sprint(kept, " True") {
				t.Errorf("board read %q, want the first %d bytes intact", out, kept)
			}
			l.expect("\x04", 5*time.Second)
			if got := b.Dropped(); got != int64(len(data)-kept) {
				t.Errorf("dropped %d bytes, want %d; log %q", got, len(data)-kept, b.Log())
			}
		})
	}
}

// TestUnthrottledLineIsLossless: with no baud rate the host's writes wait
// while a busy board's buffer is full, so even the ESP8266 loses nothing.
func TestUnthrottledLineIsLossless(t *testing.T) {
	b := boardtest.Start(t, boardtest.ESP8266, boardtest.Options{})
	l := openLine(t, b.Device)
	l.enterRaw()
	l.write("import sys,time,micropython\nmicropython.kbd_intr(-1)\ntime.sleep_ms(500)\nd=sys.stdin.buffer.read(4096)\n" +
		"micropython.kbd_intr(3)\nprint(len(d), d == bytes(range(256))*16)\x04")
	l.expect("OK", 5*time.Second)
	data := make([]byte, 4096)
	for i := range data {
		data[i] = byte(i)
	}
	l.write(string(data))
	if out := l.expect("\x04", 10*time.Second); strings.TrimRight(out, "\r\n") != "4096 True" {
		t.Errorf("board read %q, want all 4096 bytes intact", out)
	}
	if got := b.Dropped(); got != 0 {
		t.Errorf("dropped %d bytes, want none", got)
	}
}

func TestRunningProgramStopsOnCtrlC(t *testing.T) {
	for _, p := range []boardtest.Profile{boardtest.ESP32, boardtest.ESP8266} {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			b := boardtest.Start(t, p, boardtest.Options{Running: true})
			l := openLine(t, b.Device)
			before := l.expect("\n", 5*time.Second)
			l.expect("\n", 5*time.Second)
			l.write("\x03")
			l.expect("KeyboardInterrupt", 5*time.Second)
			l.expect(">>> ", 5*time.Second)
			if got, err := l.readUntil("\n", 500*time.Millisecond); err == nil {
				t.Errorf("board still prints after Ctrl-C: %q (first line was %q)", got, before)
			}
		})
	}
}

func TestCutAndReplug(t *testing.T) {
	for _, p := range []boardtest.Profile{boardtest.ESP32, boardtest.Microbit} {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			b := boardtest.Start(t, p, boardtest.Options{CutAfter: 4000, ReplugAfter: 500 * time.Millisecond})
			l := openLine(t, b.Device)
			l.enterRaw()
			l.exec("f=open('keep.txt','w');f.write('kept');f.close()")
			l.exec("x=1")
			l.write("for i in range(1000):print('a fairly long line of output', i)\x04")
			var readErr error
			buf := make([]byte, 4096)
			for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
				if _, readErr = l.port.Read(buf); readErr != nil {
					break
				}
			}
			// An unplugged USB serial port fails reads with EIO, or with a
			// zero-length read that go.bug.st/serial reports as PortError.
			if readErr == nil {
				t.Fatalf("reads still succeed after the cut; log %q", b.Log())
			}
			if _, err := l.port.Write([]byte("x")); err == nil {
				t.Errorf("write after the cut succeeded")
			}
			if _, err := os.Lstat(b.Device); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("device %s still there after the cut: %v", b.Device, err)
			}
			l2 := openLine(t, b.Device)
			l2.enterRaw()
			if _, errText := l2.exec("print(x)"); !strings.Contains(errText, "NameError") {
				t.Errorf("after replug print(x) error = %q, want NameError (a fresh board)", errText)
			}
			if out, _ := l2.exec("print(open('keep.txt').read())"); strings.TrimSpace(out) != "kept" {
				t.Errorf("after replug keep.txt = %q, want kept", out)
			}
		})
	}
}

func TestFlipAt(t *testing.T) {
	const flipAt = 6000
	b := boardtest.Start(t, boardtest.ESP32, boardtest.Options{FlipAt: flipAt})
	l := openLine(t, b.Device)
	l.enterRaw()
	l.write("import sys\nfor i in range(40): sys.stdout.buffer.write(bytes(range(256)))\x04")
	l.expect("OK", 10*time.Second)
	before := len(l.seen) - len(l.rest) // every byte the board has sent before the payload
	// The payload holds 0x04 bytes: read it by length, not up to a marker.
	var payload []byte
	for len(payload) < 40*256 {
		payload = append(payload, l.next(10*time.Second)...)
	}
	l.rest = payload[40*256:]
	payload = payload[:40*256]
	l.expect("\x04\x04>", 10*time.Second)
	var diffs []string
	for i, c := range payload {
		if want := byte(i); c != want {
			diffs = append(diffs, fmt.Sprintf("byte %d of the stream: %#02x, want %#02x", before+i+1, c, want))
			if before+i+1 != flipAt || c^want != 0x01 {
				t.Errorf("unexpected change at byte %d of the stream: %#02x, want %#02x", before+i+1, c, want)
			}
		}
	}
	if len(diffs) != 1 {
		t.Errorf("changes: %q, want exactly one, at byte %d", diffs, flipAt)
	}
}

func TestDropIn(t *testing.T) {
	b := boardtest.Start(t, boardtest.ESP32, boardtest.Options{})
	l := openLine(t, b.Device)
	l.enterRaw()
	b.DropIn(9) // the 3 of print(123456)
	if out, errText := l.exec("print(123456)"); strings.TrimSpace(out) != "12456" || errText != "" {
		t.Errorf("print(123456) with its 9th byte lost = %q, %q; want 12456", out, errText)
	}
	if out, _ := l.exec("print(123456)"); strings.TrimSpace(out) != "123456" {
		t.Errorf("the next exec printed %q, want 123456: only one byte is lost", out)
	}
}

func TestResetKeepsFiles(t *testing.T) {
	b := boardtest.Start(t, boardtest.ESP32, boardtest.Options{})
	l := openLine(t, b.Device)
	l.enterRaw()
	l.exec("x=5")
	if err := os.WriteFile(filepath.Join(b.Root, "host.txt"), []byte("from host"), 0o644); err != nil {
		t.Fatal(err)
	}
	b.Reset()
	l.expect(">>> ", 20*time.Second)
	l.enterRaw()
	if _, errText := l.exec("print(x)"); !strings.Contains(errText, "NameError") {
		t.Errorf("after reset print(x) error = %q, want NameError", errText)
	}
	if out, _ := l.exec("print(open('host.txt').read())"); strings.TrimSpace(out) != "from host" {
		t.Errorf("board reads host.txt as %q", out)
	}
	l.exec("f=open('board.txt','wb');f.write(b'from board');f.close()")
	if got, err := os.ReadFile(filepath.Join(b.Root, "board.txt")); err != nil || string(got) != "from board" {
		t.Errorf("host reads board.txt as %q, %v", got, err)
	}
}

func TestPyboardMounts(t *testing.T) {
	b := boardtest.Start(t, boardtest.Pyboard, boardtest.Options{})
	l := openLine(t, b.Device)
	l.enterRaw()
	if out, errText := l.exec("import os\nprint(sorted(os.listdir('/')), os.getcwd())"); strings.TrimSpace(out) != "['flash', 'sd'] /flash" {
		t.Errorf("root and cwd = %q, %q, want ['flash', 'sd'] /flash", out, errText)
	}
	if _, errText := l.exec("open('/top.txt','w')"); !strings.Contains(errText, "ENODEV") {
		t.Errorf("creating a file in / gave %q, want OSError ENODEV", errText)
	}
	l.exec("f=open('/flash/a.txt','w');f.write('a');f.close()")
	if _, errText := l.exec("os.rename('/flash/a.txt','/sd/a.txt')"); !strings.Contains(errText, "OSError") {
		t.Errorf("rename across mounts gave %q, want an OSError", errText)
	}
	if got, err := os.ReadFile(filepath.Join(b.Root, "flash", "a.txt")); err != nil || string(got) != "a" {
		t.Errorf("host reads flash/a.txt as %q, %v", got, err)
	}
}

func TestErrnoNumbersAreMicroPythons(t *testing.T) {
	b := boardtest.Start(t, boardtest.ESP32, boardtest.Options{})
	l := openLine(t, b.Device)
	l.enterRaw()
	code := "import os, errno\nr=[]\n" +
		"for f in (lambda: open('/missing'), lambda: os.mkdir('/'), lambda: os.rmdir('/d')):\n" +
		"    try:\n        f()\n    except OSError as e:\n        r.append(e.errno)\n" +
		"print(r)"
	l.exec("os_=__import__('os');os_.mkdir('/d');open('/d/x','w').close()")
	if out, errText := l.exec(code); strings.TrimSpace(out) != "[2, 17, 39]" {
		// ENOENT, EEXIST and ENOTEMPTY as py/mperrno.h numbers them.
		t.Errorf("errnos = %q, %q, want [2, 17, 39]", out, errText)
	}
}

// bursts runs code that prints one byte every 10 ms, twenty times, and
// returns in how many reads the bytes arrived, and the time from the first
// to the last.
func bursts(t *testing.T, l *line) (int, time.Duration) {
	t.Helper()
	l.write("import time\nfor i in range(20):\n print('x', end='')\n time.sleep_ms(10)\n\x04")
	l.expect("OK", 10*time.Second)
	n, got := 0, 0
	var first time.Time
	for deadline := time.Now().Add(20 * time.Second); got < 20 && time.Now().Before(deadline); {
		p := l.next(20 * time.Second)
		if i := bytes.LastIndexByte(p, 'x'); i >= 0 {
			l.rest = append([]byte(nil), p[i+1:]...)
		}
		if c := bytes.Count(p, []byte("x")); c > 0 {
			if n == 0 {
				first = time.Now()
			}
			n++
			got += c
		}
	}
	if got != 20 {
		t.Fatalf("%d bytes arrived, want 20", got)
	}
	span := time.Since(first)
	l.expect("\x04>", 10*time.Second)
	return n, span
}

// TestLatencyHoldsOutput: through an adapter whose latency timer is 100 ms,
// bytes the board prints 10 ms apart reach the host in bursts, one per
// timer expiry; with no adapter they come as printed.
func TestLatencyHoldsOutput(t *testing.T) {
	for _, latency := range []time.Duration{0, 100 * time.Millisecond} {
		t.Run(latency.String(), func(t *testing.T) {
			t.Parallel()
			b := boardtest.Start(t, boardtest.ESP32, boardtest.Options{Baud: 115200, Latency: latency})
			l := openLine(t, b.Device)
			l.enterRaw()
			n, span := bursts(t, l)
			t.Logf("20 bytes printed 10 ms apart arrived in %d reads over %v", n, span)
			// The timer sends at most once per expiry: n bursts span n-1
			// periods, give or take the reader's own scheduling.
			if latency > 0 && n > int((span+latency/2)/latency)+1 {
				t.Errorf("the bytes arrived in %d reads over %v, want at most one per %v", n, span, latency)
			}
			if latency == 0 && n < 3 {
				t.Errorf("the bytes arrived in %d reads, want them as printed without an adapter", n)
			}
		})
	}
}

// TestFlashPausesWrites: writing 64 KB costs 16 erases of 45 ms and the
// page programs, and while the board writes it takes nothing from the
// line, so bytes beyond its ring are lost.
func TestFlashPausesWrites(t *testing.T) {
	b := boardtest.Start(t, boardtest.ESP32, boardtest.Options{Baud: 115200, Flash: true})
	l := openLine(t, b.Device)
	l.enterRaw()
	l.exec("import sys\nb=bytes(4096)")
	start := time.Now()
	l.write("f=open('big','wb')\nfor i in range(16): f.write(b)\nf.close()\nd=sys.stdin.buffer.read(259)\nprint(len(d))\x04")
	l.expect("OK", 5*time.Second)
	// 1000 bytes take 87 ms at 115200 baud: they all arrive while the
	// board erases.
	l.write(strings.Repeat("y", 1000))
	if out := l.expect("\x04", 20*time.Second); strings.TrimSpace(out) != "259" {
		t.Errorf("the board read %q, want 259 bytes", out)
	}
	elapsed := time.Since(start)
	l.expect("\x04>", 5*time.Second)
	// 16 sector erases of 45 ms and 256 page programs of 0.4 ms.
	if min := 16*45*time.Millisecond + 256*400*time.Microsecond; elapsed < min {
		t.Errorf("writing 64 KB took %v, want at least %v", elapsed, min)
	}
	if got := b.Dropped(); got != 1000-259 {
		t.Errorf("the board dropped %d bytes while it wrote flash, want %d", got, 1000-259)
	}
}

// TestRealHeap: each VM board's gc.mem_free() after boot is its real
// board's figure, and an allocation beyond it fails with MemoryError.
func TestRealHeap(t *testing.T) {
	for _, p := range []boardtest.Profile{boardtest.ESP32, boardtest.ESP8266, boardtest.Pyboard} {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			free := rig.RealHeap(p)
			b := boardtest.Start(t, p, boardtest.Options{Heap: free})
			l := openLine(t, b.Device)
			l.enterRaw()
			out, errText := l.exec("import gc\nprint(gc.mem_free())")
			var got int
			if _, err := fmt.Sscan(out, &got); err != nil || errText != "" {
				t.Fatalf("gc.mem_free() = %q, %q", out, errText)
			}
			if got < free-2048 || got > free {
				t.Errorf("gc.mem_free() after boot = %d, want about %d", got, free)
			}
			if _, errText := l.exec(fmt.Sprintf("x=bytearray(%d)", free+4096)); !strings.Contains(errText, "MemoryError") {
				t.Errorf("allocating more than the heap: %q, want MemoryError", errText)
			}
			if out, errText := l.exec(fmt.Sprintf("x=bytearray(%d)\nprint(len(x))", free/2)); strings.TrimSpace(out) != fmt.Sprint(free/2) {
				t.Errorf("allocating half the heap: %q, %q", out, errText)
			}
			// What an exec leaves as garbage is collected before the next.
			l.exec("x=None")
			if out, errText := l.exec(fmt.Sprintf("y=bytearray(%d)\nprint(len(y))", free*2/3)); strings.TrimSpace(out) != fmt.Sprint(free*2/3) {
				t.Errorf("allocating two thirds of the heap after freeing half: %q, %q", out, errText)
			}
		})
	}
}

// TestStallHoldsOutput: after StallAfter bytes nothing comes from the board
// for StallFor, then the rest arrives whole; a command sent during the
// stall is answered after it.
func TestStallHoldsOutput(t *testing.T) {
	const stallFor = time.Second
	b := boardtest.Start(t, boardtest.ESP32, boardtest.Options{StallAfter: 3000, StallFor: stallFor})
	l := openLine(t, b.Device)
	l.enterRaw()
	l.write("for i in range(100): print('%04d' % i + 'x' * 45)\x04")
	var payload []byte
	var gap time.Duration
	last := time.Now()
	buf := make([]byte, 4096)
	for deadline := time.Now().Add(20 * time.Second); !bytes.Contains(payload, []byte("0099")) && time.Now().Before(deadline); {
		k, err := l.port.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if k > 0 {
			gap = max(gap, time.Since(last))
			last = time.Now()
			payload = append(payload, buf[:k]...)
		}
	}
	if gap < stallFor*8/10 {
		t.Errorf("the longest silence was %v, want about %v", gap, stallFor)
	}
	for i := range 100 {
		if !bytes.Contains(payload, []byte(fmt.Sprintf("%04d%s", i, strings.Repeat("x", 45)))) {
			t.Fatalf("line %d is missing after the stall", i)
		}
	}
	l.rest = payload[bytes.Index(payload, []byte("0099")):]
	l.expect("\x04\x04>", 10*time.Second)

	b.Stall(stallFor)
	start := time.Now()
	if out, _ := l.exec("print(6*7)"); strings.TrimSpace(out) != "42" {
		t.Errorf("after a stall the board printed %q, want 42", out)
	}
	if took := time.Since(start); took < stallFor*8/10 {
		t.Errorf("an exec during a %v stall took %v", stallFor, took)
	}
}

// TestUSBCDCNeverDrops: on native USB a busy board's full buffer holds the
// host back; every byte arrives, at no more than 64 a millisecond.
func TestUSBCDCNeverDrops(t *testing.T) {
	for _, p := range []boardtest.Profile{boardtest.ESP32, boardtest.Pyboard} {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			b := boardtest.Start(t, p, boardtest.Options{USBCDC: true})
			l := openLine(t, b.Device)
			l.enterRaw()
			const size = 16 * 1024
			l.write(fmt.Sprintf("import sys,time,micropython\nmicropython.kbd_intr(-1)\ntime.sleep_ms(500)\nd=sys.stdin.buffer.read(%d)\n"+
				"micropython.kbd_intr(3)\nprint(len(d), d == bytes(range(256))*%d)\x04", size, size/256))
			l.expect("OK", 5*time.Second)
			data := make([]byte, size)
			for i := range data {
				data[i] = byte(i)
			}
			start := time.Now()
			l.write(string(data))
			if out := l.expect("\x04", 20*time.Second); strings.TrimRight(out, "\r\n") != fmt.Sprint(size, " True") {
				t.Errorf("board read %q, want all %d bytes intact", out, size)
			}
			if took := time.Since(start); took < size/64*time.Millisecond {
				t.Errorf("%d bytes crossed in %v, faster than 64 bytes a frame", size, took)
			}
			if got := b.Dropped(); got != 0 {
				t.Errorf("dropped %d bytes, want none", got)
			}
		})
	}
}

// TestCPUCompileTime: with the CPU model an ESP8266 takes its own time to
// compile 4 KB of code; without it the VM answers at the host's speed.
func TestCPUCompileTime(t *testing.T) {
	code, want := bigCode(4096)
	for _, cpu := range []bool{false, true} {
		t.Run(fmt.Sprint("cpu=", cpu), func(t *testing.T) {
			t.Parallel()
			b := boardtest.Start(t, boardtest.ESP8266, boardtest.Options{CPU: cpu})
			l := openLine(t, b.Device)
			l.enterRaw()
			start := time.Now()
			if out, errText := l.exec(code); strings.TrimSpace(out) != want {
				t.Fatalf("exec = %q, %q, want %s", out, errText, want)
			}
			took := time.Since(start)
			// About 50 code bytes a line cost 63 us each, the rest (the
			// comment) little: well over 100 ms on an 80 MHz ESP8266.
			if cpu && took < 100*time.Millisecond {
				t.Errorf("compiling 4 KB on the ESP8266 took %v, want over 100 ms", took)
			}
			if !cpu && took > 2*time.Second {
				t.Errorf("without the CPU model the exec took %v", took)
			}
		})
	}
}

// bigCode is about n bytes of Python that prints a sum proving it all ran.
func bigCode(n int) (string, string) {
	var sb strings.Builder
	sb.WriteString("s=0\n")
	i := 0
	for sb.Len() < n {
		fmt.Fprintf(&sb, "s+=%d*%d-%d # a comment to make the line long\n", i, i+1, i)
		i++
	}
	sb.WriteString("print(s)\n")
	sum := 0
	for j := range i {
		sum += j*(j+1) - j
	}
	return sb.String(), fmt.Sprint(sum)
}

func TestConfigRefusesContradictions(t *testing.T) {
	cases := map[string]rig.Config{
		"usb-cdc with a baud rate":  {Profile: rig.ESP32, USBCDC: true, Baud: 115200},
		"usb-cdc with latency":      {Profile: rig.ESP32, USBCDC: true, Latency: time.Millisecond},
		"usb-cdc on an esp8266":     {Profile: rig.ESP8266, USBCDC: true},
		"heap on the micro:bit":     {Profile: rig.Microbit, Heap: 4096},
		"stall without a duration":  {Profile: rig.ESP32, StallAfter: 10},
		"negative latency":          {Profile: rig.ESP32, Latency: -time.Millisecond},
		"unknown profile":           {Profile: "esp31"},
		"flash timing on micro:bit": {Profile: rig.Microbit, Flash: true},
		"clock without cpu":         {Profile: rig.Pyboard, ClockMHz: 64},
		"negative clock":            {Profile: rig.Pyboard, CPU: true, ClockMHz: -64},
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			if b, err := rig.Start(cfg); err == nil {
				b.Close()
				t.Errorf("rig.Start(%+v) succeeded, want an error", cfg)
			}
		})
	}
}

// A program that prints faster than the line carries must stop on Ctrl-C at
// once, as on a real board, whose UART holds back at most its FIFO (128
// bytes on an ESP32). A host that reads all it gets must see the prompt
// within a fraction of a second, and the board must not wedge however long
// the program has been printing.
func TestFloodingProgramStopsOnCtrlC(t *testing.T) {
	b := boardtest.Start(t, boardtest.ESP32, boardtest.Options{Baud: 115200})
	l := openLine(t, b.Device)
	l.write("\r")
	l.expect(">>> ", 10*time.Second)
	l.write("for i in range(10**9): print(i)\r\r")
	flooded := 0
	for deadline := time.Now().Add(8 * time.Second); time.Now().Before(deadline); {
		flooded += len(l.next(5 * time.Second))
	}
	l.write("\x03")
	start := time.Now()
	if got, err := l.readUntil("KeyboardInterrupt", 5*time.Second); err != nil {
		t.Fatalf("no KeyboardInterrupt within 5s of Ctrl-C (%d bytes printed before it): %v; %d bytes came, ending %q",
			flooded, err, len(got), got[max(0, len(got)-40):])
	}
	l.expect(">>> ", 5*time.Second)
	// Generous for a busy machine; the rig used to send on for minutes.
	took := time.Since(start)
	t.Logf("prompt %v after Ctrl-C, %d bytes printed before it", took, flooded)
	if took > 2*time.Second {
		t.Errorf("the prompt came %v after Ctrl-C (%d bytes printed before it)", took, flooded)
	}
	l.write("print(6*7)\r")
	l.expect("42", 5*time.Second)
}

// TestStartWaitsUntilReady: boardtest.Start returns once the board has
// booted, its first prompt already on the line, so that a test's first
// bytes meet a board that listens rather than one still booting (at 9600
// baud a host that met silence flooded the booting board with 8 KB of
// Ctrl-C, 8.5 s of the line).
func TestStartWaitsUntilReady(t *testing.T) {
	t.Parallel()
	for _, p := range boardtest.Profiles {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			b := boardtest.Start(t, p, boardtest.Options{Baud: 9600})
			l := openLine(t, b.Device)
			// The prompt waits in the pty's buffer: reading it takes no
			// time, however loaded the machine.
			if got, err := l.readUntil(">>> ", 200*time.Millisecond); err != nil {
				t.Errorf("right after Start the line holds %q, want the board's prompt: %v", got, err)
			}
		})
	}
}
