package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/spf13/cobra"

	"github.com/ftpbridge/ftpbridge/boardfs"
	"github.com/ftpbridge/ftpbridge/console"
	"github.com/ftpbridge/ftpbridge/ftpdriver"
)

// consoleFlags say where the boards' consoles are served.
type consoleFlags struct {
	addr        string
	pty         string
	keepProgram bool
}

func (f *consoleFlags) AddToCommand(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "console", "",
		"serve the board's Python prompt as a raw TCP stream on this address (telnet, nc, socat, PuTTY raw), e.g. 127.0.0.1:2323; "+
			"under --all, a client names the board after connecting")
	fl.StringVar(&f.pty, "console-pty", "",
		"serve the board's Python prompt on a pseudo-terminal linked at this path, for screen, picocom or minicom (Linux and macOS); "+
			"under --all, a directory that gets one link per board, named after its folder")
	fl.BoolVar(&f.keepProgram, "console-keeps-program", false,
		"an FTP request waits for a program running on the console instead of interrupting it, and after --busy-wait is told the board is busy running a program")
}

// check refuses a console others could reach without a password: it gives
// a Python prompt on the board, which can do anything to it.
func (f *consoleFlags) check(server serverFlags) error {
	if f.addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(f.addr)
	if err != nil {
		return usagef("--console %q: %v", f.addr, err)
	}
	if server.user == "" && !isLoopback(host) {
		return usagef("refusing to serve the console on %s without --user and --password: "+
			"anyone who can reach that address could run any code on the board. "+
			"Set credentials (the console asks for them; they cross the network in clear), or use 127.0.0.1", f.addr)
	}
	return nil
}

// consoleBoard is a board with its console: ftpdriver's SITE RESET and
// SITE RUN reach the console through it.
type consoleBoard struct {
	*boardfs.Link
	c *console.Console
}

var (
	_ ftpdriver.Board    = consoleBoard{}
	_ ftpdriver.Programs = consoleBoard{}
)

func (b consoleBoard) SoftReset(ctx context.Context, op string) (string, error) {
	return b.c.SoftReset(ctx, op)
}

func (b consoleBoard) RunFile(ctx context.Context, p, op string) (string, error) {
	return b.c.RunFile(ctx, p, op)
}

// consoles runs the consoles of a bridge: the TCP listener, opened before
// any board is touched so that an address in use is found at once, and
// each board's console and pseudo-terminal.
type consoles struct {
	flags  consoleFlags
	server serverFlags
	log    *slog.Logger
	ln     net.Listener // nil without --console
	wg     sync.WaitGroup
}

// openConsoles opens the console's listener, if any.
func openConsoles(ctx context.Context, log *slog.Logger, flags consoleFlags, server serverFlags) (*consoles, error) {
	cs := &consoles{flags: flags, server: server, log: log}
	if flags.addr != "" {
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", flags.addr)
		if err != nil {
			return nil, fmt.Errorf("listening for console clients: %w", err)
		}
		cs.ln = ln
	}
	if (flags.pty != "" || flags.addr != "") && server.readOnly {
		log.Warn("--read-only keeps FTP clients from changing the board; the console is a Python prompt, which can change anything")
	}
	return cs, nil
}

// start runs a board's console until ctx is done: its SITE requests,
// and its pseudo-terminal at pty ("" for none). The board's name is name.
func (cs *consoles) start(ctx context.Context, link *boardfs.Link, name, pty string) *console.Console {
	log := cs.log.With("console", name)
	c := console.New(link, console.Options{Logger: log, Name: name, KeepProgram: cs.flags.keepProgram})
	cs.wg.Add(1)
	go func() {
		defer cs.wg.Done()
		c.Serve(ctx)
	}()
	if pty != "" {
		cs.wg.Add(1)
		go func() {
			defer cs.wg.Done()
			if err := console.ServePTY(ctx, pty, c, log); err != nil {
				log.Error("no console on a pseudo-terminal", "err", err)
			}
		}()
	}
	return c
}

// serveTCP serves the listener's clients the consoles of set until ctx is
// done.
func (cs *consoles) serveTCP(ctx context.Context, set console.Consoles) {
	if cs.ln == nil {
		return
	}
	cs.log.Info(fmt.Sprintf("console on tcp://%s", cs.ln.Addr()), "login", cs.server.user != "")
	cs.wg.Add(1)
	go func() {
		defer cs.wg.Done()
		err := console.ServeTCP(ctx, cs.ln, set, console.ListenOptions{
			Logger: cs.log, User: cs.server.user, Password: cs.server.password, LoginTimeout: cs.server.loginTimeout,
		})
		if err != nil {
			cs.log.Error("console listener failed", "err", err)
		}
	}()
}

// ptyFor is where the pseudo-terminal of the board named name goes: the
// flag's path for one board, a link in its directory under --all.
func (cs *consoles) ptyFor(name string, all bool) string {
	if cs.flags.pty == "" || !all {
		return cs.flags.pty
	}
	return filepath.Join(cs.flags.pty, name)
}

// prepareAll makes --console-pty's directory under --all.
func (cs *consoles) prepareAll() error {
	if cs.flags.pty == "" {
		return nil
	}
	if err := os.MkdirAll(cs.flags.pty, 0o700); err != nil {
		return fmt.Errorf("--console-pty under --all is a directory for one link per board: %w", err)
	}
	return nil
}

// wait waits for the consoles to stop, once their ctx is done; the
// listener is closed.
func (cs *consoles) wait() {
	if cs.ln != nil {
		_ = cs.ln.Close()
	}
	cs.wg.Wait()
}
