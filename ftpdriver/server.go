// Package ftpdriver serves a board's filesystem (package boardfs) to FTP
// clients through github.com/fclairamb/ftpserverlib: it is the library's
// MainDriver and, per session, its ClientDriver. It knows FTP and the
// library's habits (which handler stats what, which reply codes are fixed);
// the board and its Python stay below, in boardfs.
//
// Each trap of ftpserverlib v0.32 this package works around is explained
// where the workaround is made.
package ftpdriver

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"

	"github.com/ftpbridge/ftpbridge/boardfs"
	"github.com/ftpbridge/ftpbridge/spool"
)

// Options configure a Server. The zero value (apart from the listen
// address) serves anonymously, read-write, without TLS.
type Options struct {
	// Logger gets one line per transfer and every failure; nil discards.
	Logger *slog.Logger
	// ListenAddr is host:port to listen on; ignored when Listener is set.
	ListenAddr string
	// Listener, when set, is used instead of listening on ListenAddr.
	Listener net.Listener
	// User and Password are the one account. Both empty: anyone may log in
	// with any name and password.
	User, Password string
	// ReadOnly refuses every change with 550 "read-only".
	ReadOnly bool
	// TLS enables explicit FTPS (AUTH TLS); nil: plain FTP only.
	TLS *tls.Config
	// PassivePorts limits the ports offered by PASV and EPSV; the zero
	// value lets the system choose.
	PassivePorts PortRange
	// OpTimeout bounds one metadata operation (LIST, SIZE, MKD, ...),
	// waiting for a busy board included. Default 12 s: under kio's 15 s and
	// FileZilla's 20 s read timeouts, so a client gets an answer before it
	// gives up on the connection.
	OpTimeout time.Duration
	// LongOpTimeout bounds operations that read a whole file on the board:
	// HASH, and the check and rename that end an upload. Default 60 s.
	LongOpTimeout time.Duration
	// CacheTTL is how long listings and stats are reused. Default 2 s;
	// negative disables the cache.
	CacheTTL time.Duration
	// IdleTimeout disconnects a client that sends nothing for this long.
	// Default 15 minutes.
	IdleTimeout time.Duration
	// MaxSessions is how many control connections are served at once; one
	// more is answered 421 and closed. Default 32: rclone alone opens 12
	// (4 transfers, 8 checkers), and gvfs opens another whenever all of its
	// connections are busy.
	MaxSessions int
	// ShutdownWait is how long Serve waits, once its context is done, for
	// board operations in flight to end. Default 5 s.
	ShutdownWait time.Duration
	// LoginTimeout is how long a client may take from connecting to
	// logging in; then it is answered 421 and disconnected, whatever it
	// sent meanwhile (NOOPs keep no place). Default 1 minute: ample for a
	// person typing at ftp's prompts, short enough that clients which
	// never log in cannot hold MaxSessions places for long.
	LoginTimeout time.Duration
	// LoginFailDelay is how long each failed login waits before its reply
	// (vsftpd's delay_failed_login). Default 1 s.
	LoginFailDelay time.Duration
	// MaxLoginFails failed logins in a row from one address refuse that
	// address for LoginLockout (vsftpd's max_login_fails, 3). Default 3.
	MaxLoginFails int
	// LoginLockout is how long an address is refused after MaxLoginFails
	// failures; it doubles with each further round, up to an hour. Other
	// addresses are not affected. Default 1 minute.
	LoginLockout time.Duration
	// SpoolDir is where uploads wait on the host until the board has
	// them (package spool); what a stop or a crash leaves there is written
	// the next time the same board is served. Empty: a new temporary
	// directory, which Drain removes when nothing is left in it.
	SpoolDir string
	// UploadWait is how long the end of an upload waits for the board to
	// have it before answering success and writing the rest in the
	// background. Default 3 s: small uploads answer once the board has
	// them, big ones long before FileZilla's 20 s and kio's 15 s of
	// silence make the client give up.
	UploadWait time.Duration
	// BoardName tells a board without machine.unique_id apart for its
	// pending uploads: the port it is on. Over several boards, each
	// board's folder name is used.
	BoardName string
}

