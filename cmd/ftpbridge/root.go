package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/spf13/cobra"
	"go.bug.st/serial"

	"github.com/ftpbridge/ftpbridge/boardfs"
	"github.com/ftpbridge/ftpbridge/console"
	"github.com/ftpbridge/ftpbridge/ftpdriver"
	"github.com/ftpbridge/ftpbridge/repl"
)

// app is what the commands share: the one logger, its level, and the two
// ways they reach the outside world that tests replace.
type app struct {
	log       *slog.Logger
	level     *slog.LevelVar
	lookupEnv func(string) (string, bool)
	listPorts func() ([]serialPort, error)
	// hurry is closed by the second Ctrl-C: uploads still on their way
	// to the board are left in the spool. Nil: never.
	hurry <-chan struct{}
}

// newRootCmd is `ftpbridge [PORT]`: serve the board on PORT over FTP.
func newRootCmd(a *app) *cobra.Command {
	var (
		line    lineFlags
		server  serverFlags
		cons    consoleFlags
		verbose bool
		all     bool
	)
	cmd := &cobra.Command{
		Use:   "ftpbridge [PORT]",
		Short: "Serve a MicroPython board's files over FTP",
		Long: `ftpbridge serves the files of a MicroPython board plugged into this
computer to any FTP client (FileZilla, Nautilus, Dolphin, curl, lftp,
rclone...). It talks to the board's raw REPL over the serial line: nothing
is installed on the board.

Without PORT, ftpbridge looks for the one serial port whose USB id looks
like a MicroPython board (` + "`ftpbridge ports`" + ` lists them).

With --all, ftpbridge serves every such board at once, each as a folder
named after its port (ttyACM0, COM3; ttyACM0-2 when two ports share a
name). Boards appear as they are plugged in, and their folder leaves a few
seconds after they are unplugged.

Every flag can also be set in the environment: FTPBRIDGE_LISTEN,
FTPBRIDGE_USER, FTPBRIDGE_PASSWORD, FTPBRIDGE_BAUD, ... (the flag's name in
capitals, dashes as underscores). The command line wins.`,
		Example: `  ftpbridge /dev/ttyUSB0
  ftpbridge --read-only COM3
  ftpbridge --all
  FTPBRIDGE_PASSWORD=secret ftpbridge --listen 0.0.0.0:2121 --user me`,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cobra.MaximumNArgs(1)(cmd, args); err != nil {
				return &usageError{err}
			}
			return nil
		},
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd, a.lookupEnv); err != nil {
				return err
			}
			if verbose {
				a.level.Set(slog.LevelDebug)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := server.check(); err != nil {
				return err
			}
			if err := cons.check(server); err != nil {
				return err
			}
			if all && len(args) == 1 {
				return usagef("--all serves every board plugged in and takes no PORT (got %q)", args[0])
			}
			tlsConfig, err := server.loadTLS()
			if err != nil {
				return err
			}
			if all {
				return serveAll(cmd.Context(), a, line, server, cons, tlsConfig)
			}
			port := ""
			if len(args) == 1 {
				port = args[0]
			}
			return serve(cmd.Context(), a, port, line, server, cons, tlsConfig)
		},
	}
	line.AddToCommand(cmd)
	server.AddToCommand(cmd)
	cons.AddToCommand(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "serve every MicroPython board plugged in, each as a folder named after its port")
	cmd.PersistentFlags().BoolVarP(&verbose, "verbose", "v", false, "log every board exec and FTP operation")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	cmd.AddCommand(newPortsCmd(a), newVersionCmd())
	return cmd
}

