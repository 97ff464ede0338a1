package ftpdriver_test

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/ftpdriver"
	"github.com/ftpbridge/ftpbridge/ftpdriver/ftptest"
)

// endsWithin keeps sending on conn (send, every 200 to 400 ms) until the server
// closes the connection, and returns the replies it read; it fails the
// test if the connection is still open after limit.
func endsWithin(t *testing.T, conn net.Conn, limit time.Duration, send func(i int) []byte) string {
	t.Helper()
	var got strings.Builder
	buf := make([]byte, 512)
	deadline := time.Now().Add(limit)
	for i := 0; ; i++ {
		if time.Now().After(deadline) {
			last := got.String()
			last = last[max(0, len(last)-200):]
			t.Fatalf("the connection was still open after %v; the last it read: %q", limit, last)
		}
		if _, err := conn.Write(send(i)); err != nil {
			return got.String() // closed, and the reply read before
		}
		_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := conn.Read(buf)
		got.Write(buf[:n])
		if err == io.EOF || (err != nil && closedByPeer(err)) {
			return got.String()
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// A client that never logs in keeps no place, however busy it looks:
// NOOPs before login are answered until the login time limit, then the
// connection is closed with a 421 (ProFTPD's TimeoutLogin does the same).
func TestNoopsBeforeLoginKeepNoPlace(t *testing.T) {
	t.Parallel()
	s := ftptest.StartUnplugged(t, ftptest.Options{Driver: ftpdriver.Options{
		User: "me", Password: "pw", LoginTimeout: 2 * time.Second, MaxSessions: 1,
	}})
	c, code, msg := dialFrom(t, s.Addr, "127.0.0.1")
	if code != 220 {
		t.Fatalf("greeting = %d %s", code, msg)
	}
	got := endsWithin(t, c.conn, 20*time.Second, func(int) []byte { return []byte("NOOP\r\n") })
	if !strings.Contains(got, "421 ") || !strings.Contains(got, "login time limit") {
		t.Errorf("a client NOOPing without logging in got %q, want a 421 about the login time limit", got)
	}
	// Its place is free again.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		c, code, msg := dialFrom(t, s.Addr, "127.0.0.1")
		c.tp.Close()
		if code == 220 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the login time limit, a new connection still gets %d %s", code, msg)
		}
	}
}

// A command line sent a byte at a time must still end within the idle
// limit: ftpserverlib's ReadLine hands over half a line when its deadline
// passes and starts a fresh one, so the slow line lived for ever.
func TestHalfSentLineEndsAtIdleLimit(t *testing.T) {
	t.Parallel()
	s := ftptest.StartUnplugged(t, ftptest.Options{Driver: ftpdriver.Options{IdleTimeout: 2 * time.Second}})
	c := rawDial(t, s.Addr, "anonymous", "x")
	line := "NOOP" + strings.Repeat(" ", 200)
	got := endsWithin(t, c.conn, 20*time.Second, func(i int) []byte {
		return []byte{line[i%len(line)]}
	})
	if !strings.Contains(got, "421 ") {
		t.Errorf("a client sending a line a byte at a time got %q, want a 421", got)
	}
}

// The idle limit holds on data connections too, as vsftpd's
// data_connection_timeout: a listing the client never reads fails its
// transfer once no byte has moved for IdleTimeout, and the session goes
// on. The listing is "/" of a server over many (unplugged) boards: large
// enough to fill the sockets' buffers, and no board is needed.
func TestUnreadDataConnectionFailsAtIdleLimit(t *testing.T) {
	names := make([]string, 60000)
	for i := range names {
		names[i] = fmt.Sprintf("board-with-a-long-name-to-fill-the-listing-%06d", i)
	}
	s := ftptest.StartUnpluggedMulti(t, ftptest.Options{Driver: ftpdriver.Options{IdleTimeout: 2 * time.Second}}, names...)
	c := rawDial(t, s.Addr, "anonymous", "x")
	data := c.epsv()
	defer data.Close()
	_ = data.SetReadBuffer(4096)
	if code, msg := c.cmd("LIST /"); code != 150 {
		t.Fatalf("LIST / = %d %s", code, msg)
	}
	start := time.Now()
	code, msg := c.read() // the data connection is never read
	if code < 400 {
		t.Fatalf("a listing never read ended %d %s after %v, want a failure", code, msg, time.Since(start))
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("a listing never read failed after %v, want about the idle limit (2s)", took)
	}
	c.expect(200, "NOOP")
}

// A STOR that stalls after its first bytes fails once no byte has moved
// for IdleTimeout: the board gets no file (neither the target nor a
// temporary one), and the session goes on.
func TestStalledUploadFailsAtIdleLimit(t *testing.T) {
	s := ftptest.Start(t, ftptest.Options{Driver: ftpdriver.Options{IdleTimeout: 2 * time.Second}})
	c := rawDial(t, s.Addr, "anonymous", "x")
	data := c.epsv()
	defer data.Close()
	if code, msg := c.cmd("STOR /stalled.bin"); code != 150 {
		t.Fatalf("STOR = %d %s", code, msg)
	}
	if _, err := data.Write(randomBytes(1000, 1)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, msg := c.read() // and nothing more is sent
	if code < 400 {
		t.Fatalf("a stalled upload ended %d %s, want a failure", code, msg)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("a stalled upload failed after %v, want about the idle limit (2s)", took)
	}
	c.expect(200, "NOOP")
	if names := hostNames(t, s.Board.Root, "/"); len(names) != 0 {
		t.Errorf("the board holds %v after a stalled upload, want nothing", names)
	}
}

// An active-mode (EPRT) upload whose data connection the client opens
// and then never writes to ends at the idle limit: the library dials
// active connections itself, with no deadline the driver can set, so the
// session is closed, and the board gets no file.
func TestStalledActiveUploadEndsAtIdleLimit(t *testing.T) {
	s := ftptest.Start(t, ftptest.Options{Driver: ftpdriver.Options{IdleTimeout: 2 * time.Second}})
	c := rawDial(t, s.Addr, "anonymous", "x")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if conn, err := ln.Accept(); err == nil {
			accepted <- conn
		}
	}()
	c.expect(200, "EPRT |1|127.0.0.1|%d|", ln.Addr().(*net.TCPAddr).Port)
	if code, msg := c.cmd("STOR /stalled.bin"); code != 150 {
		t.Fatalf("STOR = %d %s", code, msg)
	}
	select {
	case data := <-accepted:
		defer data.Close() // open, and silent
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not open the active data connection")
	}
	start := time.Now()
	_ = c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	rest, err := io.ReadAll(c.conn)
	if err != nil {
		t.Fatalf("a stalled active upload kept its session %v (read %q): %v", time.Since(start), rest, err)
	}
	if names := hostNames(t, s.Board.Root, "/"); len(names) != 0 {
		t.Errorf("the board holds %v after a stalled upload, want nothing", names)
	}
}