// PortRange is an inclusive range of TCP ports; the zero value means any.
type PortRange struct{ Start, End int }

// IsZero reports whether r leaves the choice to the system.
func (r PortRange) IsZero() bool { return r.Start == 0 && r.End == 0 }

// Board is where the server finds the board for each operation. A
// *boardfs.Link follows the board across unplugs: FS then fails with
// boardfs.ErrNotConnected until it is back.
type Board interface {
	FS() (*boardfs.FS, error)
	// Info says what the board is, as last seen.
	Info() boardfs.Info
}

// Server serves one board (New), or a changing set of boards as folders
// (NewMulti), to any number of FTP sessions. Sessions run their commands
// concurrently; boardfs serializes each board.
type Server struct {
	single *mount // New's board; nil over several
	boards Boards // NewMulti's boards; nil over one
	opts   Options
	log    *slog.Logger
	ftp    *ftpserver.FtpServer
	start  time.Time

	mu       sync.Mutex
	mounts   map[string]*mount // NewMulti's boards as reached so far, by name
	stopping bool
	sessions map[uint32]*session
	conns    map[*controlConn]struct{}
	ops      sync.WaitGroup // board operations and open transfers

	logins    *loginGuard
	spool     *spool.Store // uploads on their way to the boards; opened by Listen
	spoolTemp bool         // the spool is Listen's temporary directory
}

// session is what the server keeps of one FTP connection.
type session struct {
	ctx     context.Context // cancelled on disconnect and on shutdown
	cancel  context.CancelFunc
	log     *slog.Logger
	cc      ftpserver.ClientContext
	loginBy time.Time // LoginTimeout after the connection was accepted

	loggedIn atomic.Bool

	mu      sync.Mutex
	filter  listFilter // for the next listing, from LIST or NLST's pattern
	command string     // the name of the command last passed to the library

	// lost is closed once reading the control connection failed (the
	// client closed it, or died): nobody waits for a reply any more.
	lost     chan struct{}
	lostOnce sync.Once
}

// controlLost notes that the control connection can no longer be read.
func (ss *session) controlLost() {
	ss.lostOnce.Do(func() { close(ss.lost) })
}

// setCommand notes the command the library is about to run.
func (ss *session) setCommand(name string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.command = name
}

// opName names an operation on name (a clean absolute path) for the board's
// other user, its console: "RETR /main.py", after the FTP command that
// asked for it, else after the driver's operation.
func (ss *session) opName(op, name string) string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.command != "" {
		op = ss.command
	}
	return op + " " + name
}

// New returns a server for board. Call Listen, then Serve.
func New(board Board, opts Options) *Server {
	s := newServer(opts)
	s.single = &mount{board: board, cache: newMetaCache(s.opts.CacheTTL)}
	return s
}

// newServer fills in opts' defaults; the caller says which boards it serves.
func newServer(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.OpTimeout <= 0 {
		opts.OpTimeout = 12 * time.Second
	}
	if opts.LongOpTimeout <= 0 {
		opts.LongOpTimeout = 60 * time.Second
	}
	if opts.CacheTTL == 0 {
		opts.CacheTTL = 2 * time.Second
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 15 * time.Minute
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = 32
	}
	if opts.ShutdownWait <= 0 {
		opts.ShutdownWait = 5 * time.Second
	}
	if opts.LoginTimeout <= 0 {
		opts.LoginTimeout = time.Minute
	}
	if opts.LoginFailDelay <= 0 {
		opts.LoginFailDelay = time.Second
	}
	if opts.MaxLoginFails <= 0 {
		opts.MaxLoginFails = 3
	}
	if opts.LoginLockout <= 0 {
		opts.LoginLockout = time.Minute
	}
	if opts.UploadWait <= 0 {
		opts.UploadWait = 3 * time.Second
	}
	s := &Server{
		opts:     opts,
		log:      opts.Logger,
		start:    time.Now(),
		mounts:   map[string]*mount{},
		sessions: map[uint32]*session{},
		conns:    map[*controlConn]struct{}{},
		logins:   newLoginGuard(opts),
	}
	s.ftp = ftpserver.NewFtpServer(mainDriver{s})
	// The library logs "Listening..." and each connection at Info; the
	// bridge's own lines say that better. Its warnings and errors stay.
	s.ftp.Logger = slog.New(quietHandler{opts.Logger.Handler()})
	return s
}

