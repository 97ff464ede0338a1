package console_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/boardfs"
	"github.com/ftpbridge/ftpbridge/console"
	"github.com/ftpbridge/ftpbridge/ftpdriver"
	"github.com/ftpbridge/ftpbridge/ftpdriver/ftptest"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

// bridge is an FTP server and a console over one emulated board, as
// ftpbridge --console runs them.
type bridge struct {
	*ftptest.Server
	Console *console.Console
	Addr    string // the console's TCP address
}

// programs is a board with its console, as cmd/ftpbridge serves it.
type programs struct {
	*boardfs.Link
	c *console.Console
}

func (p programs) SoftReset(ctx context.Context, op string) (string, error) {
	return p.c.SoftReset(ctx, op)
}

func (p programs) RunFile(ctx context.Context, path, op string) (string, error) {
	return p.c.RunFile(ctx, path, op)
}

var _ ftpdriver.Programs = programs{}

type bridgeOptions struct {
	ftp    ftptest.Options
	cons   console.Options
	listen console.ListenOptions
	set    func(c *console.Console) console.Consoles // the consoles the listener offers; default: c alone
}

func startBridge(t testing.TB, o bridgeOptions) *bridge {
	t.Helper()
	level := slog.LevelDebug
	if _, bench := t.(*testing.B); bench {
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: level}))
	if o.ftp.Board.Baud == 0 && o.ftp.Board.CutAfter == 0 {
		o.ftp.Board.Baud = 115200
	}
	if o.ftp.Driver.Logger == nil {
		o.ftp.Driver.Logger = log
	}
	b := &bridge{}
	o.ftp.Serve = func(link *boardfs.Link) ftpdriver.Board {
		o.cons.Logger = log.With("console", "esp32")
		if o.cons.Name == "" {
			o.cons.Name = "esp32"
		}
		b.Console = console.New(link, o.cons)
		return programs{Link: link, c: b.Console}
	}
	b.Server = ftptest.Start(t, o.ftp)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.Addr = ln.Addr().String()
	var set console.Consoles = console.One{C: b.Console}
	if o.set != nil {
		set = o.set(b.Console)
	}
	o.listen.Logger = log
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); b.Console.Serve(ctx) }()
	go func() {
		defer wg.Done()
		if err := console.ServeTCP(ctx, ln, set, o.listen); err != nil {
			t.Errorf("ServeTCP: %v", err)
		}
	}()
	// Before the server's and the board's cleanups, which were
	// registered first.
	t.Cleanup(func() { cancel(); wg.Wait() })
	return b
}

// term is a person at the console: what they type, and everything the
// console sent them.
type term struct {
	t    testing.TB
	conn net.Conn

	mu     sync.Mutex
	seen   []byte
	at     int // expect looks from here
	closed bool
	more   chan struct{}
}

func dialTerm(t testing.TB, addr string) *term {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial the console: %v", err)
	}
	tm := &term{t: t, conn: conn, more: make(chan struct{}, 1)}
	t.Cleanup(func() { conn.Close() })
	go tm.read()
	return tm
}

func (tm *term) read() {
	buf := make([]byte, 4096)
	for {
		n, err := tm.conn.Read(buf)
		tm.mu.Lock()
		tm.seen = append(tm.seen, buf[:n]...)
		tm.closed = err != nil
		tm.mu.Unlock()
		select {
		case tm.more <- struct{}{}:
		default:
		}
		if err != nil {
			return
		}
	}
}

func (tm *term) send(s string) {
	tm.t.Helper()
	if _, err := io.WriteString(tm.conn, s); err != nil {
		tm.t.Fatalf("typing %q: %v", s, err)
	}
}

