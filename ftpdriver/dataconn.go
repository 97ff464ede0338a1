package ftpdriver

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Data connections get the idle limit too: ftpserverlib puts no deadline
// on them, and extends the control connection's idle deadline for as long
// as a transfer is open (its issue #430, fixed so in PR #577). A client
// that never read a download's data connection kept its session (and
// the board's file open) for as long as it liked; a stalled STOR the
// same. Each read and write on a passive data connection must now move
// bytes within IdleTimeout, or the transfer fails and the session goes
// on, as vsftpd's data_connection_timeout stalls it. Time the bridge
// spends waiting for the board between writes does not count.
//
// Active-mode connections (PORT, EPRT) are dialed by the library with no
// hook to wrap them, so no deadline can be set on them: a RETR, STOR or
// APPE whose data connection moves nothing for IdleTimeout (the time
// between the transfer's reads and writes, not counting the board's)
// ends the session instead, as vsftpd's data_connection_timeout does
// (transfer.idle). A listing sent in active mode is not watched: the
// library writes it with no call to the driver in between.

// dataChunk is the most written under one deadline: a client reading at
// dataChunk bytes per IdleTimeout is still moving.
const dataChunk = 4096

// WrapPassiveListener is ftpserverlib's hook on each passive listener
// (MainDriverExtensionPassiveWrapper).
func (m mainDriver) WrapPassiveListener(l net.Listener) (net.Listener, error) {
	return idleListener{Listener: l, idle: m.s.opts.IdleTimeout}, nil
}

type idleListener struct {
	net.Listener
	idle time.Duration
}

func (l idleListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		// Unwrapped: the library tells a closed listener by the error's text.
		return nil, err
	}
	return idleConn{Conn: conn, idle: l.idle}, nil
}

// idleConn is a data connection on which every read and write must move
// bytes within idle.
type idleConn struct {
	net.Conn
	idle time.Duration
}

func (c idleConn) Read(p []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.idle)); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	return n, c.stalled(err)
}

func (c idleConn) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), dataChunk)]
		if err := c.Conn.SetWriteDeadline(time.Now().Add(c.idle)); err != nil {
			return written, err
		}
		n, err := c.Conn.Write(chunk)
		written += n
		if err != nil {
			return written, c.stalled(err)
		}
		p = p[n:]
	}
	return written, nil
}

// stalled says why a read or write timed out: ftpserverlib puts the
// error's text into the transfer's reply.
func (c idleConn) stalled(err error) error {
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		return err
	}
	return &stallError{idle: c.idle, err: err}
}

// stallError is a data connection that moved no byte for too long. It is
// a timeout, as the net.Error it wraps.
type stallError struct {
	idle time.Duration
	err  error
}

func (e *stallError) Error() string {
	return fmt.Sprintf("the data connection moved no byte for %v (--idle-timeout)", e.idle)
}

func (e *stallError) Unwrap() error   { return e.err }
func (e *stallError) Timeout() bool   { return true }
func (e *stallError) Temporary() bool { return true }
