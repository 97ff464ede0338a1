package ftpdriver_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/ftpdriver"
	"github.com/ftpbridge/ftpbridge/ftpdriver/ftptest"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

// readLine reads one reply line from a raw connection.
func readLine(t *testing.T, conn net.Conn) string {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("reading a reply: %v (got %q)", err, line)
	}
	return line
}

// closedByPeer reports whether a read ended because the server closed the
// connection, not because the test's own deadline passed.
func closedByPeer(err error) bool {
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// One connection beyond MaxSessions is answered 421 and closed; when a
// session ends, its place is free again. No board takes part.
func TestSessionLimit(t *testing.T) {
	t.Parallel()
	s := ftptest.StartUnplugged(t, ftptest.Options{Driver: ftpdriver.Options{MaxSessions: 2}})
	a := s.Dial(t)
	s.Dial(t)

	extra, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if line := readLine(t, extra); !strings.HasPrefix(line, "421 ") {
		t.Fatalf("third connection with MaxSessions 2 got %q, want 421", line)
	}
	if _, err := extra.Read(make([]byte, 1)); !closedByPeer(err) {
		t.Errorf("the refused connection stayed open: %v", err)
	}

	if err := a.Quit(); err != nil {
		t.Fatal(err)
	}
	// The server learns of the QUIT when the library closes the conn.
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.Dial("tcp", s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		line := readLine(t, c)
		c.Close()
		if strings.HasPrefix(line, "220") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a QUIT a new connection still gets %q", line)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A command line longer than the library's 4 KB buffer ends that session;
// the server and the other sessions go on. No board takes part.
func TestOverlongCommandLine(t *testing.T) {
	t.Parallel()
	s := ftptest.StartUnplugged(t, ftptest.Options{})
	other := s.Dial(t)
	r := rawDial(t, s.Addr, "anonymous", "x")
	if _, err := r.conn.Write([]byte("CWD /" + strings.Repeat("a", 10_000) + "\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = r.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := r.tp.ReadLine(); err == nil {
		t.Log("the server answered the overlong line") // either way, the session must end
	}
	if _, err := r.tp.ReadLine(); !closedByPeer(err) {
		t.Errorf("the session with an overlong command line stayed open: %v", err)
	}
	if _, err := other.CurrentDir(); err != nil {
		t.Errorf("another session after the overlong line: %v", err)
	}
	if _, err := s.Dial(t).CurrentDir(); err != nil {
		t.Errorf("a new session after the overlong line: %v", err)
	}
}

// A client that sends nothing for IdleTimeout is disconnected. No board
// takes part.
func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	s := ftptest.StartUnplugged(t, ftptest.Options{Driver: ftpdriver.Options{IdleTimeout: time.Second}})
	r := rawDial(t, s.Addr, "anonymous", "x")
	_ = r.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, _ := r.tp.ReadLine()
	if !strings.HasPrefix(line, "421") {
		t.Errorf("an idle client got %q, want a 421 before the close", line)
	}
	if _, err := r.tp.ReadLine(); !closedByPeer(err) {
		t.Errorf("the idle session stayed open: %v", err)
	}
}

// A client waiting for a listing the board takes longer than IdleTimeout
// to send is not idle: it gets the listing, as vsftpd's idle_session_timeout
// does not count a command in progress. The library counts its idle time
// from the command, and stops only once the data connection is open; the
// board's listing comes before that.
func TestSlowListingIsNotIdle(t *testing.T) {
	t.Parallel()
	const idle = 2 * time.Second
	s := ftptest.Start(t, ftptest.Options{
		Board:  boardtest.Options{Baud: 115200},
		Driver: ftpdriver.Options{IdleTimeout: idle},
	})
	dir := filepath.Join(s.Board.Root, "many")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const files = 1000
	for i := range files {
		name := fmt.Sprintf("file-%05d-abcdefghijklmnopqrstuvwxyz0123.txt", i)
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := s.Dial(t)
	start := time.Now()
	names, err := c.NameList("/many")
	took := time.Since(start)
	if err != nil {
		t.Fatalf("NLST of %d files (%v): %v", files, took, err)
	}
	if len(names) != files {
		t.Errorf("NLST gave %d names, want %d", len(names), files)
	}
	if took < idle {
		t.Fatalf("the listing took %v, under the idle limit %v: this test tests nothing", took, idle)
	}
	if err := c.NoOp(); err != nil {
		t.Errorf("NOOP after the listing: %v", err)
	}
}
