package ftpdriver

import "net"

// Urgent data on the control connection. RFC 959 has a client interrupt a
// transfer by sending Telnet IP and Synch, the Synch as TCP urgent data,
// then ABOR; Python's ftplib sends the whole "ABOR\r\n" with MSG_OOB. A
// socket without SO_OOBINLINE hands its urgent byte only to a recv with
// MSG_OOB, which Go never makes: Linux takes it out of the stream, so the
// server read "ABOR\r" and never its "\n". The abort then went unanswered
// until the client gave up (ftplib at its socket timeout), and the client
// then closing the data connection made the cut-off upload look complete:
// on an emulated ESP32, ftplib's abort() after 204,800 of 614,848 bytes
// left a 204,800-byte file under the target's name. With SO_OOBINLINE the
// urgent byte stays in line and the command arrives whole; Telnet bytes
// before it (IAC IP, IAC DM) are passed to ftpserverlib, which finds ABOR,
// STAT and QUIT at the end of such a line.

// urgentListener sets SO_OOBINLINE on every connection it accepts
// (keepUrgentInline), before any byte is read from it.
type urgentListener struct {
	net.Listener
	s *Server
}

func (l urgentListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		// Unwrapped: ftpserverlib recognizes its closed listener by the
		// *net.OpError's text.
		return nil, err
	}
	if err := keepUrgentInline(conn); err != nil {
		// The session still works; only an ABOR sent as urgent data
		// goes unanswered, as before.
		l.s.log.Warn("control connection: urgent data will not be read in line", "remote", conn.RemoteAddr(), "err", err)
	}
	return conn, nil
}