// Listen opens the control listener. It is separate from Serve so the
// caller can report the address (port 0 picks one) before serving.
func (s *Server) Listen() error {
	if s.opts.Listener == nil {
		var lc net.ListenConfig
		ln, err := lc.Listen(context.Background(), "tcp", s.opts.ListenAddr)
		if err != nil {
			return fmt.Errorf("ftpdriver: listen: %w", err)
		}
		s.opts.Listener = ln
	}
	s.opts.Listener = trackingListener{Listener: urgentListener{Listener: s.opts.Listener, s: s}, s: s}
	if err := s.openSpool(); err != nil {
		return err
	}
	if err := s.ftp.Listen(); err != nil {
		return fmt.Errorf("ftpdriver: %w", err)
	}
	return nil
}

// Addr returns the address the server listens on, once Listen succeeded.
func (s *Server) Addr() string {
	if s.opts.Listener == nil {
		return ""
	}
	return s.opts.Listener.Addr().String()
}

// Serve answers clients until ctx is done, then stops: it closes the
// listeners, cancels every session's board operations, closes the client
// connections (a transfer in progress ends with an error reply or a broken
// connection), and waits up to ShutdownWait for board operations to end,
// so the caller can then close the board's connection. It returns nil
// after a shutdown asked for by ctx. Uploads still being written to a
// board go on: call Drain before closing the board's connection.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.ftp.Serve() }()
	go s.adopt(ctx)
	select {
	case <-ctx.Done():
		s.shutdown()
		<-errc
		return nil
	case err := <-errc:
		s.shutdown()
		if err != nil {
			return fmt.Errorf("ftpdriver: serve: %w", err)
		}
		return nil
	}
}

func (s *Server) shutdown() {
	// ftpserverlib's Stop closes its listeners only.
	if err := s.ftp.Stop(); err != nil && !errors.Is(err, ftpserver.ErrNotListening) {
		s.log.Warn("closing the FTP listener", "err", err)
	}
	s.mu.Lock()
	s.stopping = true
	sessions := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	conns := make([]*controlConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()

	// Cancel first, so a driver call waiting on the board returns.
	for _, ss := range sessions {
		ss.cancel()
	}
	// Then close the control connections underneath the library: each
	// session's command loop sees its connection fail and ends the session
	// itself, data connection included (a transfer then ends with an error).
	// ClientContext.Close would do the same from this goroutine, but in
	// ftpserverlib v0.32.1 it races with a QUIT being handled (both write an
	// unguarded flag); closing a net.Conn from any goroutine is safe.
	for _, c := range conns {
		_ = c.Close()
	}
	s.logins.stop()
	done := make(chan struct{})
	go func() { s.ops.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.opts.ShutdownWait):
		s.log.Warn("board operations still running at shutdown", "waited", s.opts.ShutdownWait)
	}
}

// trackingListener keeps the control connections it accepts, so shutdown
// can close them.
type trackingListener struct {
	net.Listener
	s *Server
}

