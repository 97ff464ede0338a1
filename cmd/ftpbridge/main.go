// Command ftpbridge serves a MicroPython board's files to any FTP client:
// it talks to the board's raw REPL over the serial line, so nothing is
// installed on the board and no network is needed on it.
//
//	ftpbridge [PORT]      serve the board on PORT (found by USB id if omitted)
//	ftpbridge ports       list serial ports and the boards they look like
//	ftpbridge version     print the version
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the bridge could not do its job
	exitUsage = 2 // bad flags or arguments
)

func main() {
	ctx, hurry, stop := interrupts()
	level := new(slog.LevelVar)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	a := &app{log: log, level: level, lookupEnv: os.LookupEnv, listPorts: listSerialPorts, hurry: hurry}
	err := newRootCmd(a).ExecuteContext(ctx)
	stop()
	os.Exit(exitCode(err))
}

// interrupts is signal.NotifyContext with a second step: the first Ctrl-C
// (or SIGTERM) cancels ctx, and the bridge stops once the uploads still on
// their way to the board have landed; the second closes hurry, and they
// are left in the spool for the next start. stop restores the default
// handling.
func interrupts() (ctx context.Context, hurry <-chan struct{}, stop func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	h := make(chan struct{})
	done := make(chan struct{})
	go func() {
		for _, step := range []func(){cancel, func() { close(h) }} {
			select {
			case <-sigs:
				step()
			case <-done:
				return
			}
		}
	}()
	return ctx, h, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}

// exitCode maps what the command returned to the process's exit status,
// printing the error: cobra is told not to (SilenceErrors) so that it is
// printed once, here.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(os.Stderr, "ftpbridge:", err)
	var ue *usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitError
}

// usageError marks errors in how ftpbridge was called.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}
