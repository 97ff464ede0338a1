// Package ftptest starts an ftpbridge FTP server over an emulated board for
// tests, the way net/http/httptest starts HTTP servers: one call gives an
// address to dial and the host directory that is the board's filesystem,
// and the test's cleanup stops it all. Under go test -short, which starts
// no emulated board, Start and StartMulti skip their test; StartUnplugged
// and StartUnpluggedMulti, which need no board, run.
package ftptest

import (
	"context"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"

	"github.com/ftpbridge/ftpbridge/boardfs"
	"github.com/ftpbridge/ftpbridge/ftpdriver"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

// Options shape the board and the server. The zero value is an ESP32 on
// an unthrottled line, served anonymously and read-write.
type Options struct {
	Profile  boardtest.Profile // default boardtest.ESP32
	Board    boardtest.Options
	BusyWait time.Duration // boardfs.Options.BusyWait; 0: boardfs's default
	Cache    boardfs.Cache // boardfs.Options.Cache; nil: none
	// Driver configures the server; Logger and Listener are filled in,
	// and SpoolDir, when empty, with a directory of the test's.
	Driver ftpdriver.Options
	// Serve, when set, is what Start's server serves in place of the
	// board's link: the link with more to it (a console, for SITE).
	Serve func(link *boardfs.Link) ftpdriver.Board
}

// Server is a running FTP server over an emulated board.
type Server struct {
	Addr  string           // host:port to dial
	Board *boardtest.Board // Board.Root is the board's filesystem on the host
	Link  *boardfs.Link    // the board as the server reaches it
	Spool string           // the server's spool directory
	srv   *ftpdriver.Server
	opts  Options
	stop  func(hurry bool) error
}

// Start starts a board and an FTP server over it on 127.0.0.1, and
// registers their shutdown with tb.Cleanup. It fails the test on any setup
// error, a board that boardfs cannot serve included.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	if opts.Profile == "" {
		opts.Profile = boardtest.ESP32
	}
	log := testLogger(tb, opts)
	b := boardtest.Start(tb, opts.Profile, opts.Board)
	link := startLink(tb, b, opts, log)
	s := &Server{Board: b, Link: link, opts: opts}
	var board ftpdriver.Board = link
	if opts.Serve != nil {
		board = opts.Serve(link)
	}
	s.Addr, s.Spool, s.stop = serve(tb, opts, log, func(dopts ftpdriver.Options) *ftpdriver.Server {
		s.srv = ftpdriver.New(board, dopts)
		return s.srv
	})
	return s
}

// WaitUploads waits until the board has every upload the server took (a
// 226 comes once an upload is safe in the spool, which may be before the
// board has it), and fails the test after within.
func (s *Server) WaitUploads(tb testing.TB, within time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		n, bytes := s.srv.Pending()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("ftptest: %d upload(s), %d bytes, still not on the board after %v", n, bytes, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func testLogger(tb testing.TB, opts Options) *slog.Logger {
	if opts.Driver.Logger != nil {
		return opts.Driver.Logger
	}
	return slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startLink connects to b the way ftpbridge does, through a Link that
// follows it across a cut and a replug of the rig's line, runs the link,
// and stops it at cleanup, after the server (cleanups run last first).
func startLink(tb testing.TB, b *boardtest.Board, opts Options, log *slog.Logger) *boardfs.Link {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	link, err := boardfs.Connect(ctx, boardfs.LinkOptions{
		Dial:    func(context.Context) (boardfs.Port, error) { return b.Open() },
		Present: func() bool { _, err := os.Stat(b.Device); return err == nil },
		// The board's clock is set, as ftpbridge sets it.
		FS: boardfs.Options{Logger: log.With("layer", "boardfs"), BusyWait: opts.BusyWait, Clock: time.Now, Cache: opts.Cache},
	})
	if err != nil {
		tb.Fatalf("ftptest: boardfs on %s %s: %v", opts.Profile, b.Device, err)
	}
	lctx, stopLink := context.WithCancel(context.Background())
	linkDone := make(chan struct{})
	go func() { link.Run(lctx); close(linkDone) }()
	tb.Cleanup(func() { stopLink(); <-linkDone })
	return link
}

// serve starts the server newServer makes on 127.0.0.1 and registers its
// shutdown with tb.Cleanup. It returns the address, the spool directory,
// and a stop that returns what Serve returned the first time and nil
// after; hurry leaves pending uploads in the spool, as a second Ctrl-C.
func serve(tb testing.TB, opts Options, log *slog.Logger, newServer func(ftpdriver.Options) *ftpdriver.Server) (string, string, func(hurry bool) error) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("ftptest: listen: %v", err)
	}
	dopts := opts.Driver
	dopts.Logger = log
	dopts.Listener = ln
	if dopts.SpoolDir == "" {
		dopts.SpoolDir = tb.TempDir()
	}
	srv := newServer(dopts)
	if err := srv.Listen(); err != nil {
		_ = ln.Close()
		tb.Fatalf("ftptest: %v", err)
	}
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx) }()
	var once sync.Once
	stopOnce := func(hurry bool) error {
		var err error
		once.Do(func() {
			stop()
			err = <-done
			dctx, cancel := context.WithCancel(context.Background())
			if hurry {
				cancel()
			}
			srv.Drain(dctx)
			cancel()
		})
		return err
	}
	tb.Cleanup(func() {
		if err := stopOnce(false); err != nil {
			tb.Errorf("ftptest: serve: %v", err)
		}
	})
	return srv.Addr(), dopts.SpoolDir, stopOnce
}

