// Package boardtest starts emulated MicroPython boards for tests, the way
// net/http/httptest starts servers: one call gives a serial device with a
// real MicroPython behind it, and the test's cleanup takes it away.
package boardtest

import (
	"log/slog"
	"testing"
	"time"

	"go.bug.st/serial"

	"github.com/ftpbridge/ftpbridge/scripts/rig"
)

// Profile names a kind of board.
type Profile = rig.Profile

// The boards a test can start.
const (
	ESP32    = rig.ESP32
	ESP8266  = rig.ESP8266
	Pyboard  = rig.Pyboard
	Microbit = rig.Microbit
)

// Profiles lists every profile, for tests that run on each.
var Profiles = rig.Profiles

// Options shape the board and its line. The zero value is an idle board on
// an unthrottled, lossless line with a fresh root directory, answering at
// the host's speed; the timed settings (Latency, USBCDC, Flash, CPU, Heap)
// make it keep a real board's time and memory, at a real board's pace.
type Options struct {
	Baud        int           // line rate, 8N1; 0: unthrottled and lossless
	Root        string        // host directory that is the board's filesystem; empty: t.TempDir()
	Running     bool          // a program is printing when the test starts
	CutAfter    int64         // cut the line after this many bytes, both ways counted
	ReplugAfter time.Duration // bring a cut line back after this long
	ReplugAt    string        // where it comes back; empty: at Device
	FlipAt      int64         // invert a bit of the N-th byte (from 1) the board sends

	// Latency puts a USB-serial adapter with this latency timer on the
	// line (rig.Config.Latency): 16 ms for FTDI's default, 2 ms for CP210x.
	Latency time.Duration
	// USBCDC makes the line native USB: 64-byte packets each 1 ms frame,
	// flow-controlled (rig.Config.USBCDC). Not with Baud or Latency.
	USBCDC bool
	// StallAfter and StallFor make the board go silent for StallFor once
	// it has sent StallAfter bytes (rig.Config.StallAfter); Board.Stall
	// does it at once.
	StallAfter int64
	StallFor   time.Duration
	// Heap gives a VM board a real board's heap: this many bytes free
	// after boot, and MemoryError beyond (rig.RealHeap(profile) is the
	// board's figure). 0: the VM's own heap, about 128 MB.
	Heap int
	// Flash makes filesystem writes take a SPI flash's program and erase
	// times (rig.Config.Flash).
	Flash bool
	// CPU makes the board's Python take its chip's time (rig.Config.CPU).
	CPU bool
	// ClockMHz, with CPU, runs the chip at another clock (rig.Config.ClockMHz).
	ClockMHz int
}

// Board is an emulated board started for a test.
type Board struct {
	Device string // serial device path; stable across a cut and replug
	Root   string // the board's filesystem on the host; empty for the micro:bit

	tb    testing.TB
	board *rig.Board
}

// bootWait bounds how long Start waits for a board's first prompt: a
// loaded machine starts Node and qemu slowly.
const bootWait = time.Minute

// Start starts a board of the given profile, waits until it has booted
// (its first prompt; for Options.Running, its first output) and registers
// its shutdown with tb.Cleanup. A missing tool fails the test with the step that installs it.
// Under go test -short it skips the test: the short run is the one that
// needs no emulated board.
func Start(tb testing.TB, profile Profile, opts Options) *Board {
	tb.Helper()
	if testing.Short() {
		tb.Skipf("boardtest: -short: no emulated %s board", profile)
	}
	root := opts.Root
	if root == "" && profile != Microbit {
		root = tb.TempDir()
	}
	logger := slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := rig.Start(rig.Config{
		Profile:     profile,
		Root:        root,
		Baud:        opts.Baud,
		Running:     opts.Running,
		CutAfter:    opts.CutAfter,
		ReplugAfter: opts.ReplugAfter,
		ReplugAt:    opts.ReplugAt,
		FlipAt:      opts.FlipAt,
		Latency:     opts.Latency,
		USBCDC:      opts.USBCDC,
		StallAfter:  opts.StallAfter,
		StallFor:    opts.StallFor,
		Heap:        opts.Heap,
		Flash:       opts.Flash,
		CPU:         opts.CPU,
		ClockMHz:    opts.ClockMHz,
		Logger:      logger,
	})
	if err != nil {
		tb.Fatalf("boardtest: start %s board: %v", profile, err)
	}
	tb.Cleanup(func() {
		if err := b.Close(); err != nil {
			tb.Errorf("boardtest: stop %s board: %v", profile, err)
		}
	})
	// A test talks to a board that listens, as a person does once the
	// prompt shows: a host that speaks first meets a board still booting
	// (Node starting a VM takes seconds on a loaded machine).
	if err := b.WaitReady(bootWait); err != nil {
		tb.Fatalf("boardtest: start %s board: %v", profile, err)
	}
	return &Board{Device: b.Device, Root: b.Root, tb: tb, board: b}
}

// Open opens the board's serial device, as cmd/ftpbridge opens a real
// board's; whoever it is given to (a repl.Conn, a boardfs.FS) closes it.
// It returns its error rather than failing the test: a boardfs.Link dials
// from its own goroutine, and while the rig's line is cut the device is
// absent and the Link tries again.
func (b *Board) Open() (serial.Port, error) {
	// A pty has no modem lines and ignores the rate: the rig's line sets
	// the pace.
	return serial.Open(b.Device, &serial.Mode{BaudRate: 115200})
}

// Reset presses the board's reset button: boot noise, banner, friendly
// prompt; Python state is gone and files stay.
func (b *Board) Reset() {
	b.tb.Helper()
	if err := b.board.Reset(); err != nil {
		b.tb.Fatalf("boardtest: reset: %v", err)
	}
}

// DropIn loses the n-th byte (from 1) the host sends from now on, as a
// board whose receive buffer overflowed loses one.
func (b *Board) DropIn(n int64) { b.board.DropIn(n) }

// FlipOut inverts the lowest bit of the n-th byte (from 1) the board sends
// from now on.
func (b *Board) FlipOut(n int64) { b.board.FlipOut(n) }

// Stall makes the board go silent now for d with its line open, as a hung
// firmware or a stalled adapter does; bytes sent meanwhile arrive after it.
func (b *Board) Stall(d time.Duration) { b.board.Stall(d) }

// Log returns what the firmware and the rig have logged so far.
func (b *Board) Log() []string { return b.board.Log() }

// Dropped returns how many bytes the board's receive buffer had no room for
// since it last powered on.
func (b *Board) Dropped() int64 { return b.board.Dropped() }
