package ftpdriver

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The control connection, between the client and ftpserverlib. The library
// reads commands through controlConn.Read; controlConn reads them first,
// whole lines only, and can answer, rewrite or filter the replies to some
// before the library sees them (commandHooks, in commands.go), where the
// library's own handling is wrong for this server. It also carries TLS
// after AUTH TLS, so it reads plain commands in every session, and it
// enforces what the library's deadlines miss: the time to log in, and the
// time to finish a command line.

// maxLine is the longest command line passed on: ftpserverlib reads lines
// into a 4 KB buffer (its maxCommandSize) and drops the client on a longer
// one.
const maxLine = 4096

// tlsHandshakeTimeout bounds an AUTH TLS handshake.
const tlsHandshakeTimeout = 30 * time.Second

// transferCommands are the commands ftpserverlib runs beside the command
// loop, whose final reply comes later.
var transferCommands = map[string]bool{
	"RETR": true, "STOR": true, "APPE": true, "STOU": true,
	"LIST": true, "NLST": true, "MLSD": true,
}

// uploadCommands are the transfer commands that write to the board.
var uploadCommands = map[string]bool{"STOR": true, "APPE": true, "STOU": true}

// controlConn is an accepted control connection. It forgets itself from the
// server when closed.
type controlConn struct {
	net.Conn // the TCP connection
	s        *Server
	accepted time.Time
	once     sync.Once

	// The read side: only the library's command goroutine reads.
	in      []byte    // received, not yet a whole line
	out     []byte    // whole lines for the library
	lineAt  time.Time // when the partial line in `in` began
	prevCmd string    // the command last passed to the library
	failed  error     // once set, what every Read returns
	buf     []byte

	mu           sync.Mutex
	cond         *sync.Cond // signalled when transfer clears or the conn closes
	sess         *session
	tls          *tls.Conn // after AUTH TLS
	readDeadline time.Time // the library's
	closed       bool
	transfer     bool      // a transfer command passed; its final reply not written yet
	begun        bool      // that transfer's 1xx was written
	upload       bool      // that transfer is STOR, APPE or STOU
	transferEnd  time.Time // when the last transfer's final reply was written
	waitDone     bool      // waitTransfer gave up
	lastCode     int       // of the last final reply written
	filter       func(line string) (string, bool)

	// The write side: the library's replies pass through Write, from its
	// command goroutine and its transfer goroutines.
	wmu     sync.Mutex
	partial []byte // a reply line not ended yet
	multi   string // the code of the multi-line reply being written, "" outside one
}

func newControlConn(conn net.Conn, s *Server) *controlConn {
	c := &controlConn{Conn: conn, s: s, accepted: time.Now()}
	c.cond = sync.NewCond(&c.mu)
	return c
}

// attach gives c its session, before the library reads a command.
func (c *controlConn) attach(ss *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sess = ss
}

func (c *controlConn) session() *session {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess
}

func (c *controlConn) loggedIn() bool {
	ss := c.session()
	return ss != nil && ss.loggedIn.Load()
}

// transport is what bytes go through: the TCP connection, or TLS over it.
func (c *controlConn) transport() io.ReadWriter {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tls != nil {
		return c.tls
	}
	return c.Conn
}