// serve runs the bridge until ctx is done (Ctrl-C, SIGTERM), then closes
// the client connections and leaves the board in its friendly REPL.
func serve(ctx context.Context, a *app, port string, line lineFlags, server serverFlags, cons consoleFlags, tlsConfig *tls.Config) error {
	log := a.log
	if port == "" {
		ports, err := a.listPorts()
		if err != nil {
			return fmt.Errorf("looking for a board: %w", err)
		}
		p, err := findBoard(ports)
		if err != nil {
			return err
		}
		log.Info("found a board", "port", p.Name, "device", describePort(p))
		port = p.Name
	}

	ln, err := listen(ctx, server)
	if err != nil {
		return err
	}
	defer ln.Close()
	cs, err := openConsoles(ctx, log, cons, server)
	if err != nil {
		return err
	}

	// The link follows the board across unplugs: while it is away clients
	// hear "board not connected", and it is taken back when it returns.
	where := newBoardPort(port, a.listPorts)
	mode, why := line.lineFor(where.usb)
	log.Info("line chosen", "port", port, "line", mode, "reason", why)
	link, err := boardfs.Connect(ctx, boardfs.LinkOptions{
		Dial: func(context.Context) (boardfs.Port, error) {
			p, ok := where.locate()
			if !ok {
				p = port // fails, and says why
			}
			if p != port {
				log.Info("the board is at a new path: the same USB serial number", "port", port, "now", p)
			}
			return openPort(p, line.baud)
		},
		Present: func() bool { _, ok := where.locate(); return ok },
		FS:      line.boardOptions(log.With("port", port), port, mode),
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil // interrupted while starting: nothing went wrong
		}
		var perr *serial.PortError
		if errors.As(err, &perr) {
			return openError(port, err)
		}
		if errors.Is(err, repl.ErrNoRawREPL) || errors.Is(err, boardfs.ErrSilent) {
			return fmt.Errorf("no MicroPython answers on %s: Ctrl-C and Ctrl-A brought no raw REPL. "+
				"Is the board running MicroPython, at --baud %d? Is a program on it ignoring Ctrl-C? "+
				"Pressing its reset button usually helps (%w)", port, line.baud, err)
		}
		return fmt.Errorf("reaching the board on %s: %w", port, err)
	}
	// The link outlives the server, which waits for the operations still
	// on the board; stopping it then closes the port and leaves the board
	// in the friendly REPL, as its owner expects to find it.
	lctx, stopLink := context.WithCancel(context.WithoutCancel(ctx))
	linkDone := make(chan struct{})
	go func() { link.Run(lctx); close(linkDone) }()
	defer func() { stopLink(); <-linkDone }()
	// The console lets the board go before the link closes it: a program
	// running there keeps running.
	cctx, stopConsole := context.WithCancel(ctx)
	defer func() { stopConsole(); cs.wait() }()
	c := cs.start(cctx, link, port, cs.ptyFor(port, false))
	cs.serveTCP(cctx, console.One{C: c})
	dopts := driverOptions(log, ln, server, line, tlsConfig)
	dopts.BoardName = port
	srv := ftpdriver.New(consoleBoard{Link: link, c: c}, dopts)
	return serveFTP(ctx, a, srv, fmt.Sprintf("for %s on %s", link.Info(), port), server, tlsConfig)
}

// listen opens the address FTP clients reach: before any board is
// touched, so that an address in use is found at once.
func listen(ctx context.Context, server serverFlags) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", server.listen)
	if err != nil {
		return nil, fmt.Errorf("listening for FTP clients: %w", err)
	}
	return ln, nil
}

// serveFTP serves FTP clients until ctx is done (Ctrl-C, SIGTERM), then
// closes their connections and waits for the uploads still on their way
// to the boards (drain); what says what is served, for the log.
func serveFTP(ctx context.Context, a *app, srv *ftpdriver.Server, what string, server serverFlags, tlsConfig *tls.Config) error {
	log := a.log
	if err := srv.Listen(); err != nil {
		return err
	}
	log.Info(fmt.Sprintf("serving ftp://%s %s", srv.Addr(), what),
		"read_only", server.readOnly, "tls", tlsConfig != nil, "anonymous", server.user == "")
	err := srv.Serve(ctx)
	drain(a, srv)
	if err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// drain waits, once the server stopped, for the uploads still on their
// way to the board, until they land or a second Ctrl-C leaves them in the
// spool; the board's connection may then close.
func drain(a *app, srv *ftpdriver.Server) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-a.hurry:
			cancel()
		case <-ctx.Done():
		}
	}()
	srv.Drain(ctx)
}

// loadTLS reads --tls-cert and --tls-key; nil without them.
func (f *serverFlags) loadTLS() (*tls.Config, error) {
	if f.tlsCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("loading the TLS certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// driverOptions is how the flags configure the FTP server, over one board
// or all of them.
func driverOptions(log *slog.Logger, ln net.Listener, server serverFlags, line lineFlags, tlsConfig *tls.Config) ftpdriver.Options {
	spool := line.spoolPath()
	if spool == "" {
		log.Warn("no cache directory for the spool of uploads: uploads left pending by a crash are not written at the next start; set --spool-dir")
	}
	return ftpdriver.Options{
		Logger:        log,
		Listener:      ln,
		User:          server.user,
		Password:      server.password,
		ReadOnly:      server.readOnly,
		TLS:           tlsConfig,
		PassivePorts:  ftpdriver.PortRange(server.passivePorts),
		MaxSessions:   server.maxSessions,
		IdleTimeout:   server.idleTimeout,
		LoginTimeout:  server.loginTimeout,
		MaxLoginFails: server.maxFails,
		LoginLockout:  server.lockout,
		SpoolDir:      spool,
		UploadWait:    server.uploadWait,
	}
}

// openError explains a port that would not open; an argument that names no
// device may be a mistyped subcommand.
func openError(port string, err error) error {
	if errors.Is(err, context.Canceled) {
		return nil // interrupted while opening
	}
	if !strings.ContainsAny(port, `/\`) && !strings.HasPrefix(strings.ToUpper(port), "COM") {
		return fmt.Errorf("%w (is %q a mistyped command? see ftpbridge --help)", err, port)
	}
	return err
}
