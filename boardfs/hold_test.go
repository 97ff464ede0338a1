package boardfs_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/boardfs"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

// A holder gets the board once operations have left it alone, hears of
// each operation that asks for it, by name, and the operation gets the
// board as soon as the holder lets go; a holder that keeps the board
// makes operations fail with ErrProgramRunning after BusyWait.
func TestHoldSharesTheBoard(t *testing.T) {
	t.Parallel()
	f, _, _ := startWith(t, boardtest.ESP32, boardtest.Options{}, boardfs.Options{BusyWait: 500 * time.Millisecond})
	ctx := ctxFor(t, time.Minute)
	if _, err := f.Stat(ctx, "/"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	h, err := f.Hold(ctx, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("Hold waited %v for a board nobody used", waited)
	}
	if h.Waiting() {
		t.Error("Waiting with no operation asking")
	}

	// An operation asks: the holder hears its name, and lets go.
	statted := make(chan error, 1)
	go func() {
		_, err := f.Stat(boardfs.WithOp(ctx, "SIZE /x"), "/")
		statted <- err
	}()
	select {
	case op := <-h.Wanted():
		if op != "SIZE /x" {
			t.Errorf("Wanted = %q, want SIZE /x", op)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the holder was not told of the operation")
	}
	if !h.Waiting() {
		t.Error("Waiting is false while an operation waits")
	}
	h.Release()
	h.Release() // a second call does nothing
	if err := <-statted; err != nil {
		t.Fatalf("Stat once the holder let go: %v", err)
	}

	// Kept: the operation is told why after BusyWait.
	h, err = f.Hold(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	h.Keep("a program runs on the console")
	_, err = f.Stat(ctx, "/")
	if !errors.Is(err, boardfs.ErrProgramRunning) || !errors.Is(err, boardfs.ErrBusy) || !strings.Contains(err.Error(), "a program runs on the console") {
		t.Errorf("Stat while the holder keeps the board: %v; want ErrProgramRunning saying why", err)
	}
	h.Release()
	if _, err := f.Stat(ctx, "/"); err != nil {
		t.Errorf("Stat after the holder let go: %v", err)
	}
}

// Hold waits until operations have left the board alone for the quiet
// time, and gives up with its context.
func TestHoldWaitsForQuiet(t *testing.T) {
	t.Parallel()
	f, _, _ := start(t, boardtest.ESP32, boardtest.Options{})
	ctx := ctxFor(t, time.Minute)
	// Operations one after another, for two seconds.
	busy, stop := context.WithTimeout(ctx, 2*time.Second)
	defer stop()
	go func() {
		for busy.Err() == nil {
			_, _ = f.Stat(boardfs.WithOp(busy, "LIST /"), "/")
		}
	}()
	time.Sleep(100 * time.Millisecond)
	if op := f.Using(); op != "LIST /" && op != "" {
		t.Errorf("Using = %q, want LIST / (or nothing, between two)", op)
	}
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if _, err := f.Hold(short, 300*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Hold while operations keep coming = %v, want its context's deadline", err)
	}
	h, err := f.Hold(ctx, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release()
	if busy.Err() == nil {
		t.Error("Hold took the board while operations still came one after another")
	}
}
