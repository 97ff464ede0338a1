//go:build unix

package main

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// The first Ctrl-C stops serving (ctx), the second hurries the stop past
// the uploads still on their way to the board (hurry).
func TestInterrupts(t *testing.T) {
	ctx, hurry, stop := interrupts()
	defer stop()
	interrupt := func() {
		t.Helper()
		if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
	}
	interrupt()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the first Ctrl-C did not cancel the context")
	}
	select {
	case <-hurry:
		t.Fatal("the first Ctrl-C already hurried the stop")
	case <-time.After(200 * time.Millisecond):
	}
	interrupt()
	select {
	case <-hurry:
	case <-time.After(5 * time.Second):
		t.Fatal("the second Ctrl-C did not hurry the stop")
	}
}
