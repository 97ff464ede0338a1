package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"

	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

// consoleAddr waits for the console's line in the log and returns its
// address.
func consoleAddr(t *testing.T, logs *lockedBuffer) string {
	t.Helper()
	re := regexp.MustCompile(`console on tcp://(\S+)"`)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if m := re.FindStringSubmatch(logs.String()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no console line:\n%s", logs.String())
		}
	}
}

// readUntil reads conn until want arrives, and returns all it read.
func readUntil(t *testing.T, conn net.Conn, want string) string {
	t.Helper()
	var got bytes.Buffer
	buf := make([]byte, 4096)
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for !strings.Contains(got.String(), want) {
		n, err := conn.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("console: %q did not come (%v); got %q", want, err, got.String())
		}
	}
	return got.String()
}

// ftpbridge --console: the console beside FTP, SITE RESET running the
// main.py just uploaded, and a program left running when ftpbridge stops.
func TestServeConsole(t *testing.T) {
	t.Parallel()
	b := boardtest.Start(t, boardtest.ESP32, boardtest.Options{Baud: 115200})
	var logs lockedBuffer
	a := testApp(t, nil, nil, &logs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pty := filepath.Join(t.TempDir(), "console")
	addr, done := startServing(t, ctx, a, &logs, b.Device, "--listen", "127.0.0.1:0", "--console", "127.0.0.1:0", "--console-pty", pty, b.Device)
	conn, err := net.DialTimeout("tcp", consoleAddr(t, &logs), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	readUntil(t, conn, ">>> ")
	if target, err := os.Readlink(pty); err != nil || !strings.HasPrefix(target, "/dev/") {
		t.Errorf("--console-pty %s: link to %q, %v; want a terminal device", pty, target, err)
	}

	c, err := ftp.Dial(addr, ftp.DialWithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login("anonymous", "x"); err != nil {
		t.Fatal(err)
	}
	main := "import time\nwhile True:\n    print('main.py tick')\n    time.sleep_ms(100)\n"
	if err := c.Stor("/main.py", strings.NewReader(main)); err != nil {
		t.Fatal(err)
	}
	// SITE as lftp's quote sends it, on a connection of its own.
	sc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tp := textproto.NewConn(sc)
	defer tp.Close()
	for _, line := range []string{"", "USER anonymous", "PASS x"} {
		if line != "" {
			_ = tp.PrintfLine("%s", line)
		}
		if _, _, err := tp.ReadResponse(0); err != nil && line == "PASS x" {
			t.Fatal(err)
		}
	}
	_ = tp.PrintfLine("SITE RESET")
	if code, msg, err := tp.ReadResponse(200); err != nil {
		t.Fatalf("SITE RESET = %d %s, %v", code, msg, err)
	}
	readUntil(t, conn, "main.py tick\n")

	stopServing(t, cancel, done)
	if _, err := os.Lstat(pty); err == nil {
		t.Errorf("%s left behind", pty)
	}
	// The program the console ran keeps running once ftpbridge is gone.
	port, err := b.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	_ = port.SetReadTimeout(100 * time.Millisecond)
	var after bytes.Buffer
	buf := make([]byte, 1024)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !strings.Contains(after.String(), "main.py tick"); {
		n, _ := port.Read(buf)
		after.Write(buf[:n])
	}
	if !strings.Contains(after.String(), "main.py tick") {
		t.Errorf("after ftpbridge stopped the board printed %q; want main.py still running", after.String())
	}
}

// ftpbridge --all --console: a client names the board (its folder), and
// each board has its pseudo-terminal in --console-pty's directory.
func TestServeAllConsole(t *testing.T) {
	t.Parallel()
	b0 := boardtest.Start(t, boardtest.ESP32, boardtest.Options{})
	b1 := boardtest.Start(t, boardtest.ESP32, boardtest.Options{})
	rp2 := func(dev string) serialPort { return serialPort{Name: dev, VID: "2e8a", PID: "0005"} }
	var logs lockedBuffer
	a := testApp(t, nil, []serialPort{rp2(b0.Device), rp2(b1.Device)}, &logs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ptys := filepath.Join(t.TempDir(), "consoles")
	_, done := startServingAs(t, ctx, a, &logs, `for every MicroPython board`, "--listen", "127.0.0.1:0", "--all",
		"--console", "127.0.0.1:0", "--console-pty", ptys)
	caddr := consoleAddr(t, &logs)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		entries, _ := os.ReadDir(ptys)
		if len(entries) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %d links, want one per board", ptys, len(entries))
		}
	}
	conn, err := net.DialTimeout("tcp", caddr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	asked := readUntil(t, conn, "which board? ")
	m := regexp.MustCompile(`boards: (\S+) (\S+)\r\n`).FindStringSubmatch(asked)
	if m == nil || !strings.HasPrefix(m[2], filepath.Base(b1.Device)) {
		t.Fatalf("the boards offered: %q; want both boards' folders", asked)
	}
	name := m[2]
	_, _ = io.WriteString(conn, name+"\r\n")
	if greeting := readUntil(t, conn, ">>> "); !strings.Contains(greeting, "console of "+name) {
		t.Errorf("greeting %q; want the console of %s", greeting, name)
	}
	_, _ = io.WriteString(conn, "print(6*7)\r")
	readUntil(t, conn, "42")
	stopServing(t, cancel, done)
}
