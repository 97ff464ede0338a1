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

// Options shape the board's line. The zero value is an idle board on an
// unthrottled line with a fresh root directory.
type Options struct {
	Baud        int           // line rate, 8N1; 0: unthrottled
	Root        string        // host directory that is the board's filesystem; empty: t.TempDir()
	Running     bool          // a program is printing when the test starts
	CutAfter    int64         // cut the line after this many bytes, both ways counted
	ReplugAfter time.Duration // bring a cut line back after this long
	ReplugAt    string        // where it comes back; empty: at Device
	FlipAt      int64         // invert a bit of the N-th byte (from 1) the board sends
}

// Board is an emulated board started for a test.
type Board struct {
	Device string // serial device path; stable across a cut and replug
	Root   string // the board's filesystem on the host; empty for the micro:bit

	tb    testing.TB
	board *rig.Board
}

// Start starts a board of the given profile and registers its shutdown with
// tb.Cleanup. A missing tool fails the test with the step that installs it.
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

// Log returns what the firmware and the rig have logged so far.
func (b *Board) Log() []string { return b.board.Log() }

// Dropped returns how many bytes the board's receive buffer had no room for
// since it last powered on.
func (b *Board) Dropped() int64 { return b.board.Dropped() }