// expect waits for want in what arrived since the last expect, and
// returns what arrived up to it; it fails the test after within.
func (tm *term) expect(want string, within time.Duration) string {
	tm.t.Helper()
	deadline := time.Now().Add(within)
	for {
		tm.mu.Lock()
		rest := tm.seen[tm.at:]
		if i := bytes.Index(rest, []byte(want)); i >= 0 {
			got := string(rest[:i+len(want)])
			tm.at += i + len(want)
			tm.mu.Unlock()
			return got
		}
		closed := tm.closed
		tm.mu.Unlock()
		if closed || time.Now().After(deadline) {
			tm.t.Fatalf("console: %q did not come within %v (closed: %v); it sent %q", want, within, closed, rest)
		}
		select {
		case <-tm.more:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// since returns what arrived after the last expect, without moving on.
func (tm *term) since() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return string(tm.seen[tm.at:])
}

// waitClosed waits for the console to close the connection.
func (tm *term) waitClosed(within time.Duration) string {
	tm.t.Helper()
	deadline := time.Now().Add(within)
	for {
		tm.mu.Lock()
		closed, seen := tm.closed, string(tm.seen)
		tm.mu.Unlock()
		if closed {
			return seen
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("console did not close the connection within %v; it sent %q", within, seen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// site sends a SITE command on a plain FTP connection and returns the
// reply.
func site(t *testing.T, addr, cmd string) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	tp := textproto.NewConn(conn)
	for _, step := range []struct {
		line string
		code int
	}{{"", 220}, {"USER anonymous", 331}, {"PASS x@", 230}} {
		if step.line != "" {
			if err := tp.PrintfLine("%s", step.line); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := tp.ReadResponse(step.code); err != nil {
			t.Fatalf("FTP %q: %v", step.line, err)
		}
	}
	if err := tp.PrintfLine("%s", cmd); err != nil {
		t.Fatal(err)
	}
	code, msg, err := tp.ReadResponse(0)
	if code == 0 {
		t.Fatalf("FTP %q: %v", cmd, err)
	}
	return code, msg
}

const wait = 30 * time.Second

// The console is the board's friendly REPL: what is typed runs.
func TestConsolePrints42(t *testing.T) {
	t.Parallel()
	b := startBridge(t, bridgeOptions{})
	tm := dialTerm(t, b.Addr)
	greeting := tm.expect(">>> ", wait)
	if !strings.Contains(greeting, "console of esp32") || !strings.Contains(greeting, "MicroPython") {
		t.Errorf("greeting %q: want ftpbridge's line and the board's banner", greeting)
	}
	tm.send("print(6*7)\r")
	tm.expect("print(6*7)\r\n42", wait)
	tm.expect(">>> ", wait)
	// FTP works beside it.
	if err := os.WriteFile(filepath.Join(b.Board.Root, "a.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := b.Dial(t)
	if size, err := c.FileSize("/a.txt"); err != nil || size != 5 {
		t.Errorf("SIZE /a.txt beside the console = %d, %v; want 5", size, err)
	}
	tm.send("print(6*8)\r")
	tm.expect("48", wait)
}

// An upload, then SITE RESET: the board runs the new main.py once it has
// it, and its output shows on the console. The new main.py is big enough
// to be still on its way when SITE RESET comes.
func TestStorThenSiteResetRunsMainPy(t *testing.T) {
	t.Parallel()
	// A short OpTimeout: SITE RESET must wait for the upload as long as
	// it moves, not for a share of one operation's time.
	b := startBridge(t, bridgeOptions{ftp: ftptest.Options{Driver: ftpdriver.Options{OpTimeout: 4 * time.Second}}})
	tm := dialTerm(t, b.Addr)
	tm.expect(">>> ", wait)
	c := b.Dial(t)
	if err := c.Stor("/main.py", strings.NewReader("print('old main.py')\n")); err != nil {
		t.Fatal(err)
	}
	// 240 KB of hex deflate to about 120 KB: ten seconds at 115200 baud,
	// past the 3 s an upload waits for the board before its 226, and
	// the 2 s SITE RESET once waited after it.
	var src strings.Builder
	src.WriteString("pad = '")
	for i := range 15000 {
		fmt.Fprintf(&src, "%016x", uint64(i)*0x9e3779b97f4a7c15)
	}
	src.WriteString("'\nprint('new main.py', 6*7, len(pad))\n")
	if err := c.Stor("/main.py", strings.NewReader(src.String())); err != nil {
		t.Fatal(err)
	}
	onBoard, _ := os.ReadFile(filepath.Join(b.Board.Root, "main.py"))
	pending := string(onBoard) != src.String()
	code, msg := site(t, b.Server.Addr, "SITE RESET")
	if code != 200 {
		t.Fatalf("SITE RESET = %d %s, want 200", code, msg)
	}
	if !pending {
		t.Error("the board had the new main.py before SITE RESET: the wait for pending uploads was not exercised")
	}
	out := tm.expect("new main.py 42 240000", wait)
	if !strings.Contains(out, "soft reboot") || strings.Contains(out, "old main.py") {
		t.Errorf("console after SITE RESET: %q; want the reboot line and the new main.py's output only", out)
	}
	tm.expect(">>> ", wait)
	if !strings.Contains(msg, "has ended") || !strings.Contains(msg, "on the console") {
		t.Errorf("SITE RESET reply %q: want it to say main.py ended and where its output went", msg)
	}
	tm.send("print(len(pad))\r")
	tm.expect("240000", wait)
}

// SITE RUN runs a file, its output on the console.
func TestSiteRun(t *testing.T) {
	t.Parallel()
	b := startBridge(t, bridgeOptions{})
	tm := dialTerm(t, b.Addr)
	tm.expect(">>> ", wait)
	c := b.Dial(t)
	if err := c.Stor("/hello.py", strings.NewReader("print('hello from', __name__)\nanswer = 42\n")); err != nil {
		t.Fatal(err)
	}
	if code, msg := site(t, b.Server.Addr, "SITE RUN hello.py"); code != 200 {
		t.Fatalf("SITE RUN hello.py = %d %s, want 200", code, msg)
	}
	out := tm.expect(">>> ", wait)
	if !strings.Contains(out, "SITE RUN /hello.py") || !strings.Contains(out, "hello from __main__") || strings.Contains(out, "exec(") {
		t.Errorf("console after SITE RUN: %q; want the notice and the output, not the line that ran it", out)
	}
	tm.send("print(answer)\r")
	tm.expect("42", wait)
	if code, msg := site(t, b.Server.Addr, "SITE RUN nothere.py"); code != 550 {
		t.Errorf("SITE RUN of a missing file = %d %s, want 550", code, msg)
	}
}

// A program printing every 100 ms on the console is interrupted by a
// RETR, the console says so in one line, and gets its prompt back.
func TestRetrInterruptsProgram(t *testing.T) {
	t.Parallel()
	b := startBridge(t, bridgeOptions{})
	if err := os.WriteFile(filepath.Join(b.Board.Root, "a.txt"), []byte("file contents"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := b.Dial(t)
	tm := dialTerm(t, b.Addr)
	tm.expect(">>> ", wait)
	tm.send("import time\r")
	tm.expect(">>> ", wait)
	tm.send("while True: print('tick'); time.sleep_ms(100)\r\r")
	tm.expect("tick", wait)
	tm.expect("tick", wait)
	// Running now: a tick came in the last tenths of a second.
	tm.expect("tick", time.Second)
	start := time.Now()
	r, err := c.Retr("/a.txt")
	if err != nil {
		t.Fatalf("RETR while a program runs on the console: %v", err)
	}
	data, err := io.ReadAll(r)
	r.Close()
	took := time.Since(start)
	if err != nil || string(data) != "file contents" {
		t.Fatalf("RETR = %q, %v", data, err)
	}
	out := tm.expect("[ftpbridge: interrupted for FTP: RETR /a.txt]\r\n>>> ", wait)
	if strings.Contains(out, "raw REPL") || strings.Contains(out, "Traceback") {
		t.Errorf("the console shows the raw REPL's traffic: %q", out)
	}
	t.Logf("RETR of 13 bytes from a running program took %v", took)
	time.Sleep(500 * time.Millisecond)
	if rest := tm.since(); strings.Contains(rest, "tick") {
		t.Errorf("the program still prints after it was interrupted: %q", rest)
	}
	tm.send("print(6*7)\r")
	tm.expect("42\n>>> ", wait)
}

// A second client is told who has the console, and the first keeps it.
func TestSecondClientRefused(t *testing.T) {
	t.Parallel()
	b := startBridge(t, bridgeOptions{})
	first := dialTerm(t, b.Addr)
	first.expect(">>> ", wait)
	second := dialTerm(t, b.Addr)
	said := second.waitClosed(wait)
	if !strings.Contains(said, "in use by 127.0.0.1:") || !strings.Contains(said, "try again") {
		t.Errorf("second client was told %q; want who holds the console", said)
	}
	first.send("print(6*7)\r")
	first.expect("42", wait)
	// Once the first leaves, the console is free again.
	first.conn.Close()
	dialFree(t, b.Addr).expect(">>> ", wait)
}

// dialFree dials the console until it is no longer in use: a client that
// just left is detached once the console has read the end of its
// connection.
func dialFree(t *testing.T, addr string) *term {
	t.Helper()
	for deadline := time.Now().Add(wait); ; {
		tm := dialTerm(t, addr)
		if line := tm.expect("]\r\n", wait); !strings.Contains(line, "in use") {
			return tm
		}
		if time.Now().After(deadline) {
			t.Fatal("the console stayed in use after its client left")
		}
		tm.conn.Close()
		time.Sleep(50 * time.Millisecond)
	}
}

// What is typed while FTP has the board waits, and reaches the board once
// FTP is done with it: buffered, not refused.
func TestTypingWhileFTPHoldsTheBoard(t *testing.T) {
	t.Parallel()
	b := startBridge(t, bridgeOptions{})
	tm := dialTerm(t, b.Addr)
	tm.expect(">>> ", wait)
	// 40 KB of random-looking hex: about 3 s on the line.
	var data strings.Builder
	for i := range 2500 {
		fmt.Fprintf(&data, "%016x", uint64(i)*0x9e3779b97f4a7c15)
	}
	c := b.Dial(t)
	stored := make(chan error, 1)
	go func() { stored <- c.Stor("/big.txt", strings.NewReader(data.String())) }()
	// FTP has the board once an operation is on it.
	for deadline := time.Now().Add(wait); ; {
		fsys, err := b.Link.FS()
		if err == nil && fsys.Using() != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the upload never took the board")
		}
		time.Sleep(10 * time.Millisecond)
	}
	tm.send("print(6*7)\r")
	said := tm.expect("what you type is sent once it is done]", wait)
	if strings.Contains(said, "42") {
		t.Fatalf("the board ran what was typed while FTP had it: %q", said)
	}
	if err := <-stored; err != nil {
		t.Fatal(err)
	}
	b.WaitUploads(t, wait)
	tm.expect("print(6*7)\r\n42", wait)
	got, err := os.ReadFile(filepath.Join(b.Board.Root, "big.txt"))
	if err != nil || string(got) != data.String() {
		t.Errorf("the upload beside the console: %d bytes, %v; want %d", len(got), err, data.Len())
	}
}

// A line half typed when FTP takes the board is not run; it is typed
// again once the console has the board back.
func TestHalfTypedLineKeptNotRun(t *testing.T) {
	t.Parallel()
	b := startBridge(t, bridgeOptions{})
	if err := os.WriteFile(filepath.Join(b.Board.Root, "a.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tm := dialTerm(t, b.Addr)
	tm.expect(">>> ", wait)
	tm.send("zz=1")
	tm.expect("zz=1", wait)
	c := b.Dial(t)
	if _, err := c.FileSize("/a.txt"); err != nil {
		t.Fatal(err)
	}
	out := tm.expect("\r\x1b[K>>> zz=1", wait)
	if strings.Contains(out, "interrupted") {
		t.Errorf("a line being typed was reported as a program interrupted: %q", out)
	}
	tm.send("\x03")
	tm.expect(">>> ", wait)
	tm.send("print('zz' in globals())\r")
	tm.expect("False", wait)
}

// With KeepProgram, FTP waits for the program on the console and is told
// the board is busy running one; once it ends, FTP gets the board.
func TestKeepProgram(t *testing.T) {
	t.Parallel()
	b := startBridge(t, bridgeOptions{
		ftp:  ftptest.Options{BusyWait: time.Second},
		cons: console.Options{KeepProgram: true},
	})
	if err := os.WriteFile(filepath.Join(b.Board.Root, "a.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tm := dialTerm(t, b.Addr)
	tm.expect(">>> ", wait)
	tm.send("import time\r")
	tm.expect(">>> ", wait)
	tm.send("while True: print('tick'); time.sleep_ms(100)\r\r")
	tm.expect("tick", wait)
	c := b.Dial(t)
	_, err := c.FileSize("/a.txt")
	if err == nil || !strings.Contains(err.Error(), "board busy running a program") {
		t.Fatalf("SIZE while a kept program runs: %v; want board busy running a program", err)
	}
	tm.expect("tick", wait)
	if strings.Contains(tm.since(), "interrupted") {
		t.Fatalf("the kept program was interrupted: %q", tm.since())
	}
	tm.send("\x03")
	tm.expect("KeyboardInterrupt", wait)
	tm.expect(">>> ", wait)
	if size, err := c.FileSize("/a.txt"); err != nil || size != 1 {
		t.Errorf("SIZE once the program ended = %d, %v; want 1", size, err)
	}
}

// The console follows the board across an unplug and a replug.
func TestConsoleFollowsReplug(t *testing.T) {
	t.Parallel()
	b := startBridge(t, bridgeOptions{ftp: ftptest.Options{Board: boardtest.Options{CutAfter: 60_000, ReplugAfter: time.Second}}})
	tm := dialTerm(t, b.Addr)
	tm.expect(">>> ", wait)
	// 400 KB of output: the line is cut early in it (60 KB, whatever the
	// connection's start took), long before the program could end, even
	// on a loaded machine that passes only about 8 KB a second of it.
	tm.send("for i in range(5000): print('x' * 79)\r\r")
	tm.expect("[ftpbridge: the board is disconnected", wait)
	tm.expect("[ftpbridge: the board is back]", wait)
	tm.expect(">>> ", wait)
	tm.send("print(6*7)\r")
	tm.expect("42", wait)
}

// A console with a password asks for it, and refuses a wrong one.
func TestConsoleLogin(t *testing.T) {
	t.Parallel()
	b := startBridge(t, bridgeOptions{listen: console.ListenOptions{User: "me", Password: "secret", LoginFailDelay: 10 * time.Millisecond}})
	bad := dialTerm(t, b.Addr)
	bad.expect("user: ", wait)
	bad.send("me\r\n")
	bad.expect("password: ", wait)
	bad.send("wrong\r\n")
	if said := bad.waitClosed(wait); !strings.Contains(said, "login incorrect") || strings.Contains(said, ">>>") {
		t.Errorf("wrong password: the console said %q", said)
	}
	good := dialTerm(t, b.Addr)
	good.expect("user: ", wait)
	good.send("me\n")
	good.expect("password: ", wait)
	good.send("secret\n")
	good.expect(">>> ", wait)
	good.send("print(6*7)\r")
	good.expect("42", wait)
}

// Over several boards, a client names the board it wants.
func TestConsoleAsksWhichBoard(t *testing.T) {
	t.Parallel()
	var other *console.Console
	b := startBridge(t, bridgeOptions{set: func(c *console.Console) console.Consoles {
		// A second name for a console that is never attached: enough to
		// be asked.
		other = console.New(nil, console.Options{Name: "b2"})
		return twoConsoles{"b1": c, "b2": other}
	}, cons: console.Options{Name: "b1"}})
	tm := dialTerm(t, b.Addr)
	tm.expect("boards: b1 b2\r\nwhich board? ", wait)
	tm.send("nope\r")
	tm.expect(`no board "nope"`, wait)
	tm.expect("which board? ", wait)
	tm.send("b1\r\n")
	greeting := tm.expect(">>> ", wait)
	if !strings.Contains(greeting, "console of b1") {
		t.Errorf("greeting %q: want the console of b1", greeting)
	}
	tm.send("print(6*7)\r")
	if out := tm.expect("42", wait); strings.Contains(out, ">>> ") {
		t.Errorf("the LF after the CR that named the board reached the board: %q", out)
	}
}

type twoConsoles map[string]*console.Console

func (m twoConsoles) Names() []string { return []string{"b2", "b1"} }
func (m twoConsoles) Console(name string) (*console.Console, bool) {
	c, ok := m[name]
	return c, ok
}

// A program run with nobody at the console prints for the next person.
func TestOutputKeptForTheNextPerson(t *testing.T) {
	t.Parallel()
	b := startBridge(t, bridgeOptions{})
	c := b.Dial(t)
	if err := c.Stor("/hello.py", strings.NewReader("print('printed to nobody')\n")); err != nil {
		t.Fatal(err)
	}
	code, msg := site(t, b.Server.Addr, "SITE RUN /hello.py")
	if code != 200 || !strings.Contains(msg, "nobody is attached") {
		t.Fatalf("SITE RUN with nobody attached = %d %s", code, msg)
	}
	tm := dialTerm(t, b.Addr)
	out := tm.expect(">>> ", wait)
	if !strings.Contains(out, "while nobody was attached") || !strings.Contains(out, "printed to nobody") {
		t.Errorf("the next person was shown %q; want what the program printed", out)
	}
}

// Someone who leaves the board at its prompt, just as the next person
// comes, leaves that person the prompt, not word of a program running.
func TestNextPersonFindsThePrompt(t *testing.T) {
	t.Parallel()
	b := startBridge(t, bridgeOptions{})
	tm := dialFree(t, b.Addr)
	tm.expect(">>> ", wait)
	for i := 0; i < 20; i++ {
		tm.send(fmt.Sprintf("print(%d*%d)\r", i, 1000))
		tm.expect(fmt.Sprintf("\n%d", i*1000), wait)
		tm.expect(">>> ", wait)
		tm.conn.Close()
		tm = dialFree(t, b.Addr)
		if got := tm.expect(">>> ", wait); strings.Contains(got, "a program runs") {
			t.Fatalf("after %d people: the next one was told %q", i+1, got)
		}
	}
	tm.conn.Close()
}

// A name an FTP client chose reaches the person's terminal in the line
// that says what interrupted their program; its control characters are
// escaped there, so a name cannot drive the terminal (an OSC 52 sequence
// writes some terminals' clipboard, others' title).
func TestNoticeEscapesControlCharacters(t *testing.T) {
	t.Parallel()
	b := startBridge(t, bridgeOptions{})
	name := "\x1b]52;c;cHduZWQ=\x07.txt"
	if err := os.WriteFile(filepath.Join(b.Board.Root, name), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := b.Dial(t)
	tm := dialTerm(t, b.Addr)
	tm.expect(">>> ", wait)
	tm.send("import time\r")
	tm.expect(">>> ", wait)
	tm.send("while True: print('tick'); time.sleep_ms(100)\r\r")
	tm.expect("tick", wait)
	tm.expect("tick", time.Second)
	r, err := c.Retr("/" + name)
	if err != nil {
		t.Fatalf("RETR while a program runs on the console: %v", err)
	}
	_, _ = io.ReadAll(r)
	r.Close()
	out := tm.expect(">>> ", wait)
	if strings.Contains(out, "\x1b]52") || !strings.Contains(out, `RETR /\x1b]52;c;cHduZWQ=\x07.txt]`) {
		t.Errorf("the console showed %q: want the name with its control characters escaped", out)
	}
}

// Someone who comes while the board is in the middle of a line (a
// program's, or its prompt as the last person leaves) is shown that line
// as far as it got, so what the board prints next completes it: a prompt
// cut in two would never read ">>> ".
func TestNextPersonSeesTheLineBegun(t *testing.T) {
	t.Parallel()
	b := startBridge(t, bridgeOptions{})
	tm := dialFree(t, b.Addr)
	tm.expect(">>> ", wait)
	tm.send("import time\r")
	tm.expect(">>> ", wait)
	// Built from pieces, so that the echo of the line holds neither word.
	tm.send("print('be'+'gun', end='');time.sleep(4);print('fini'+'shed')\r")
	tm.expect("begun", wait)
	tm.conn.Close()
	tm = dialFree(t, b.Addr)
	got := tm.expect("finished", wait)
	if !strings.Contains(got, "begunfinished") {
		t.Errorf("the next person was shown %q; want the line begun, then its end", got)
	}
}

// A person who comes while the board prints is greeted before anything
// it prints: output that came before the greeting was shown at once, so
// that the greeting told of a program after the prompt that ended it.
func TestGreetingComesFirst(t *testing.T) {
	t.Parallel()
	b := startBridge(t, bridgeOptions{})
	tm := dialFree(t, b.Addr)
	tm.expect(">>> ", wait)
	tm.send("for i in range(3000): print(i)\r\r")
	tm.expect("\n100\n", wait)
	for i := 0; i < 10; i++ {
		tm.conn.Close()
		tm = dialFree(t, b.Addr)
		tm.mu.Lock()
		seen := string(tm.seen)
		tm.mu.Unlock()
		if !strings.HasPrefix(seen, "[ftpbridge: console of") {
			t.Fatalf("person %d was first shown %q", i+2, seen[:min(len(seen), 200)])
		}
	}
	tm.send("\x03")
	tm.expect(">>> ", wait)
}
