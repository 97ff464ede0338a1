// Package rig emulates a MicroPython board on a pseudo-terminal: a serial
// device that behaves as a USB serial port with a real board behind it.
//
// The board is either the MicroPython 1.27 VM compiled to WebAssembly, run by
// Node with a firmware front end (scripts/vmboard), or the real micro:bit
// firmware under qemu. Between the board and the pty sits the line: a rate
// limit (the baud rate), a USB-serial adapter's latency timer or a native
// USB endpoint's packets and flow control, the board's receive buffer, and
// injected faults (a cut cable, a flipped bit, a reset, a stall). The VM
// boards can also keep a real board's time and memory: flash writes and
// erases that take time, Python that runs at the chip's speed, and a heap
// of the board's size. Tests start boards through scripts/boardtest; people
// through scripts/boardsim.
package rig

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"time"
)

// Profile names a kind of board.
type Profile string

// The boards the rig can emulate.
const (
	ESP32    Profile = "esp32"    // VM, raw-paste, 260-byte receive ring
	ESP8266  Profile = "esp8266"  // VM, no raw-paste, 256-byte receive ring
	Pyboard  Profile = "pyboard"  // VM, raw-paste, /flash and /sd mounts, 260-byte UART ring
	Microbit Profile = "microbit" // real firmware 1.9.2 under qemu
)

// Profiles lists every profile, in the order people meet them.
var Profiles = []Profile{ESP32, ESP8266, Pyboard, Microbit}

// Config says which board to emulate and how its line behaves.
type Config struct {
	Profile Profile
	// Root is the host directory that is the board's filesystem (VM profiles).
	// Empty: a fresh temporary directory, removed at Close.
	Root string
	// Link is the stable device path (a symlink to the current pty). Empty: a
	// path in a fresh temporary directory.
	Link string
	// Baud limits the line to Baud/10 bytes a second each way (8N1), and
	// bytes beyond the board's receive ring are lost while it is busy, as on
	// a UART. 0 is unthrottled and lossless: the host's writes wait while
	// the board's buffer is full.
	Baud int
	// Latency, if positive, puts a USB-serial adapter on the line: bytes
	// from the board wait up to Latency for its latency timer (FTDI: 16 ms
	// by default; CP210x, CH340 and FTDI under Linux about 1-2 ms), in
	// 62-byte packets; bytes to the board leave in the next 1 ms USB frame.
	Latency time.Duration
	// USBCDC makes the line a native USB one (Pyboard D, ESP32-S2/S3): no
	// baud rate, 64-byte packets each 1 ms frame each way, and a full
	// device buffer NAKs, so the host waits and nothing is lost. Not with
	// Baud or Latency; the ESP8266 and the micro:bit have no native USB.
	USBCDC bool
	// StallAfter, if positive, makes the board go silent once this many
	// bytes have come from it: nothing crosses the line either way for
	// StallFor, and then it goes on as it was (a hung firmware or a stalled
	// adapter, the port staying open). Bytes the host sends meanwhile wait
	// and arrive afterwards, in order.
	StallAfter int64
	StallFor   time.Duration
	// Heap, if positive, gives a VM board a heap of a real board's size:
	// gc.mem_free() says Heap after boot and allocations beyond fail with
	// MemoryError (RealHeap has each profile's figure). 0 leaves the VM's
	// own heap, which grows on demand to about 128 MB.
	Heap int
	// Flash makes a VM board's filesystem writes take a SPI NOR flash's
	// time: each byte a page program's share, each 4 KB block written an
	// erase, each metadata change a page program; the board reads nothing
	// from the line meanwhile.
	Flash bool
	// CPU makes a VM board's Python take its chip's time: each exec a
	// compile time per byte of code, each file read or write a helper loop
	// turn, and the ESP32's REPL sees input only on its 10 ms FreeRTOS tick.
	CPU bool
	// ClockMHz, with CPU, runs the board's chip at this clock instead of
	// its own (ESP32 240, ESP8266 80, Pyboard 168): Python's speed
	// follows it. 0: the chip's own.
	ClockMHz int
	// Running starts the board busy in a program that prints every 100 ms.
	Running bool
	// CutAfter, if positive, cuts the line once this many bytes have crossed
	// it in both directions together: the device fails and disappears.
	CutAfter int64
	// ReplugAfter, if positive, brings a cut line back after this long as a
	// freshly booted board with the same files, at the same Link path.
	ReplugAfter time.Duration
	// ReplugAt, if set, is where the replugged board appears instead: a USB
	// board may come back as ttyACM1 while ttyACM0 is still held open.
	ReplugAt string
	// FlipAt, if positive, inverts the lowest bit of the FlipAt-th byte
	// (counting from 1) the board sends to the host.
	FlipAt int64
	// VMBoardDir is the directory of vmboard.mjs and its node_modules.
	// Empty: scripts/vmboard beside this package's source.
	VMBoardDir string
	// Logger receives the rig's own events and the firmware's log lines.
	Logger *slog.Logger
}