func (l trackingListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			// Unwrapped: ftpserverlib recognizes its closed listener by the
			// *net.OpError's text.
			return nil, err
		}
		if left := l.s.logins.lockedOut(host(conn.RemoteAddr())); left > 0 {
			// Refused before it takes a session's place; the address's
			// summary counts it.
			_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = fmt.Fprintf(conn, "421 %v\r\n", lockedOutError{left})
			_ = conn.Close()
			continue
		}
		c := newControlConn(conn, l.s)
		l.s.mu.Lock()
		full := len(l.s.conns) >= l.s.opts.MaxSessions
		if !full {
			l.s.conns[c] = struct{}{}
		}
		l.s.mu.Unlock()
		if !full {
			return c, nil
		}
		// ftpserverlib has no session limit, and a driver cannot answer
		// 421 from ClientConnected; the listener can, before the library
		// sees the connection. A client that is not reading must not hold
		// up the accept loop.
		l.s.log.Info("too many sessions: refusing a client", "remote", conn.RemoteAddr(), "max", l.s.opts.MaxSessions)
		_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = fmt.Fprintf(conn, "421 Too many connections (%d), try again later\r\n", l.s.opts.MaxSessions)
		_ = conn.Close()
	}
}

// enter registers a board operation, so shutdown can wait for it; false
// once the server is stopping.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return false
	}
	s.ops.Add(1)
	return true
}

func (s *Server) leave() { s.ops.Done() }

// mainDriver is ftpserverlib's MainDriver; a separate type keeps its
// methods out of Server's API.
type mainDriver struct{ s *Server }

var _ ftpserver.MainDriver = mainDriver{}

// GetSettings pins the settings the traps in ftp-facts.md call for.
func (m mainDriver) GetSettings() (*ftpserver.Settings, error) {
	s := m.s
	settings := &ftpserver.Settings{
		Listener: s.opts.Listener,
		Banner:   "ftpbridge",
		// The zero type is ASCII, under which SIZE answers 550 and REST
		// 501; FileZilla's "Auto" and ftplib use TYPE A anyway, and board
		// files must travel byte for byte.
		DefaultTransferType:    ftpserver.TransferTypeBinary,
		DisableASCIIConversion: true,
		// SITE RMDIR calls RemoveAll, SITE CHMOD/CHOWN mean nothing here.
		DisableSite: true,
		// LIST and NLST options are read before the library sees them
		// (listArgs); it would stat the whole argument otherwise.
		DisableLISTArgs: true,
		// The board cannot set a file's mtime, and rclone fails uploads
		// when MFMT is advertised but fails.
		DisableMFMT: true,
		// HASH is computed on the board where it has hashlib.sha256;
		// without the extension the library would read the whole file over
		// the serial line.
		EnableHASH:  s.hashing(),
		IdleTimeout: int(s.opts.IdleTimeout / time.Second),
	}
	if !s.opts.PassivePorts.IsZero() {
		settings.PassiveTransferPortRange = ftpserver.PortRange{Start: s.opts.PassivePorts.Start, End: s.opts.PassivePorts.End}
	}
	return settings, nil
}

// hashing reports whether HASH is offered: where the board has
// hashlib.sha256. Over several boards, the ones plugged in later are not
// known yet: a board without sha256 answers "not supported".
func (s *Server) hashing() bool {
	return s.boards != nil || s.single.board.Info().SHA256
}

// ClientConnected greets a client. It registers the session before
// anything else can happen on it, so shutdown finds it, and gives it to
// the control connection it came on, which reads its commands first.
func (m mainDriver) ClientConnected(cc ftpserver.ClientContext) (string, error) {
	s := m.s
	log := s.log.With("session", cc.ID())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return "ftpbridge is shutting down", ErrStopping
	}
	ctx, cancel := context.WithCancel(context.Background())
	ss := &session{ctx: ctx, cancel: cancel, log: log, cc: cc, loginBy: time.Now().Add(s.opts.LoginTimeout), lost: make(chan struct{})}
	for c := range s.conns {
		// The library hands the driver no net.Conn; the remote address
		// (host and port) names one connection.
		if c.RemoteAddr().String() == cc.RemoteAddr().String() {
			ss.loginBy = c.accepted.Add(s.opts.LoginTimeout)
			c.attach(ss)
		}
	}
	s.sessions[cc.ID()] = ss
	log.Debug("client connected", "remote", cc.RemoteAddr())
	if s.boards != nil {
		return "ftpbridge: every board, one folder each", nil
	}
	return "ftpbridge: " + s.single.board.Info().String(), nil
}

