// Package ftptest starts an ftpbridge FTP server over an emulated board for
// tests, the way net/http/httptest starts HTTP servers: one call gives an
// address to dial and the host directory that is the board's filesystem,
// and the test's cleanup stops it all.
package ftptest

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"

	"github.com/ftpbridge/ftpbridge/boardfs"
	"github.com/ftpbridge/ftpbridge/ftpdriver"
	"github.com/ftpbridge/ftpbridge/repl"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

// Options shape the board and the server. The zero value is an ESP32 on
// an unthrottled line, served anonymously and read-write.
type Options struct {
	Profile  boardtest.Profile // default boardtest.ESP32
	Board    boardtest.Options
	BusyWait time.Duration // boardfs.Options.BusyWait; 0: boardfs's default
	// Driver configures the server; Logger and Listener are filled in.
	Driver ftpdriver.Options
}

// Server is a running FTP server over an emulated board.
type Server struct {
	Addr  string           // host:port to dial
	Board *boardtest.Board // Board.Root is the board's filesystem on the host
	Link  *boardfs.Link    // the board as the server reaches it
	opts  Options
	stop  context.CancelFunc
	done  chan error
}

// Start starts a board and an FTP server over it on 127.0.0.1, and
// registers their shutdown with tb.Cleanup. It fails the test on any setup
// error, and skips it when boardfs does not support the board.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	if opts.Profile == "" {
		opts.Profile = boardtest.ESP32
	}
	log := opts.Driver.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	b := boardtest.Start(tb, opts.Profile, opts.Board)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The server reaches the board as ftpbridge does: through a Link that
	// follows it across a cut and a replug of the rig's line.
	link, err := boardfs.Connect(ctx, boardfs.LinkOptions{
		Dial: func(ctx context.Context) (*repl.Conn, error) {
			return repl.Open(ctx, b.Device, opts.Board.Baud, repl.Options{Logger: log.With("layer", "repl"), Prepare: boardfs.Prepare})
		},
		Present: func() bool { _, err := os.Stat(b.Device); return err == nil },
		FS:      boardfs.Options{Logger: log.With("layer", "boardfs"), BusyWait: opts.BusyWait},
	})
	if err != nil {
		if errors.Is(err, boardfs.ErrNotSupported) {
			// What boardfs cannot serve yet is no failure of the server;
			// the test runs by itself once boardfs learns the board.
			tb.Skipf("ftptest: %s board: %v", opts.Profile, err)
		}
		tb.Fatalf("ftptest: boardfs on %s: %v", b.Device, err)
	}
	lctx, stopLink := context.WithCancel(context.Background())
	linkDone := make(chan struct{})
	go func() { link.Run(lctx); close(linkDone) }()
	closeLink := func() { stopLink(); <-linkDone }
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		closeLink()
		tb.Fatalf("ftptest: listen: %v", err)
	}
	dopts := opts.Driver
	dopts.Logger = log
	dopts.Listener = ln
	srv := ftpdriver.New(link, dopts)
	if err := srv.Listen(); err != nil {
		closeLink()
		tb.Fatalf("ftptest: %v", err)
	}
	sctx, stop := context.WithCancel(context.Background())
	s := &Server{Addr: srv.Addr(), Board: b, Link: link, opts: opts, stop: stop, done: make(chan error, 1)}
	go func() { s.done <- srv.Serve(sctx) }()
	tb.Cleanup(func() {
		if err := s.Stop(); err != nil {
			tb.Errorf("ftptest: serve: %v", err)
		}
		closeLink()
	})
	return s
}

// Stop shuts the server down as Ctrl-C does, and returns what Serve
// returned. Later calls return nil.
func (s *Server) Stop() error {
	if s.stop == nil {
		return nil
	}
	s.stop()
	s.stop = nil
	return <-s.done
}

// Dial connects a client and logs in: with the server's account if it has
// one, else anonymously. The connection is closed at cleanup.
func (s *Server) Dial(tb testing.TB, opts ...ftp.DialOption) *ftp.ServerConn {
	tb.Helper()
	user, pass := s.opts.Driver.User, s.opts.Driver.Password
	if user == "" {
		user, pass = "anonymous", "ftptest@"
	}
	return s.DialAs(tb, user, pass, opts...)
}

// DialAs connects a client and logs in as user.
func (s *Server) DialAs(tb testing.TB, user, pass string, opts ...ftp.DialOption) *ftp.ServerConn {
	tb.Helper()
	opts = append([]ftp.DialOption{ftp.DialWithTimeout(20 * time.Second)}, opts...)
	c, err := ftp.Dial(s.Addr, opts...)
	if err != nil {
		tb.Fatalf("ftptest: dial %s: %v", s.Addr, err)
	}
	tb.Cleanup(func() { _ = c.Quit() })
	if err := c.Login(user, pass); err != nil {
		tb.Fatalf("ftptest: login as %q: %v", user, err)
	}
	return c
}