// chip is the emulated board behind the line.
type chip interface {
	powerOn() error
	powerOff() // the line was cut: the board loses power, its files stay
	reset() error
	// receive takes bytes that crossed the line towards the board; on a
	// lossless line it waits for room, and returns false if the board went
	// away meanwhile.
	receive(p []byte) bool
	// waitRoom waits until the board can take n bytes (a USB endpoint
	// accepts a packet only then); false if the board went away.
	waitRoom(n int) bool
	dropped() int64 // bytes the receive buffer had no room for
	close()
}

// Board is a running emulated board.
type Board struct {
	// Device is the serial device to open. It stays the same across a cut and
	// a replug, unless Config.ReplugAt says otherwise.
	Device string
	// Root is the host directory that is the board's filesystem; empty for
	// the micro:bit, whose files live in its emulated flash.
	Root string

	cfg     Config
	log     *slog.Logger
	chip    chip
	tmpDir  string
	ownRoot bool
	tx      chan []byte
	stop    chan struct{}
	wg      sync.WaitGroup

	mu         sync.Mutex
	at         string   // where the device is now (Device, or ReplugAt after a replug)
	master     *os.File // nil while unplugged
	slave      *os.File // held open so the pty lives while no client has it open
	crossed    int64
	sent       int64 // board-to-host bytes delivered, for FlipAt and StallAfter
	received   int64 // host-to-board bytes, for DropIn
	dropAt     int64 // the received count at which one byte is lost; 0: none
	stallAt    int64 // the sent count at which the board goes silent; 0: none
	stallUntil time.Time
	cut        bool
	logLines   []string
	closed     bool
	// ready is closed once the board's first friendly prompt (or, with
	// Config.Running, its first output) is on the line: it listens.
	// booted says it was seen; lastOut is the end of the output before,
	// to find a prompt split between two deliveries.
	ready   chan struct{}
	booted  bool
	lastOut []byte
}