// Read gives the library whole command lines, one per call, each once its
// hook (if any) has let it through.
func (c *controlConn) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if c.failed != nil {
			return 0, c.failed
		}
		line, err := c.readLine()
		if err != nil {
			if ss := c.session(); ss != nil {
				ss.controlLost()
			}
			return 0, err
		}
		if err := c.dispatch(line); err != nil {
			c.failed = err
			return 0, err
		}
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// readLine returns the next command line, without its line end.
func (c *controlConn) readLine() (string, error) {
	if c.buf == nil {
		c.buf = make([]byte, maxLine)
	}
	for {
		if ss := c.session(); ss != nil && !ss.loggedIn.Load() && !time.Now().Before(ss.loginBy) {
			return "", c.fail(421, fmt.Sprintf("login time limit (%v) passed: closing control connection", c.s.opts.LoginTimeout))
		}
		if i := bytes.IndexByte(c.in, '\n'); i >= 0 {
			if i >= maxLine {
				break
			}
			line := string(c.in[:i])
			c.in = c.in[i+1:]
			c.lineAt = time.Now()
			return strings.TrimSuffix(line, "\r"), nil
		}
		if len(c.in) >= maxLine {
			break
		}
		deadline, why := c.deadline()
		_ = c.Conn.SetReadDeadline(deadline)
		n, err := c.transport().Read(c.buf)
		if n > 0 {
			if len(c.in) == 0 {
				c.lineAt = time.Now()
			}
			c.in = append(c.in, c.buf[:n]...)
		}
		if err != nil {
			var ne net.Error
			if why != "" && errors.As(err, &ne) && ne.Timeout() {
				return "", c.fail(421, why+": closing control connection")
			}
			if errors.As(err, &ne) && ne.Timeout() {
				if d, _ := c.deadline(); d.After(time.Now()) {
					continue // a transfer under way, or just ended, moved it
				}
			}
			// The library's own idle deadline included: it answers 421
			// itself, or waits on while a transfer runs.
			return "", err
		}
	}
	return "", c.fail(500, fmt.Sprintf("command line too long (over %d bytes): closing control connection", maxLine))
}

// deadline is when the read under way must end: the library's idle
// deadline, or earlier the login time limit (before login) or the time to
// finish a line begun; why names the earlier limit, "" for the library's.
// ftpserverlib alone never ends a line sent a byte at a time: its
// bufio.Reader.ReadLine hands over the part read when the deadline passes
// as if it were a whole line, and the next read starts a fresh deadline.
//
// A client whose transfer command has no final reply yet is waiting for
// the server, not idle: the library stops counting only once the data
// connection is open, and a board's long listing comes before that. Its
// idle time starts again when the final reply is written.
func (c *controlConn) deadline() (time.Time, string) {
	c.mu.Lock()
	d, why := c.readDeadline, ""
	switch idle := c.s.opts.IdleTimeout; {
	case d.IsZero():
	case c.transfer:
		d = time.Now().Add(idle)
	case c.transferEnd.Add(idle).After(d):
		d = c.transferEnd.Add(idle)
	}
	ss := c.sess
	c.mu.Unlock()
	earlier := func(t time.Time, reason string) {
		if d.IsZero() || t.Before(d) {
			d, why = t, reason
		}
	}
	if ss != nil && !ss.loggedIn.Load() {
		earlier(ss.loginBy, fmt.Sprintf("login time limit (%v) passed", c.s.opts.LoginTimeout))
	}
	if len(c.in) > 0 {
		earlier(c.lineAt.Add(c.s.opts.IdleTimeout), fmt.Sprintf("command line not finished within %v", c.s.opts.IdleTimeout))
	}
	return d, why
}

// dispatch runs line's hook, and passes the line on, rewritten, or answers
// it here.
func (c *controlConn) dispatch(line string) error {
	name, param, _ := strings.Cut(line, " ")
	name = strings.ToUpper(name)
	c.mu.Lock()
	cmd := command{name: name, param: param, line: line, prev: c.prevCmd, prevCode: c.lastCode}
	c.mu.Unlock()
	c.prevCmd = ""

	v := verdict{pass: line}
	if hook := commandHooks[name]; hook != nil && (preLogin[name] || c.loggedIn()) {
		v = hook(c, cmd)
	}
	if v.pass == "" {
		// The library serializes its answers behind a running transfer;
		// so must answers given here.
		c.waitTransfer()
		if err := c.reply(v.code, v.msg); err != nil {
			return err
		}
		if v.after != nil {
			return v.after()
		}
		return nil
	}
	if v.filter != nil {
		c.waitTransfer()
	}
	c.mu.Lock()
	c.filter = v.filter
	if transferCommands[name] {
		c.transfer = true
		c.upload = uploadCommands[name]
	}
	c.mu.Unlock()
	c.prevCmd = name
	if ss := c.session(); ss != nil {
		ss.setCommand(name)
	}
	c.out = append(c.out, v.pass...)
	c.out = append(c.out, '\r', '\n')
	return nil
}