// Stop shuts the server down as Ctrl-C does: it waits for the uploads
// still being written to the board, and returns what Serve returned.
// Later calls return nil.
func (s *Server) Stop() error { return s.stop(false) }

// StopHurried shuts the server down as Ctrl-C pressed twice does: the
// uploads still being written stay in the spool, for the next server on
// the same spool and board. Later calls return nil.
func (s *Server) StopHurried() error { return s.stop(true) }

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

// MultiServer is a running FTP server over several emulated boards, served
// as ftpbridge --all serves them: board i is the folder "/b<i>".
type MultiServer struct {
	Addr   string             // host:port to dial
	Boards []*boardtest.Board // Boards[i].Root is board i's filesystem on the host
	Links  []*boardfs.Link    // the boards as the server reaches them
	Spool  string             // the server's spool directory
	opts   Options
	stop   func(hurry bool) error
}

// StartMulti starts one board per entry of boards (each its own line:
// Root, CutAfter, ReplugAfter...), all of opts.Profile, and an FTP server
// over them all on 127.0.0.1, and registers their shutdown with
// tb.Cleanup; opts.Board is not used. It fails the test on any setup error.
func StartMulti(tb testing.TB, opts Options, boards ...boardtest.Options) *MultiServer {
	tb.Helper()
	if opts.Profile == "" {
		opts.Profile = boardtest.ESP32
	}
	log := testLogger(tb, opts)
	s := &MultiServer{opts: opts}
	set := fixedBoards{}
	for i, line := range boards {
		b := boardtest.Start(tb, opts.Profile, line)
		name := "b" + strconv.Itoa(i)
		link := startLink(tb, b, opts, log.With("board", name))
		s.Boards = append(s.Boards, b)
		s.Links = append(s.Links, link)
		set[name] = link
	}
	s.Addr, s.Spool, s.stop = serve(tb, opts, log, func(dopts ftpdriver.Options) *ftpdriver.Server {
		return ftpdriver.NewMulti(set, dopts)
	})
	return s
}

// Stop shuts the server down as Ctrl-C does, and returns what Serve
// returned. Later calls return nil.
func (s *MultiServer) Stop() error { return s.stop(false) }

// Dial connects a client and logs in as Server.Dial does.
func (s *MultiServer) Dial(tb testing.TB, opts ...ftp.DialOption) *ftp.ServerConn {
	tb.Helper()
	return (&Server{Addr: s.Addr, opts: s.opts}).Dial(tb, opts...)
}

// fixedBoards is a set of boards that never changes: a board that is
// unplugged keeps its folder, which answers "board not connected".
type fixedBoards map[string]*boardfs.Link

func (f fixedBoards) Names() []string {
	names := make([]string, 0, len(f))
	for n := range f {
		names = append(names, n)
	}
	return names
}

func (f fixedBoards) Board(name string) (ftpdriver.Board, bool) {
	l, ok := f[name]
	return l, ok
}