// Start powers up a board as cfg says and plugs it in.
func Start(cfg Config) (*Board, error) {
	if cfg.Profile == "" {
		cfg.Profile = ESP32
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "boardsim-")
	if err != nil {
		return nil, fmt.Errorf("rig: %w", err)
	}
	b := &Board{cfg: cfg, log: log, tmpDir: tmp, tx: make(chan []byte, txQueue), stop: make(chan struct{}),
		stallAt: cfg.StallAfter, ready: make(chan struct{})}
	b.Device = cfg.Link
	if b.Device == "" {
		b.Device = filepath.Join(tmp, "tty"+string(cfg.Profile))
	}
	if err := b.makeChip(); err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	b.wg.Add(1)
	go b.boardToHost()
	if err := b.plugIn(b.Device); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// check refuses settings that contradict each other or the board, in words.
func (cfg Config) check() error {
	switch cfg.Profile {
	case ESP32, ESP8266, Pyboard, Microbit:
	default:
		return fmt.Errorf("rig: unknown profile %q (want esp32, esp8266, pyboard or microbit)", cfg.Profile)
	}
	if cfg.Baud < 0 || cfg.Latency < 0 || cfg.Heap < 0 || cfg.StallAfter < 0 || cfg.StallFor < 0 {
		return errors.New("rig: baud, latency, heap and stall settings cannot be negative")
	}
	if cfg.USBCDC {
		if cfg.Baud > 0 {
			return errors.New("rig: a native USB line has no baud rate: give --usb-cdc or --baud, not both")
		}
		if cfg.Latency > 0 {
			return errors.New("rig: a native USB line has no adapter and no latency timer: give --usb-cdc or --latency, not both")
		}
		if specs[cfg.Profile].cdcBuffer == 0 {
			return fmt.Errorf("rig: the %s has no native USB (its boards talk through a USB-serial adapter): drop --usb-cdc", cfg.Profile)
		}
	}
	if cfg.Profile == Microbit && (cfg.Heap > 0 || cfg.Flash || cfg.CPU) {
		return errors.New("rig: the micro:bit runs its real firmware, with its own heap, flash and speed: heap, flash and CPU settings are for the VM boards")
	}
	if cfg.ClockMHz < 0 || (cfg.ClockMHz > 0 && !cfg.CPU) {
		return errors.New("rig: a clock is for a board whose Python takes its chip's time: give it with CPU, as a positive number of MHz")
	}
	if (cfg.StallAfter > 0) != (cfg.StallFor > 0) {
		return errors.New("rig: a stall needs both when (stall-after, in bytes) and how long (stall-for)")
	}
	return nil
}

func (b *Board) makeChip() error {
	if b.cfg.Profile == Microbit {
		c, err := newQemuChip(b.tmpDir, b.log, b.tx, b.stop)
		if err != nil {
			return err
		}
		b.chip = c
		return nil
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return fmt.Errorf("rig: the %s profile needs Node.js (apt-get install nodejs npm): %w", b.cfg.Profile, err)
	}
	dir := b.cfg.VMBoardDir
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "vmboard")
	}
	script := filepath.Join(dir, "vmboard.mjs")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@micropython", "micropython-webassembly-pyscript")); err != nil {
		return fmt.Errorf("rig: the MicroPython VM is not installed (run: npm ci --prefix %s): %w", dir, err)
	}
	root := b.cfg.Root
	if root == "" {
		root = filepath.Join(b.tmpDir, "root")
		if err := os.Mkdir(root, 0o755); err != nil {
			return fmt.Errorf("rig: %w", err)
		}
		b.ownRoot = true
	}
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	b.Root = root
	sp := specs[b.cfg.Profile]
	rx := rxSpec{}
	switch {
	case b.cfg.USBCDC:
		rx = rxSpec{limit: sp.cdcBuffer, block: true}
	case b.cfg.Baud > 0:
		rx = rxSpec{limit: sp.uartRing - 1}
	default:
		// No line rate: bytes would pour in faster than any UART delivers
		// them, so the line holds the host back instead of losing bytes.
		rx = rxSpec{limit: sp.uartRing - 1, block: true}
	}
	if b.cfg.CPU && !b.cfg.USBCDC {
		// Only the UART's interrupt handler leaves the task asleep: on
		// native USB, TinyUSB's event hook wakes it
		// (mp_hal_wake_main_task_from_isr in shared/tinyusb/mp_usbd.c).
		rx.tick = sp.tick
	}
	b.chip = &vmChip{node: node, script: script, profile: b.cfg.Profile, root: root, running: b.cfg.Running,
		rx: rx, heap: b.cfg.Heap, flash: b.cfg.Flash, cpu: b.cfg.CPU, clockMHz: b.cfg.ClockMHz,
		log: b.log, logLine: b.addLog, tx: b.tx, stop: b.stop}
	return nil
}

func (b *Board) addLog(line string) {
	b.log.Info(line)
	b.mu.Lock()
	b.logLines = append(b.logLines, line)
	b.mu.Unlock()
}

// Log returns the lines the firmware and the rig have logged so far.
func (b *Board) Log() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.logLines...)
}

// Dropped returns how many bytes from the host the board's receive buffer
// had no room for since its last power-on.
func (b *Board) Dropped() int64 { return b.chip.dropped() }

