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

func TestESP8266ReceiveBufferDropsWhileBusy(t *testing.T) {
	b := boardtest.Start(t, boardtest.ESP8266, boardtest.Options{})
	l := openLine(t, b.Device)
	l.enterRaw()
	// Interrupts off: the data holds 0x03.
	l.write("import sys,time,micropython\nmicropython.kbd_intr(-1)\ntime.sleep(1)\nd=sys.stdin.buffer.read(256)\nmicropython.kbd_intr(3)\nprint(len(d), d == bytes(range(256)))\x04")
	l.expect("OK", 5*time.Second)
	data := make([]byte, 2048)
	for i := range data {
		data[i] = byte(i)
	}
	l.write(string(data))
	out := l.expect("\x04", 10*time.Second)
	if strings.TrimRight(out, "\r\n") != "256 True" {
		t.Errorf("board read %q, want the first 256 bytes intact", out)
	}
	l.expect("\x04", 5*time.Second)
	if got := b.Dropped(); got != int64(len(data)-256) {
		t.Errorf("dropped %d bytes, want %d", got, len(data)-256)
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
