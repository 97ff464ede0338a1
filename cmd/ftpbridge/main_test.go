package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"

	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testApp returns an app whose environment and serial ports are the
// test's, and whose logs go to logs.
// Its cache of file copies is in a temporary directory, never the user's.
func testApp(t *testing.T, env map[string]string, ports []serialPort, logs io.Writer) *app {
	level := new(slog.LevelVar)
	env = maps.Clone(env)
	if env == nil {
		env = map[string]string{}
	}
	if _, ok := env["FTPBRIDGE_CACHE_DIR"]; !ok {
		env["FTPBRIDGE_CACHE_DIR"] = t.TempDir()
	}
	return &app{
		log:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level})),
		level:     level,
		lookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		listPorts: func() ([]serialPort, error) { return ports, nil },
	}
}

// run executes ftpbridge with args and returns its output and error.
func run(t *testing.T, a *app, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd(a)
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

func TestServeFlags(t *testing.T) {
	noBoard := "no MicroPython board found"
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string // substring; noBoard means the flags were accepted
		usage   bool
	}{
		{"defaults", nil, nil, noBoard, false},
		{"all interfaces without credentials", []string{"--listen", "0.0.0.0:2121"}, nil, "refusing to listen on 0.0.0.0:2121 without --user and --password", true},
		{"empty host without credentials", []string{"--listen", ":2121"}, nil, "refusing to listen", true},
		{"LAN address without credentials", []string{"--listen", "192.168.1.5:21"}, nil, "refusing to listen", true},
		{"hostname without credentials", []string{"--listen", "myhost:21"}, nil, "refusing to listen", true},
		{"IPv6 loopback", []string{"--listen", "[::1]:2121"}, nil, noBoard, false},
		{"localhost", []string{"--listen", "localhost:2121"}, nil, noBoard, false},
		{"all interfaces with credentials", []string{"--listen", "0.0.0.0:2121", "--user", "me", "--password", "pw"}, nil, noBoard, false},
		{"listen from the environment", nil, map[string]string{"FTPBRIDGE_LISTEN": "0.0.0.0:2121"}, "refusing to listen", true},
		{"credentials from the environment", []string{"--listen", "0.0.0.0:2121"}, map[string]string{"FTPBRIDGE_USER": "me", "FTPBRIDGE_PASSWORD": "pw"}, noBoard, false},
		{"command line beats environment", []string{"--listen", "127.0.0.1:2121"}, map[string]string{"FTPBRIDGE_LISTEN": "0.0.0.0:2121"}, noBoard, false},
		{"user without password", []string{"--user", "me"}, nil, "--user and --password go together", true},
		{"cert without key", []string{"--tls-cert", "c.pem"}, nil, "--tls-cert and --tls-key go together", true},
		{"passive range", []string{"--passive-ports", "50000-50100"}, nil, noBoard, false},
		{"passive range reversed", []string{"--passive-ports", "50100-50000"}, nil, "FIRST <= LAST", true},
		{"passive range not a range", []string{"--passive-ports", "50000"}, nil, "FIRST-LAST", true},
		{"passive range from the environment", nil, map[string]string{"FTPBRIDGE_PASSIVE_PORTS": "x-y"}, "FTPBRIDGE_PASSIVE_PORTS", true},
		{"busy wait", []string{"--busy-wait", "2s", "--baud", "9600", "--read-only", "-v"}, nil, noBoard, false},
		{"bad busy wait", []string{"--busy-wait", "soon"}, nil, "invalid argument", true},
		{"bad listen", []string{"--listen", "nocolon"}, nil, "--listen", true},
		{"two ports", []string{"/dev/a", "/dev/b"}, nil, "accepts at most 1 arg", true},
		{"all with a port", []string{"--all", "/dev/a"}, nil, "--all serves every board plugged in and takes no PORT", true},
		{"all from the environment with a port", []string{"/dev/a"}, map[string]string{"FTPBRIDGE_ALL": "true"}, "--all", true},
		{"unknown flag", []string{"--colour"}, nil, "unknown flag", true},
		{"console on all interfaces without credentials", []string{"--console", "0.0.0.0:2323"}, nil, "refusing to serve the console on 0.0.0.0:2323 without --user and --password", true},
		{"console from the environment", nil, map[string]string{"FTPBRIDGE_CONSOLE": ":2323"}, "refusing to serve the console", true},
		{"console with credentials", []string{"--console", "0.0.0.0:2323", "--listen", "0.0.0.0:2121", "--user", "me", "--password", "pw"}, nil, noBoard, false},
		{"console on loopback", []string{"--console", "127.0.0.1:2323", "--console-pty", "/tmp/x", "--console-keeps-program"}, nil, noBoard, false},
		{"bad console address", []string{"--console", "nocolon"}, nil, "--console", true},
		{"line usb", []string{"--line", "usb"}, nil, noBoard, false},
		{"line uart from the environment", nil, map[string]string{"FTPBRIDGE_LINE": "uart"}, noBoard, false},
		{"bad line", []string{"--line", "fast"}, nil, `invalid argument "fast" for "--line" flag: want auto, uart or usb`, true},
		{"bad line from the environment", nil, map[string]string{"FTPBRIDGE_LINE": "cdc"}, "FTPBRIDGE_LINE", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := run(t, testApp(t, tt.env, nil, io.Discard), tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ftpbridge %q = %v, want an error with %q", tt.args, err, tt.wantErr)
			}
			var ue *usageError
			if tt.usage != errors.As(err, &ue) {
				t.Errorf("ftpbridge %q: usage error = %v, want %v", tt.args, !tt.usage, tt.usage)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	if got := exitCode(nil); got != exitOK {
		t.Errorf("exitCode(nil) = %d", got)
	}
	if got := exitCode(usagef("bad")); got != exitUsage {
		t.Errorf("exitCode(usage) = %d, want %d", got, exitUsage)
	}
	if got := exitCode(errors.New("board gone")); got != exitError {
		t.Errorf("exitCode(error) = %d, want %d", got, exitError)
	}
}

var testPorts = []serialPort{
	{Name: "/dev/ttyS0"},
	{Name: "/dev/ttyUSB0", VID: "10c4", PID: "ea60", Product: "CP2102N USB to UART Bridge Controller", Serial: "0001"},
	{Name: "/dev/ttyACM0", VID: "2e8a", PID: "0005", Product: "Board in FS mode"},
	{Name: "/dev/ttyACM1", VID: "303a", PID: "1001", Product: "USB JTAG/serial debug unit"},
	{Name: "/dev/ttyACM2", VID: "1234", PID: "5678", Product: "Some modem"},
}

func TestPortsOutput(t *testing.T) {
	out, err := run(t, testApp(t, nil, testPorts, io.Discard), "ports")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 6 {
		t.Fatalf("ports printed %d lines, want a header and 5:\n%s", len(lines), out)
	}
	if !regexp.MustCompile(`^PORT +USB ID +PRODUCT +BOARD$`).MatchString(lines[0]) {
		t.Errorf("header %q", lines[0])
	}
	wantRows := []string{ // sorted by name
		`^/dev/ttyACM0 +2e8a:0005 +Board in FS mode +MicroPython rp2 \(Raspberry Pi Pico\)$`,
		`^/dev/ttyACM1 +303a:1001 +USB JTAG/serial debug unit +Espressif native USB`,
		`^/dev/ttyACM2 +1234:5678 +Some modem +-$`,
		`^/dev/ttyS0 +- +- +-$`,
		`^/dev/ttyUSB0 +10c4:ea60 +CP2102N USB to UART Bridge Controller +CP210x USB-UART`,
	}
	for i, re := range wantRows {
		if !regexp.MustCompile(re).MatchString(lines[i+1]) {
			t.Errorf("row %d = %q, want %s", i+1, lines[i+1], re)
		}
	}
	// Columns line up.
	col := strings.Index(lines[0], "USB ID")
	for _, l := range lines[1:] {
		if len(l) <= col || l[col-1] != ' ' || l[col] == ' ' {
			t.Errorf("row %q does not line up with the header", l)
		}
	}

	out, err = run(t, testApp(t, nil, nil, io.Discard), "ports")
	if err != nil || strings.TrimSpace(out) != "no serial ports found" {
		t.Errorf("ports with none = %q, %v", out, err)
	}
}

func TestFindBoard(t *testing.T) {
	p, err := findBoard(testPorts[:2])
	if err != nil || p.Name != "/dev/ttyUSB0" {
		t.Errorf("findBoard(one board) = %v, %v", p.Name, err)
	}
	_, err = findBoard(testPorts)
	var ue *usageError
	if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), "3 boards found") ||
		!strings.Contains(err.Error(), "/dev/ttyACM0") || strings.Contains(err.Error(), "/dev/ttyACM2") {
		t.Errorf("findBoard(several) = %v", err)
	}
	if _, err := findBoard(testPorts[:1]); err == nil || !strings.Contains(err.Error(), "no MicroPython board found") {
		t.Errorf("findBoard(none) = %v", err)
	}
	// Names only (macOS without cgo).
	p, err = findBoard([]serialPort{{Name: "/dev/cu.Bluetooth-Incoming-Port"}, {Name: "/dev/cu.usbmodem1101"}})
	if err != nil || p.Name != "/dev/cu.usbmodem1101" {
		t.Errorf("findBoard(names only) = %v, %v", p.Name, err)
	}
}

func TestLineFor(t *testing.T) {
	usb := func(vid, pid string) serialPort { return serialPort{Name: "/dev/ttyACM0", VID: vid, PID: pid} }
	tests := []struct {
		name string
		mode lineMode
		port serialPort
		want lineMode
	}{
		{"rp2", lineAuto, usb("2e8a", "0005"), lineUSB},
		{"pyboard", lineAuto, usb("f055", "9800"), lineUSB},
		{"pyboard, CDC only", lineAuto, usb("f055", "9802"), lineUSB},
		{"ESP32-S2 TinyUSB", lineAuto, usb("303a", "0002"), lineUSB},
		{"ESP32-S3 TinyUSB", lineAuto, usb("303a", "4001"), lineUSB},
		{"ESP32-C3/S3 USB-Serial/JTAG", lineAuto, usb("303a", "1001"), lineUART},
		{"FTDI", lineAuto, usb("0403", "6001"), lineUART},
		{"FTDI FT231X", lineAuto, usb("0403", "6015"), lineUART},
		{"CP210x", lineAuto, usb("10c4", "ea60"), lineUART},
		{"CH340", lineAuto, usb("1a86", "7523"), lineUART},
		{"CH9102", lineAuto, usb("1a86", "55d4"), lineUART},
		{"micro:bit DAPLink", lineAuto, usb("0d28", "0204"), lineUART},
		{"rp2, another product", lineAuto, usb("2e8a", "000a"), lineUART},
		{"unknown USB device", lineAuto, usb("1234", "5678"), lineUART},
		{"pty", lineAuto, serialPort{Name: "/dev/pts/3"}, lineUART},
		{"port not listed", lineAuto, serialPort{}, lineUART},
		{"usb over a pty", lineUSB, serialPort{Name: "/dev/pts/3"}, lineUSB},
		{"usb over a CP210x", lineUSB, usb("10c4", "ea60"), lineUSB},
		{"uart over an rp2", lineUART, usb("2e8a", "0005"), lineUART},
		{"uart over TinyUSB", lineUART, usb("303a", "4001"), lineUART},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := lineFlags{mode: tt.mode}
			got, why := f.lineFor(tt.port)
			if got != tt.want || why == "" {
				t.Errorf("--line %s: lineFor(%s:%s) = %s, %q, want %s", tt.mode, tt.port.VID, tt.port.PID, got, why, tt.want)
			}
			if tt.mode != lineAuto && why != "--line "+string(tt.mode) {
				t.Errorf("--line %s: reason %q does not name the flag", tt.mode, why)
			}
			if id := tt.port.VID + ":" + tt.port.PID; tt.mode == lineAuto && tt.port.VID != "" && !strings.HasPrefix(why, id+" ") {
				t.Errorf("lineFor(%s) reason %q does not start with the id", id, why)
			}
			if opts := f.boardOptions(slog.New(slog.DiscardHandler), "x", got); opts.HeldBack != (tt.want == lineUSB) {
				t.Errorf("boardOptions(%s).HeldBack = %v", got, opts.HeldBack)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	out, err := run(t, testApp(t, nil, nil, io.Discard), "version")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^ftpbridge \S+.* \(go\S+, \w+/\w+\)\n$`).MatchString(out) {
		t.Errorf("version = %q", out)
	}
}

func TestCompletion(t *testing.T) {
	out, err := run(t, testApp(t, nil, nil, io.Discard), "completion", "bash")
	if err != nil || !strings.Contains(out, "ftpbridge") {
		t.Errorf("completion bash = %d bytes, %v", len(out), err)
	}
}

// startServing runs ftpbridge with args until ctx is done, and returns the
// address it serves on, read from its log, and where its error will go.
func startServing(t *testing.T, ctx context.Context, a *app, logs *lockedBuffer, device string, args ...string) (string, <-chan error) {
	t.Helper()
	return startServingAs(t, ctx, a, logs, `for (.+) on `+regexp.QuoteMeta(device), args...)
}

// startServingAs is startServing for a serving line that ends in what
// (a regular expression) rather than a device's name.
func startServingAs(t *testing.T, ctx context.Context, a *app, logs *lockedBuffer, what string, args ...string) (string, <-chan error) {
	t.Helper()
	cmd := newRootCmd(a)
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	serving := regexp.MustCompile(`serving ftp://(\S+) ` + what)
	for deadline := time.Now().Add(30 * time.Second); ; {
		if m := serving.FindStringSubmatch(logs.String()); m != nil {
			return m[1], done
		}
		select {
		case err := <-done:
			t.Fatalf("ftpbridge ended before serving: %v\n%s", err, logs.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no serving line:\n%s", logs.String())
		}
	}
}

// stopServing presses Ctrl-C on a command startServing started, and
// expects it to stop cleanly and soon.
func stopServing(t *testing.T, cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ftpbridge after Ctrl-C: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("ftpbridge did not stop")
	}
}

// The board is unplugged in the middle of a download and plugged back in,
// at the same path or, with the same USB serial number, at another: the
// download fails, and ftpbridge takes the board back without a restart.
func TestServeReplug(t *testing.T) {
	t.Parallel()
	for _, moved := range []bool{false, true} {
		name := "same path"
		if moved {
			name = "new path, same serial number"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testServeReplug(t, moved)
		})
	}
}

func testServeReplug(t *testing.T, moved bool) {
	root := t.TempDir()
	// Random bytes: deflate would shrink a pattern under the cut.
	want := make([]byte, 36_000)
	rand.Read(want)
	if err := os.WriteFile(filepath.Join(root, "data.bin"), want, 0o644); err != nil {
		t.Fatal(err)
	}
	opts := boardtest.Options{Root: root, CutAfter: 25_000, ReplugAfter: time.Second}
	if moved {
		opts.ReplugAt = filepath.Join(t.TempDir(), "ttyACM1")
	}
	b := boardtest.Start(t, boardtest.ESP32, opts)
	var logs lockedBuffer
	a := testApp(t, nil, nil, &logs)
	// The system lists the board, with its USB serial number, wherever it
	// is now.
	a.listPorts = func() ([]serialPort, error) {
		var ports []serialPort
		for _, p := range []string{b.Device, opts.ReplugAt} {
			if _, err := os.Stat(p); p != "" && err == nil {
				ports = append(ports, serialPort{Name: p, VID: "2e8a", PID: "0005", Serial: "E66038B713849D31"})
			}
		}
		return ports, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, done := startServing(t, ctx, a, &logs, b.Device, "--listen", "127.0.0.1:0", b.Device)
	c, err := ftp.Dial(addr, ftp.DialWithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login("anonymous", "x"); err != nil {
		t.Fatal(err)
	}
	retr := func() ([]byte, error) {
		r, err := c.Retr("/data.bin")
		if err != nil {
			return nil, err
		}
		got, err := io.ReadAll(r)
		if cerr := r.Close(); err == nil {
			err = cerr
		}
		return got, err
	}
	if got, err := retr(); err == nil {
		t.Fatalf("RETR cut after %d of %d bytes reported success", len(got), len(want))
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		_, err := c.List("/")
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "not connected") {
			t.Errorf("LIST while the board is away: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the board did not come back: %v\n%s", err, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got, err := retr(); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("RETR after the replug: %d bytes, %v", len(got), err)
	}
	// The ESP32 powers up with its clock at 2000-01-01: set at the start,
	// and again after the replug.
	// The port was named; its listing says rp2, which speaks USB itself.
	if !strings.Contains(logs.String(), `line=usb reason="2e8a:0005 MicroPython rp2 speaks USB itself"`) {
		t.Errorf("--line auto on a listed rp2 did not choose usb:\n%s", logs.String())
	}
	if moved && !strings.Contains(logs.String(), opts.ReplugAt) {
		t.Errorf("the board came back at %s, which the logs never name:\n%s", opts.ReplugAt, logs.String())
	}
	if n := strings.Count(logs.String(), "set the board's clock"); n != 2 {
		t.Errorf("the board's clock was set %d times, want 2 (start, replug)", n)
	}
	stopServing(t, cancel, done)
}

// TestServeBoard runs `ftpbridge DEVICE` on an emulated board, uses it,
// and stops it as Ctrl-C does. It logs at debug level, where the password
// must still not appear.
func TestServeBoard(t *testing.T) {
	t.Parallel()
	b := boardtest.Start(t, boardtest.ESP32, boardtest.Options{})
	const password = "pw-Zq8v1"
	var logs lockedBuffer
	a := testApp(t, map[string]string{"FTPBRIDGE_READ_ONLY": "true", "FTPBRIDGE_PASSWORD": password}, nil, &logs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, done := startServing(t, ctx, a, &logs, b.Device, "--listen", "127.0.0.1:0", "--user", "me", "--verbose", b.Device)
	c, err := ftp.Dial(addr, ftp.DialWithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login("me", password); err != nil {
		t.Fatal(err)
	}
	if _, err := c.List("/"); err != nil {
		t.Errorf("LIST: %v", err)
	}
	if err := c.MakeDir("/x"); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("MKD with FTPBRIDGE_READ_ONLY=true: %v", err)
	}

	stopServing(t, cancel, done)
	if _, err := c.List("/"); err == nil {
		t.Errorf("the client's connection survived the shutdown")
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", logs.String())
	}
	// A port the system does not list (a pty here) is a UART.
	if n := strings.Count(logs.String(), `line=uart reason="no USB ids`); n != 1 {
		t.Errorf("line=uart for an unlisted port logged %d times, want once:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), password) {
		t.Errorf("the password was logged:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "level=DEBUG") {
		t.Errorf("--verbose logged nothing at debug level")
	}
}

// TestServeAll runs `ftpbridge --all` over two boards and a port that only
// looks like one: both boards are folders of "/", named after their ports;
// one unplugged leaves "/" after a while and comes back when replugged.
func TestServeAll(t *testing.T) {
	t.Parallel()
	big := make([]byte, 64<<10)
	rand.Read(big) // what does not compress: the line is cut after 30 KB of it
	b0 := boardtest.Start(t, boardtest.ESP32, boardtest.Options{})
	// Long enough away for its folder to leave "/" first.
	b1 := boardtest.Start(t, boardtest.ESP32, boardtest.Options{CutAfter: 30_000, ReplugAfter: goneAfter + 4*time.Second})
	if err := os.WriteFile(filepath.Join(b1.Root, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	notBoard := filepath.Join(t.TempDir(), "ttyACM9")
	rp2 := func(dev string) serialPort { return serialPort{Name: dev, VID: "2e8a", PID: "0005"} }
	ports := []serialPort{rp2(b0.Device), rp2(b1.Device), rp2(notBoard), {Name: "/dev/ttyS0"}}
	var logs lockedBuffer
	a := testApp(t, nil, nil, &logs)
	// As the system does, list a device only while it is there.
	a.listPorts = func() ([]serialPort, error) {
		var there []serialPort
		for _, p := range ports {
			if _, err := os.Stat(p.Name); err == nil || p.Name == notBoard {
				there = append(there, p)
			}
		}
		return there, nil
	}
	// The folders: the ports' base names, "-2" for the second of a name.
	folder := map[string]string{b0.Device: filepath.Base(b0.Device), b1.Device: filepath.Base(b1.Device)}
	if folder[b0.Device] == folder[b1.Device] {
		if b0.Device < b1.Device {
			folder[b1.Device] += "-2"
		} else {
			folder[b0.Device] += "-2"
		}
	}
	both := []string{folder[b0.Device], folder[b1.Device]}
	slices.Sort(both)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, done := startServingAs(t, ctx, a, &logs, `for every MicroPython board`, "--listen", "127.0.0.1:0", "--all")
	c, err := ftp.Dial(addr, ftp.DialWithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login("anonymous", "x"); err != nil {
		t.Fatal(err)
	}
	waitFolders := func(want []string) {
		t.Helper()
		var got []string
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			got, err = c.NameList("/")
			slices.Sort(got)
			if err == nil && slices.Equal(got, want) {
				return
			}
		}
		t.Fatalf("NLST / = %q, %v; want %q\n%s", got, err, want, logs.String())
	}
	waitFolders(both)

	// Unplugged in the middle of a download.
	r, err := c.Retr("/" + folder[b1.Device] + "/big.bin")
	if err != nil {
		t.Fatalf("RETR from %s: %v", folder[b1.Device], err)
	}
	got, err := io.ReadAll(r)
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		t.Fatalf("RETR cut after %d of %d bytes reported success", len(got), len(big))
	}
	waitFolders([]string{folder[b0.Device]})
	waitFolders(both)
	if _, err := c.List("/" + folder[b0.Device]); err != nil {
		t.Errorf("LIST of the board that stayed: %v", err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		names, err := c.NameList("/" + folder[b1.Device])
		if err == nil && len(names) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replugged board does not serve: NLST = %q, %v", names, err)
		}
	}

	stopServing(t, cancel, done)
	if n := strings.Count(logs.String(), `line=usb reason="2e8a:0005 MicroPython rp2 speaks USB itself"`); n != 2 {
		t.Errorf("--all chose usb for %d of the 2 rp2 boards:\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), "no MicroPython board answers on this port"); n != 1 {
		t.Errorf("the port with no board was reported %d times, want once:\n%s", n, logs.String())
	}
}

// TestServeUSBLine runs `ftpbridge --line usb` on a board whose line is
// native USB (flow-controlled 64-byte packets, flash that makes it pause):
// uploads go without waiting for acknowledgements, and a 40 KB file still
// crosses byte-exact both ways.
func TestServeUSBLine(t *testing.T) {
	t.Parallel()
	b := boardtest.Start(t, boardtest.ESP32, boardtest.Options{USBCDC: true, Flash: true})
	var logs lockedBuffer
	a := testApp(t, nil, nil, &logs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// No cache of copies: the download crosses the line, not the cache.
	addr, done := startServing(t, ctx, a, &logs, b.Device, "--listen", "127.0.0.1:0", "--line", "usb", "--cache-size", "0", "--upload-wait", "1m", b.Device)
	if !strings.Contains(logs.String(), `line=usb reason="--line usb"`) {
		t.Errorf("no line=usb in the log:\n%s", logs.String())
	}
	c, err := ftp.Dial(addr, ftp.DialWithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login("anonymous", "x"); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 40_000)
	rand.Read(want) // incompressible: every byte crosses the line
	if err := c.Stor("/usb.bin", bytes.NewReader(want)); err != nil {
		t.Fatalf("STOR: %v", err)
	}
	// --upload-wait 1m: STOR is answered once the board has the file.
	if got, err := os.ReadFile(filepath.Join(b.Root, "usb.bin")); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("after STOR the board holds %d bytes (%v), not the %d uploaded\n%s", len(got), err, len(want), logs.String())
	}
	r, err := c.Retr("/usb.bin")
	if err != nil {
		t.Fatalf("RETR: %v", err)
	}
	got, err := io.ReadAll(r)
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("RETR: %d bytes, %v; want the %d uploaded", len(got), err, len(want))
	}
	stopServing(t, cancel, done)
}

// TestServeSilentBoard: a board that never answers at start gets a message
// that says what to check, not only the raw REPL's error.
func TestServeSilentBoard(t *testing.T) {
	t.Parallel()
	b := boardtest.Start(t, boardtest.ESP32, boardtest.Options{})
	b.Stall(time.Minute)
	_, err := run(t, testApp(t, nil, nil, io.Discard), "--listen", "127.0.0.1:0", b.Device)
	if err == nil {
		t.Fatal("ftpbridge on a silent board succeeded")
	}
	for _, want := range []string{"no MicroPython answers on " + b.Device, "--baud 115200", "reset button"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
