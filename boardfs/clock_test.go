package boardfs_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/boardfs"
	"github.com/ftpbridge/ftpbridge/repl"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

// TestSetClock: an ESP32 powers up with its clock at 2000-01-01, so files
// written to it are stamped 2000; given a Clock, New sets the board's clock
// (UTC) and files written after carry the true time. A Pyboard, whose
// clock keeps time, is left alone.
func TestSetClock(t *testing.T) {
	ctx := ctxFor(t, time.Minute)
	b := boardtest.Start(t, boardtest.ESP32, boardtest.Options{})
	conn, err := repl.Open(context.Background(), b.Device, 115200, repl.Options{Prepare: boardfs.Prepare})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
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

	unset, err := boardfs.New(ctx, conn, boardfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := mtime(unset, "/before.py"); got.Year() != 2000 {
		t.Fatalf("a file written to a board whose clock was never set has mtime %v, want in 2000", got)
	}
	set, err := boardfs.New(ctx, conn, boardfs.Options{Clock: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	if got := mtime(set, "/after.py"); time.Since(got).Abs() > time.Minute {
		t.Errorf("after setting the clock a new file has mtime %v, want about %v", got, time.Now())
	}
	if info, err := conn.Info(ctx); err != nil || time.Since(time.Unix(info.Clock, 0)).Abs() > time.Minute {
		t.Errorf("the board's clock after New: %d (%v)", info.Clock, err)
	}

	// A clock that is right is not touched: New costs the same execs.
	pb := boardtest.Start(t, boardtest.Pyboard, boardtest.Options{})
	pconn, err := repl.Open(context.Background(), pb.Device, 115200, repl.Options{Prepare: boardfs.Prepare})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pconn.Close() })
	// The first use of a conn probes the board; count from the second.
	if _, err := boardfs.New(ctx, pconn, boardfs.Options{}); err != nil {
		t.Fatal(err)
	}
	before := pconn.Stats().Execs
	if _, err := boardfs.New(ctx, pconn, boardfs.Options{}); err != nil {
		t.Fatal(err)
	}
	plain := pconn.Stats().Execs - before
	before = pconn.Stats().Execs
	if _, err := boardfs.New(ctx, pconn, boardfs.Options{Clock: time.Now}); err != nil {
		t.Fatal(err)
	}
	if withClock := pconn.Stats().Execs - before; withClock != plain {
		t.Errorf("New on a Pyboard with a right clock took %d execs with Clock, %d without", withClock, plain)
	}
}