// ClientDisconnected cancels what the session still has running on the
// board. A transfer's goroutine may outlive the command loop; its own
// context derives from the session's and ends with it.
func (m mainDriver) ClientDisconnected(cc ftpserver.ClientContext) {
	s := m.s
	s.mu.Lock()
	ss := s.sessions[cc.ID()]
	delete(s.sessions, cc.ID())
	s.mu.Unlock()
	if ss != nil {
		ss.cancel()
		ss.log.Debug("client disconnected")
	}
}

// AuthUser checks the one account, or lets anyone in when none is set.
// The password is never logged. A failure costs its address time
// (loginGuard); ftpserverlib then answers 530 and closes the connection.
func (m mainDriver) AuthUser(cc ftpserver.ClientContext, user, pass string) (ftpserver.ClientDriver, error) {
	s := m.s
	s.mu.Lock()
	ss := s.sessions[cc.ID()]
	s.mu.Unlock()
	if ss == nil {
		return nil, ErrStopping
	}
	if s.opts.User != "" || s.opts.Password != "" {
		ctx, cancel := context.WithDeadlineCause(ss.ctx, ss.loginBy, errLoginTimeout)
		defer cancel()
		err := s.logins.attempt(ctx, host(cc.RemoteAddr()), user, func() bool {
			userOK := subtle.ConstantTimeCompare([]byte(user), []byte(s.opts.User)) == 1
			passOK := subtle.ConstantTimeCompare([]byte(pass), []byte(s.opts.Password)) == 1
			return userOK && passOK
		})
		if err != nil {
			if ctx.Err() != nil {
				err = context.Cause(ctx)
			}
			ss.log.Debug("login refused", "user", user, "remote", cc.RemoteAddr(), "err", err)
			return nil, err
		}
	}
	ss.loggedIn.Store(true)
	ss.log.Debug("login", "user", user, "remote", cc.RemoteAddr())
	return &clientDriver{srv: s, ss: ss, ctx: ss.ctx, cc: cc, log: ss.log, readOnly: s.opts.ReadOnly}, nil
}

// GetTLSConfig returns the FTPS configuration for data connections (and
// FEAT's AUTH TLS line). Without one it must fail: FEAT then leaves out
// AUTH TLS. AUTH itself never reaches the library: the control connection
// answers it (authHook).
func (m mainDriver) GetTLSConfig() (*tls.Config, error) {
	if m.s.opts.TLS == nil {
		return nil, errors.New("TLS is not configured (--tls-cert, --tls-key)")
	}
	return m.s.opts.TLS, nil
}

// quietHandler lowers ftpserverlib's Info records to Debug, and its
// warnings about closing connections that were already closed (the
// library closes a TLS client's connection twice after QUIT).
type quietHandler struct{ slog.Handler }

func (h quietHandler) Enabled(ctx context.Context, l slog.Level) bool {
	if l == slog.LevelInfo {
		l = slog.LevelDebug
	}
	return h.Handler.Enabled(ctx, l)
}

func (h quietHandler) Handle(ctx context.Context, r slog.Record) error {
	switch {
	case r.Level == slog.LevelInfo:
		r.Level = slog.LevelDebug
	case r.Level == slog.LevelWarn && alreadyClosed(r):
		r.Level = slog.LevelDebug
	}
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func alreadyClosed(r slog.Record) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" && strings.Contains(a.Value.String(), "use of closed network connection") {
			found = true
		}
		return !found
	})
	return found
}

func (h quietHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return quietHandler{h.Handler.WithAttrs(attrs)}
}

func (h quietHandler) WithGroup(name string) slog.Handler {
	return quietHandler{h.Handler.WithGroup(name)}
}
