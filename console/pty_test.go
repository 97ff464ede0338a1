//go:build linux || darwin

package console_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ftpbridge/ftpbridge/console"
)

// ptyTerm is a program that opens the console's pseudo-terminal, as
// picocom does.
type ptyTerm struct {
	t    *testing.T
	f    *os.File
	seen strings.Builder
}

func openPTY(t *testing.T, path string) *ptyTerm {
	t.Helper()
	var f *os.File
	for deadline := time.Now().Add(wait); ; {
		var err error
		f, err = os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("open %s: %v", path, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &ptyTerm{t: t, f: f}
}

func (p *ptyTerm) expect(want string) string {
	p.t.Helper()
	buf := make([]byte, 4096)
	deadline := time.Now().Add(wait)
	for !strings.Contains(p.seen.String(), want) {
		if time.Now().After(deadline) {
			p.t.Fatalf("pty: %q did not come; got %q", want, p.seen.String())
		}
		_ = p.f.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, _ := p.f.Read(buf)
		p.seen.Write(buf[:n])
	}
	got := p.seen.String()
	i := strings.Index(got, want) + len(want)
	p.seen.Reset()
	p.seen.WriteString(got[i:])
	return got[:i]
}

// A program that opens the pseudo-terminal gets the console; a second
// one, while a TCP client has it, is told who, and gets it once they
// leave.
func TestConsoleOnPTY(t *testing.T) {
	t.Parallel()
	b := startBridge(t, bridgeOptions{})
	path := filepath.Join(t.TempDir(), "esp32")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- console.ServePTY(ctx, path, b.Console, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServePTY: %v", err)
		}
		if _, err := os.Lstat(path); err == nil {
			t.Errorf("%s is left behind", path)
		}
	})
	p := openPTY(t, path)
	if greeting := p.expect(">>> "); !strings.Contains(greeting, "MicroPython") {
		t.Errorf("pty greeting %q", greeting)
	}
	p.f.WriteString("print(6*7)\r")
	p.expect("42")
	p.f.Close()

	tm := dialFree(t, b.Addr)
	tm.expect(">>> ", wait)
	p = openPTY(t, path)
	p.expect("in use by 127.0.0.1:")
	tm.conn.Close()
	p.expect(">>> ")
	p.f.WriteString("print(6*8)\r")
	p.expect("48")
	p.f.Close()
}
