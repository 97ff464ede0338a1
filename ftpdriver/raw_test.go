package ftpdriver_test

import (
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawClient speaks FTP line by line, for what github.com/jlaffaye/ftp
// does not send (LIST -la, HASH, AVBL, SITE, ABOR) or does not let fail
// the way a test needs (a data connection reset mid-upload).
type rawClient struct {
	t    testing.TB
	conn net.Conn
	tp   *textproto.Conn
}

func rawDial(t testing.TB, addr, user, pass string) *rawClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c := &rawClient{t: t, conn: conn, tp: textproto.NewConn(conn)}
	t.Cleanup(func() { _ = c.tp.Close() })
	if code, msg := c.read(); code != 220 {
		t.Fatalf("greeting = %d %s, want 220", code, msg)
	}
	if user != "" {
		c.expect(331, "USER %s", user)
		c.expect(230, "PASS %s", pass)
	}
	return c
}

// cmd sends one command and returns the reply.
func (c *rawClient) cmd(format string, args ...any) (int, string) {
	c.t.Helper()
	if err := c.tp.PrintfLine(format, args...); err != nil {
		c.t.Fatalf("send %q: %v", fmt.Sprintf(format, args...), err)
	}
	return c.read()
}

func (c *rawClient) read() (int, string) {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	code, msg, err := c.tp.ReadResponse(0)
	if err != nil && code == 0 {
		c.t.Fatalf("reading a reply: %v", err)
	}
	return code, msg
}

// expect sends a command and fails the test unless the reply has code.
func (c *rawClient) expect(code int, format string, args ...any) string {
	c.t.Helper()
	got, msg := c.cmd(format, args...)
	if got != code {
		c.t.Fatalf("%s = %d %s, want %d", fmt.Sprintf(format, args...), got, msg, code)
	}
	return msg
}

// epsv opens a passive data connection.
func (c *rawClient) epsv() *net.TCPConn {
	c.t.Helper()
	msg := c.expect(229, "EPSV")
	// "Entering Extended Passive Mode (|||port|)"
	i, j := strings.Index(msg, "(|||"), strings.LastIndex(msg, "|)")
	if i < 0 || j < i {
		c.t.Fatalf("EPSV reply %q", msg)
	}
	port, err := strconv.Atoi(msg[i+4 : j])
	if err != nil {
		c.t.Fatalf("EPSV reply %q: %v", msg, err)
	}
	host, _, _ := net.SplitHostPort(c.conn.RemoteAddr().String())
	d, err := net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(port)), 10*time.Second)
	if err != nil {
		c.t.Fatalf("data connection: %v", err)
	}
	return d.(*net.TCPConn)
}

// transfer runs a command that reads from a data connection (LIST, NLST,
// RETR) and returns the final reply and the data.
func (c *rawClient) transfer(format string, args ...any) (int, string, []byte) {
	c.t.Helper()
	data := c.epsv()
	defer data.Close()
	code, msg := c.cmd(format, args...)
	if code != 150 {
		return code, msg, nil
	}
	_ = data.SetReadDeadline(time.Now().Add(60 * time.Second))
	b, err := io.ReadAll(data)
	if err != nil {
		c.t.Fatalf("%s: reading data: %v", fmt.Sprintf(format, args...), err)
	}
	code, msg = c.read()
	return code, msg, b
}
