package boardfs_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/boardfs"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

// TestSetClock: an ESP32 powers up with its clock at 2000-01-01, so files
// written to it are stamped 2000; given a Clock, New sets the board's clock
// (UTC) and files written after carry the true time. A Pyboard, whose
// clock keeps time, is left alone.
func TestSetClock(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t, time.Minute)
	b := boardtest.Start(t, boardtest.ESP32, boardtest.Options{})
	port, err := b.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { port.Close() })
	mtime := func(f *boardfs.FS, name string) time.Time {
		t.Helper()
		if err := f.WriteFile(ctx, name, bytes.NewReader([]byte("x=1\n")), 4); err != nil {
			t.Fatal(err)
		}
		e, err := f.Stat(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return e.ModTime
	}

	// Each New speaks to the same port afresh, as a Link's does after a
	// replug.
	unset, err := boardfs.New(ctx, port, boardfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := mtime(unset, "/before.py"); got.Year() != 2000 {
		t.Fatalf("a file written to a board whose clock was never set has mtime %v, want in 2000", got)
	}
	set, err := boardfs.New(ctx, port, boardfs.Options{Clock: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	if got := mtime(set, "/after.py"); time.Since(got).Abs() > time.Minute {
		t.Errorf("after setting the clock a new file has mtime %v, want about %v", got, time.Now())
	}
	// A new FS asks the board what its clock says.
	again, err := boardfs.New(ctx, port, boardfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if clock := again.Board().Clock; time.Since(time.Unix(clock, 0)).Abs() > time.Minute {
		t.Errorf("the board's clock after New: %d", clock)
	}

	// A clock that is right is not touched: New costs the same execs.
	pb := boardtest.Start(t, boardtest.Pyboard, boardtest.Options{})
	pport, err := pb.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pport.Close() })
	// The first New installs the helpers; count from the second.
	if _, err := boardfs.New(ctx, pport, boardfs.Options{}); err != nil {
		t.Fatal(err)
	}
	f, err := boardfs.New(ctx, pport, boardfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	plain := f.Stats().Execs
	f, err = boardfs.New(ctx, pport, boardfs.Options{Clock: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	if withClock := f.Stats().Execs; withClock != plain {
		t.Errorf("New on a Pyboard with a right clock took %d execs with Clock, %d without", withClock, plain)
	}
}

// TestSetClockAfterReset: a reset (the button, a watchdog) takes an ESP32's
// clock back to 2000-01-01; the helpers go again after it, and so must the
// clock, or files written after the reset are stamped 2000. Where the
// clock is right, prepare's question costs no exec of its own.
func TestSetClockAfterReset(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t, 2*time.Minute)
	f, b, dir := startWith(t, boardtest.ESP32, boardtest.Options{}, boardfs.Options{Clock: time.Now})
	if err := f.Mkdir(ctx, dir); err != nil {
		t.Fatal(err)
	}
	b.Reset()
	time.Sleep(500 * time.Millisecond) // the board boots
	var err error
	for range 2 { // the first may meet the reset
		if _, err = f.List(ctx, dir); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("List after a reset: %v", err)
	}
	name := dir + "/after-reset.py"
	if err := f.WriteFile(ctx, name, bytes.NewReader([]byte("x=1\n")), 4); err != nil {
		t.Fatal(err)
	}
	e, err := f.Stat(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if off := time.Since(e.ModTime).Abs(); off > time.Minute {
		t.Errorf("a file written after a reset has mtime %v, %v from now: the board's clock was not set again", e.ModTime, off)
	}

	// An interrupted exchange has prepare ask again; with the clock right
	// that is its one exec, as without a Clock.
	execs := func() int64 {
		before := f.Stats().Execs
		if _, err := f.List(ctx, dir); err != nil {
			t.Fatal(err)
		}
		return f.Stats().Execs - before
	}
	plain := execs()
	if err := f.Interrupt(ctx); err != nil {
		t.Fatal(err)
	}
	if again := execs(); again != plain+1 {
		t.Errorf("a listing took %d execs, and %d after an interrupt: want one more (prepare's question)", plain, again)
	}
}
