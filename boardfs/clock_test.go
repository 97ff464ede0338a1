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
