package repl_test

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/repl"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

// silentStall is how long the tests' boards go silent: well past
// Options.Silence (10 s) and the recovery that follows it, so that what
// happens during the silence is seen before it ends.
const silentStall = 25 * time.Second

// afterStall waits until the board that went silent at from talks again.
func afterStall(from time.Time) {
	time.Sleep(time.Until(from.Add(silentStall + time.Second)))
}

// A board that goes silent in the middle of a program's output, its line
// open (a hung firmware, a stalled adapter): Read fails with ErrSilent in
// about Options.Silence rather than waiting for ever; Silence tells other
// goroutines the board stopped; an exec while it is still silent fails
// soon with ErrSilent; and once it answers again the next exec works on
// the same conn.
func TestSilentBoardDuringRead(t *testing.T) {
	t.Parallel()
	b := boardtest.Start(t, boardtest.ESP32, boardtest.Options{Baud: 115200})
	c := open(t, b, repl.Options{})
	// The rig's board runs on while its line is silent, its output held
	// in the rig: 18 KB in all, 16 KB still to come when the line stops.
	run, err := c.Start(ctxFor(t, 120*time.Second), "import time\nfor i in range(400):\n print('%05d' % i + 'y'*40)\n time.sleep_ms(5)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(run, make([]byte, 2048)); err != nil {
		t.Fatal(err)
	}
	b.Stall(silentStall)
	stalled := time.Now()
	errc := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, run)
		errc <- err
	}()
	select {
	case err = <-errc:
	case <-time.After(silentStall - 5*time.Second):
		t.Fatalf("Read still waits %v into the board's silence", time.Since(stalled).Round(time.Second))
	}
	t.Logf("Read failed %v into the silence: %v", time.Since(stalled).Round(time.Millisecond), err)
	if !errors.Is(err, repl.ErrSilent) {
		t.Errorf("Read from a silent board: %v, want ErrSilent", err)
	}
	if _, stopped := c.Silence(); !stopped {
		t.Errorf("after ErrSilent, Silence says the board has not stopped")
	}

	start := time.Now()
	_, err = c.Exec(ctxFor(t, 60*time.Second), "print(1)")
	t.Logf("Exec while silent: %v after %v", err, time.Since(start).Round(time.Millisecond))
	if !errors.Is(err, repl.ErrSilent) {
		t.Errorf("Exec while the board is silent: %v, want ErrSilent", err)
	}
	if time.Since(stalled) > silentStall {
		t.Fatalf("the Exec during the silence outlasted it (%v)", time.Since(start).Round(time.Second))
	}

	afterStall(stalled)
	if out, err := c.Exec(ctxFor(t, 60*time.Second), "print(6*7)"); err != nil || trim(out) != "42" {
		t.Fatalf("Exec once the board answers again: %q, %v", out, err)
	}
	if _, stopped := c.Silence(); stopped {
		t.Errorf("the board answered, yet Silence says it stopped")
	}
}

// A stalled adapter stops taking bytes once its buffers are full: Write
// fails with ErrSilent in about Options.Silence rather than blocking for
// ever. The bytes go out once the line moves again, and the next exec
// works.
func TestSilentBoardDuringWrite(t *testing.T) {
	t.Parallel()
	const size = 64 << 10 // more than a pty and the rig's line hold
	b := boardtest.Start(t, boardtest.ESP32, boardtest.Options{Baud: 115200})
	c := open(t, b, repl.Options{})
	run, err := c.Start(ctxFor(t, 120*time.Second),
		"import sys,micropython\nmicropython.kbd_intr(-1)\nd=sys.stdin.buffer.read(65536)\nmicropython.kbd_intr(3)\nprint(len(d))")
	if err != nil {
		t.Fatal(err)
	}
	b.Stall(silentStall)
	stalled := time.Now()
	errc := make(chan error, 1)
	go func() {
		_, err := run.Write(make([]byte, size))
		errc <- err
	}()
	select {
	case err = <-errc:
	case <-time.After(silentStall - 5*time.Second):
		t.Fatalf("Write still blocks %v into the board's silence", time.Since(stalled).Round(time.Second))
	}
	t.Logf("Write failed %v into the silence: %v", time.Since(stalled).Round(time.Millisecond), err)
	if !errors.Is(err, repl.ErrSilent) {
		t.Errorf("Write to a silent board: %v, want ErrSilent", err)
	}

	afterStall(stalled)
	if out, err := c.Exec(ctxFor(t, 60*time.Second), "print(6*7)"); err != nil || trim(out) != "42" {
		t.Fatalf("Exec once the board answers again: %q, %v", out, err)
	}
}

// A write the silent board's port stopped taking counts as silence for
// those asking Silence from other goroutines (boardfs's waiters), as a
// read that hears nothing does: else they take a hung board, whose line
// is full, for a busy one.
func TestSilenceDuringStuckWrite(t *testing.T) {
	t.Parallel()
	const size = 64 << 10 // more than a pty and the rig's line hold
	b := boardtest.Start(t, boardtest.ESP32, boardtest.Options{Baud: 115200})
	c := open(t, b, repl.Options{})
	run, err := c.Start(ctxFor(t, 120*time.Second),
		"import sys,micropython\nmicropython.kbd_intr(-1)\nd=sys.stdin.buffer.read(65536)\nmicropython.kbd_intr(3)\nprint(len(d))")
	if err != nil {
		t.Fatal(err)
	}
	b.Stall(silentStall)
	stalled := time.Now()
	errc := make(chan error, 1)
	go func() {
		_, err := run.Write(make([]byte, size))
		errc <- err
	}()
	var most time.Duration
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	late := time.After(silentStall - 5*time.Second)
wait:
	for {
		select {
		case err = <-errc:
			break wait
		case <-tick.C:
			if quiet, stopped := c.Silence(); !stopped {
				most = max(most, quiet)
			}
		case <-late:
			t.Fatalf("Write still blocks %v into the board's silence", time.Since(stalled).Round(time.Second))
		}
	}
	t.Logf("Write failed %v into the silence (%v); Silence said quiet for up to %v", time.Since(stalled).Round(time.Millisecond), err, most.Round(time.Millisecond))
	if most < 3*time.Second {
		t.Errorf("while the port took nothing for %v, Silence said quiet for at most %v", time.Since(stalled).Round(time.Second), most)
	}
	afterStall(stalled)
}