// waitTransfer waits until the transfer the library runs has its final
// reply, the connection closes, or an idle time passes.
func (c *controlConn) waitTransfer() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.transfer {
		return
	}
	c.waitDone = false
	t := time.AfterFunc(c.s.opts.IdleTimeout, func() {
		c.mu.Lock()
		c.waitDone = true
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer t.Stop()
	for c.transfer && !c.closed && !c.waitDone {
		c.cond.Wait()
	}
}

// reply sends a reply of this connection's own.
func (c *controlConn) reply(code int, msg string) error {
	return c.replyWithin(code, msg, c.s.opts.IdleTimeout)
}

func (c *controlConn) replyWithin(code int, msg string, limit time.Duration) error {
	lines := strings.Split(msg, "\n")
	var b strings.Builder
	for i, l := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		fmt.Fprintf(&b, "%d%s%s\r\n", code, sep, l)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	c.lastCode = code
	c.mu.Unlock()
	if err := c.send([]byte(b.String()), limit); err != nil {
		return fmt.Errorf("ftpdriver: sending %d: %w", code, err)
	}
	return nil
}

// send writes b to the client, under wmu, within limit. Each write has a
// deadline of its own: the library's SetDeadline means its idle read
// deadline, and applied to writes it made the final reply of a transfer
// that ended just after that deadline fail (the library's bufio.Writer
// then fails every later reply, its 421 included: the client saw the
// connection close with no reply).
func (c *controlConn) send(b []byte, limit time.Duration) error {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(limit)); err != nil {
		return err
	}
	_, err := c.transport().Write(b)
	return err
}

// fail sends a last reply and ends the session: the library sees the end
// of the connection and closes it.
func (c *controlConn) fail(code int, msg string) error {
	if ss := c.session(); ss != nil {
		ss.log.Debug("closing the control connection", "remote", c.RemoteAddr(), "reply", fmt.Sprintf("%d %s", code, msg))
	}
	// A client that does not read its last reply is not waited for.
	_ = c.replyWithin(code, msg, time.Second)
	c.failed = io.EOF
	return io.EOF
}