// plugIn makes a fresh pty, points the link at path to it and powers the
// board on.
func (b *Board) plugIn(path string) error {
	master, slave, err := openPTY()
	if err != nil {
		return err
	}
	// Replace the link atomically: a client polling for the device never sees
	// a half-made one.
	tmpLink := path + ".new"
	_ = os.Remove(tmpLink)
	if err := os.Symlink(slave.Name(), tmpLink); err != nil {
		master.Close()
		slave.Close()
		return fmt.Errorf("rig: link %s: %w", path, err)
	}
	if err := os.Rename(tmpLink, path); err != nil {
		master.Close()
		slave.Close()
		return fmt.Errorf("rig: link %s: %w", path, err)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		_ = os.Remove(path) // before the pty, as Close does
		master.Close()
		slave.Close()
		return errors.New("rig: board closed")
	}
	b.master, b.slave, b.at = master, slave, path
	b.mu.Unlock()
	if err := b.chip.powerOn(); err != nil {
		return err
	}
	b.addLog(fmt.Sprintf("rig: plugged in at %s (%s)", path, slave.Name()))
	b.wg.Add(1)
	go b.hostToBoard(master)
	return nil
}

// unplug cuts the line: the pty goes away (a client's reads and writes
// fail as on an unplugged USB serial port), the device node disappears, and
// the board loses power. It is called from the line's own goroutines, so the
// power-off, which waits for the board's output to drain, runs on its own.
func (b *Board) unplug() {
	b.mu.Lock()
	master, slave, at := b.master, b.slave, b.at
	b.master, b.slave = nil, nil
	b.mu.Unlock()
	if master == nil {
		return
	}
	_ = os.Remove(at)
	master.Close()
	slave.Close()
	b.addLog("rig: line cut")
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.chip.powerOff()
		d := b.cfg.ReplugAfter
		if d <= 0 {
			return
		}
		select {
		case <-time.After(d):
		case <-b.stop:
			return
		}
		next := b.Device
		if b.cfg.ReplugAt != "" {
			next = b.cfg.ReplugAt
		}
		if err := b.plugIn(next); err != nil {
			b.addLog("rig: replug failed: " + err.Error())
		}
	}()
}

// count records n bytes crossing the line and returns how many of them may
// cross before the cut.
func (b *Board) count(n int) (allowed int, cutNow bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cfg.CutAfter <= 0 || b.cut {
		b.crossed += int64(n)
		return n, false
	}
	left := b.cfg.CutAfter - b.crossed
	if int64(n) < left {
		b.crossed += int64(n)
		return n, false
	}
	b.crossed += left
	b.cut = true
	return int(left), true
}

// downlink paces the host's bytes on their way to the board: the next USB
// frame and the baud rate through an adapter, one packet a frame on native
// USB, or nothing at all.
func (b *Board) downlink() *pacer {
	if b.cfg.USBCDC {
		return newCDCPacer()
	}
	pace := newPacer(b.cfg.Baud)
	if b.cfg.Latency > 0 {
		pace.frame = usbFrame
	}
	return pace
}

func (b *Board) hostToBoard(master *os.File) {
	defer b.wg.Done()
	pace := b.downlink()
	buf := make([]byte, 4096)
	for {
		readAt := time.Now()
		n, err := master.Read(buf)
		if err != nil {
			return
		}
		// When the host's bytes came: the pacer tells a line the host left
		// idle from one it was late to serve. A read that did not wait
		// found them already there.
		arrived := time.Now()
		if arrived.Sub(readAt) < waitedRead {
			arrived = time.Time{}
		}
		for p := buf[:n]; len(p) > 0; {
			k := min(len(p), pace.chunk())
			if pace.packet > 0 && !b.chip.waitRoom(pace.packet) {
				return
			}
			if !pace.wait(k, arrived, b.stop) || !b.waitStall() {
				return
			}
			allowed, cutNow := b.count(k)
			if !b.chip.receive(b.dropOne(p[:allowed])) && !cutNow {
				// The board lost power holding the line back; what the
				// host sends meanwhile is lost, as on an unpowered board.
				b.log.Debug("board went away while the line waited")
			}
			if cutNow {
				b.unplug()
				return
			}
			p = p[k:]
		}
	}
}

// waitedRead is the least a read of the pty takes when it had to wait for
// the host's bytes; a quicker one found them waiting.
const waitedRead = 50 * time.Microsecond

// DropIn loses the n-th byte (from 1) the host sends from now on, as a
// board whose receive buffer overflowed loses one.
func (b *Board) DropIn(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dropAt = b.received + n
}

// FlipOut inverts the lowest bit of the n-th byte (from 1) the board
// sends from now on, as FlipAt does counting from power-up.
func (b *Board) FlipOut(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cfg.FlipAt = b.sent + n
}

// Stall makes the board go silent now for d with the line open: nothing
// comes from it and nothing reaches it, as with a hung firmware or a
// stalled USB-serial adapter. Bytes the host sends meanwhile wait and
// arrive afterwards; then the board goes on as it was.
func (b *Board) Stall(d time.Duration) {
	b.mu.Lock()
	b.stallLocked(d)
	b.mu.Unlock()
}

func (b *Board) stallLocked(d time.Duration) {
	until := time.Now().Add(d)
	if until.After(b.stallUntil) {
		b.stallUntil = until
	}
	line := fmt.Sprintf("rig: board silent for %v", d)
	b.log.Info(line)
	b.logLines = append(b.logLines, line)
}

// waitStall holds the line while the board is silent; false if the rig
// shuts down meanwhile.
func (b *Board) waitStall() bool {
	for {
		b.mu.Lock()
		until := b.stallUntil
		b.mu.Unlock()
		if !time.Now().Before(until) {
			return true
		}
		if !sleepUntil(until, b.stop) {
			return false
		}
	}
}

// dropOne counts bytes on their way to the board and takes out the one
// DropIn asked to lose.
func (b *Board) dropOne(p []byte) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	before := b.received
	b.received += int64(len(p))
	if b.dropAt <= before || b.dropAt > b.received {
		return p
	}
	i := b.dropAt - before - 1
	b.dropAt = 0
	line := fmt.Sprintf("rig: dropped byte %q on its way to the board", p[i])
	b.log.Info(line)
	b.logLines = append(b.logLines, line)
	return append(append([]byte(nil), p[:i]...), p[i+1:]...)
}

// boardToHost carries the board's output to the host: paced at the baud
// rate (or in USB packets), held by the adapter's latency timer, and
// delivered to the pty.
func (b *Board) boardToHost() {
	defer b.wg.Done()
	pace := newPacer(b.cfg.Baud)
	if b.cfg.USBCDC {
		pace = newCDCPacer()
	}
	var ad *adapter
	if b.cfg.Latency > 0 {
		ad = newAdapter(b.cfg.Latency)
	}
	var chunk []byte
	var arrived time.Time
	for {
		if len(chunk) == 0 {
			// Output already waiting goes on the line back to back.
			select {
			case chunk = <-b.tx:
				arrived = time.Time{}
				continue
			default:
			}
			var timer *time.Timer
			var fired <-chan time.Time
			var due time.Time
			if ad != nil {
				if due = ad.due(); !due.IsZero() {
					timer = time.NewTimer(time.Until(due))
					fired = timer.C
				}
			}
			select {
			case chunk = <-b.tx:
				arrived = time.Now()
			case <-fired:
				if !b.deliver(ad.expire(due)) {
					return
				}
			case <-b.stop:
				return
			}
			if timer != nil {
				timer.Stop()
			}
			continue
		}
		k := min(len(chunk), pace.chunk())
		if !pace.wait(k, arrived, b.stop) {
			return
		}
		p := chunk[:k]
		chunk = chunk[k:]
		if ad == nil {
			if !b.deliver(p) {
				return
			}
			continue
		}
		now := time.Now()
		if due := ad.due(); !due.IsZero() && !due.After(now) {
			// The timer ran out while the UART was still busy.
			if !b.deliver(ad.expire(due)) {
				return
			}
		}
		for _, packet := range ad.add(p, now) {
			if !b.deliver(packet) {
				return
			}
		}
	}
}