// Write passes the library's replies on, whole lines at a time, through
// the filter of the command they answer, and notes each final reply.
func (c *controlConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.partial = append(c.partial, p...)
	var out []byte
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			break
		}
		line := string(c.partial[:i+1])
		c.partial = c.partial[i+1:]
		out = append(out, c.replyLine(line)...)
	}
	if len(c.partial) > 64<<10 {
		// Never from the library; pass it on rather than hold it.
		out = append(out, c.partial...)
		c.partial = c.partial[:0]
	}
	if len(out) > 0 {
		if err := c.send(out, c.s.opts.IdleTimeout); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// libraryJargon is what ftpserverlib puts between its reply and the
// driver's reason, naming its own calls: "553 Could not access file:
// driver error: calling GetHandle: read-only". The reason already says
// why in words; "network error" even blames the client's network for a
// board that went away.
var libraryJargon = strings.NewReplacer(
	"driver error: calling GetHandle: ", "",
	"driver error: calling OpenFile: ", "",
	"network error: error transferring data: ", "",
)

// replyLine filters one line of the library's replies (with its line end)
// and notes it, under wmu.
func (c *controlConn) replyLine(line string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	text := strings.TrimRight(line, "\r\n")
	if c.filter != nil {
		var keep bool
		if text, keep = c.filter(text); !keep {
			return ""
		}
		line = text + "\r\n"
	}
	if plain := libraryJargon.Replace(text); plain != text {
		text = plain
		line = text + "\r\n"
	}
	code, sep := "", byte(0)
	if len(text) >= 4 && isDigits(text[:3]) && (text[3] == ' ' || text[3] == '-') {
		code, sep = text[:3], text[3]
	} else if len(text) == 3 && isDigits(text) {
		code, sep = text, ' '
	}
	final, single := false, c.multi == "" && sep == ' '
	switch {
	case c.multi != "":
		// RFC 959: a multi-line reply ends at a line that starts with its
		// code and a space.
		final = code == c.multi && sep == ' '
	case code != "" && sep == '-':
		c.multi = code
	case code != "":
		final = true
	}
	if !final {
		return line
	}
	c.multi = ""
	n, _ := strconv.Atoi(code)
	if n < 200 {
		c.begun = c.transfer
		return line // 1xx: a transfer starts
	}
	if n == 550 && single && !(c.transfer && c.upload) {
		// ftpserverlib's replies with a reason from the driver are one
		// line each. An upload's stay 550: lftp takes a 4xx to a STOR
		// for a partial upload on the server, asks SIZE, and goes on
		// from there (REST, STOR), and here the size is the old file's,
		// whole (a failed upload never replaces it). On the emulated
		// ESP32, lftp's put of 500,000 bytes over a pending upload of
		// 400,000 answered 450 ended "successfully" with the first
		// 400,000 bytes of the old file and the last 100,000 of the new
		// one; a put of a file no longer than the old one sent nothing
		// more and reported success. Answered 550, lftp says the put
		// failed.
		if t, ok := transientCode(text, c.transfer && c.begun); ok {
			n, text = t, strconv.Itoa(t)+text[3:]
			line = text + "\r\n"
		}
	}
	c.lastCode = n
	c.filter = nil
	// STAT answers 211-213 while a transfer runs; anything else final is
	// the transfer's own end (or ABOR's, which ends it too).
	if c.transfer && (n < 211 || n > 213) {
		c.transfer = false
		c.begun, c.upload = false, false
		c.transferEnd = time.Now()
		c.cond.Broadcast()
	}
	return line
}

func isDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// SetDeadline takes the library's deadline, which it means for its reads:
// it is applied to each read with this connection's own limits. Writes
// have theirs (send). The error tells the library a closed connection.
func (c *controlConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.readDeadline = t
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return net.ErrClosed
	}
	return nil
}

// SetReadDeadline takes the library's read deadline, applied to each read.
func (c *controlConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.readDeadline = t
	c.mu.Unlock()
	return nil
}

// startTLS runs the TLS handshake AUTH TLS announced; from then on every
// byte goes through TLS. An error ends the session: the client's TLS layer
// and the plain connection no longer agree on what was sent.
func (c *controlConn) startTLS() error {
	// Bytes the client sent after AUTH TLS and before the handshake are
	// plain text nobody vouched for (a command injected ahead of TLS):
	// dropped, never run.
	c.in = nil
	tc := tls.Server(c.Conn, c.s.opts.TLS)
	_ = c.Conn.SetDeadline(time.Now().Add(min(tlsHandshakeTimeout, c.s.opts.IdleTimeout)))
	err := tc.Handshake()
	_ = c.Conn.SetDeadline(time.Time{}) // each read and write sets its own
	if err != nil {
		if ss := c.session(); ss != nil {
			ss.log.Info("TLS handshake failed", "remote", c.RemoteAddr(), "err", err)
		}
		return io.EOF
	}
	c.mu.Lock()
	c.tls = tc
	c.mu.Unlock()
	return nil
}

// Close closes the connection (saying goodbye to TLS first) and forgets it
// from the server; it wakes a waitTransfer.
func (c *controlConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
		c.mu.Lock()
		c.closed = true
		c.cond.Broadcast()
		tc := c.tls
		c.mu.Unlock()
		if tc != nil {
			_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			_ = tc.CloseWrite()
		}
	})
	// Unwrapped: the library tells a closed connection by the error's text.
	return c.Conn.Close()
}