// deliver hands bytes from the board to the host: it keeps a stall, flips
// the bit FlipAt names, counts towards a cut, and writes to the pty. It
// returns false when the rig shuts down.
func (b *Board) deliver(p []byte) bool {
	for len(p) > 0 {
		if !b.waitStall() {
			return false
		}
		b.mu.Lock()
		k := len(p)
		if b.stallAt > 0 && b.sent < b.stallAt && b.sent+int64(k) >= b.stallAt {
			k = int(b.stallAt - b.sent)
		}
		q := p[:k]
		prompted := b.sawPrompt(q)
		if b.cfg.FlipAt > 0 && b.sent < b.cfg.FlipAt && b.sent+int64(k) >= b.cfg.FlipAt {
			q = append([]byte(nil), q...)
			q[b.cfg.FlipAt-b.sent-1] ^= 0x01
		}
		b.sent += int64(k)
		if b.stallAt > 0 && b.sent >= b.stallAt {
			b.stallAt = 0
			b.stallLocked(b.cfg.StallFor)
		}
		master := b.master
		b.mu.Unlock()
		p = p[k:]
		if master == nil {
			continue // nobody on the line: the bytes are lost
		}
		allowed, cutNow := b.count(k)
		if _, err := master.Write(q[:allowed]); err != nil && !errors.Is(err, os.ErrClosed) {
			b.log.Debug("write to pty failed", "err", err)
		}
		if prompted {
			// Once the prompt is on the line, where the host reads it.
			close(b.ready)
		}
		if cutNow {
			b.unplug()
		}
	}
	return true
}

// friendlyPrompt is what a board prints once it has booted and listens.
var friendlyPrompt = []byte(">>> ")

// sawPrompt reports whether p, the board's output, ends its first boot:
// the first prompt (or, Config.Running, the first output), true once.
// b.mu is held.
func (b *Board) sawPrompt(p []byte) bool {
	if b.booted {
		return false
	}
	seen := append(b.lastOut, p...)
	if b.cfg.Running || bytes.Contains(seen, friendlyPrompt) {
		b.booted, b.lastOut = true, nil
		return true
	}
	b.lastOut = bytes.Clone(seen[max(0, len(seen)-len(friendlyPrompt)+1):])
	return false
}

// WaitReady waits until the board has booted and listens, as its first
// friendly prompt says (with Config.Running, until it printed anything):
// bytes sent to a board that still boots are lost, and a host that takes
// its silence for a stuck program floods it. It fails after timeout, or
// when the board is closed.
func (b *Board) WaitReady(timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-b.ready:
		return nil
	case <-b.stop:
		return errors.New("rig: board closed before it was ready")
	case <-t.C:
		return fmt.Errorf("rig: no prompt from the board within %v", timeout)
	}
}

// Reset resets the board as its reset button does: boot noise, banner,
// friendly prompt, all Python state gone, files kept.
func (b *Board) Reset() error {
	b.mu.Lock()
	plugged := b.master != nil
	b.mu.Unlock()
	if !plugged {
		return errors.New("rig: board is unplugged")
	}
	b.addLog("rig: reset")
	return b.chip.reset()
}

// Close powers the board off and removes everything Start made: processes,
// ptys, the device link, temporary directories.
func (b *Board) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	master, slave, at := b.master, b.slave, b.at
	b.master, b.slave = nil, nil
	b.mu.Unlock()
	close(b.stop)
	// The link goes before the pty, as on an unplug: once the pty is
	// closed its number is free, the next pty made on the machine (another
	// test's console or board) gets it, and a host still polling the link
	// would open that one and speak the raw REPL into it.
	_ = os.Remove(at)
	if master != nil {
		master.Close()
		slave.Close()
	}
	b.chip.close()
	b.wg.Wait()
	// A replug racing Close may have made its link before it saw closed.
	for _, p := range []string{at, b.Device, b.cfg.ReplugAt} {
		if p != "" {
			_ = os.Remove(p)
		}
	}
	return os.RemoveAll(b.tmpDir)
}
