package ftpdriver_test

import (
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/ftpdriver"
	"github.com/ftpbridge/ftpbridge/ftpdriver/ftptest"
)

// dialFrom opens a control connection from a given loopback address
// (127.0.0.2 is another client to the server) and reads the greeting.
func dialFrom(t *testing.T, addr, from string) (*rawClient, int, string) {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, from, err)
	}
	c := &rawClient{t: t, conn: conn, tp: textproto.NewConn(conn)}
	t.Cleanup(func() { _ = c.tp.Close() })
	code, msg := c.read()
	return c, code, msg
}

// login tries a user name and password from an address, and returns the
// reply to PASS (or to the greeting, when the server refuses the
// connection) and how long the server took over PASS.
func login(t *testing.T, addr, from, user, pass string) (int, string, time.Duration) {
	t.Helper()
	c, code, msg := dialFrom(t, addr, from)
	if code != 220 {
		return code, msg, 0
	}
	c.expect(331, "USER %s", user)
	start := time.Now()
	code, msg = c.cmd("PASS %s", pass)
	return code, msg, time.Since(start)
}

// Failed logins cost the guesser time, as vsftpd makes them cost
// (delay_failed_login: each failure is answered late; max_login_fails: a
// few failures and the guesser is out), counted per client address as
// fail2ban counts them: after MaxLoginFails failures, 127.0.0.2 is refused
// even with the right password, while the owner at 127.0.0.1 logs in at
// once. The log gets a line or two per address, not one per try.
func TestFailedLoginsCostTimePerAddressVsftpdStyle(t *testing.T) {
	t.Parallel()
	log, logs := capture(t)
	// The defaults: a second per failure, 3 failures, a minute out.
	const delay = time.Second
	s := ftptest.StartUnplugged(t, ftptest.Options{Driver: ftpdriver.Options{Logger: log, User: "me", Password: "right"}})

	for i := range 3 {
		code, msg, took := login(t, s.Addr, "127.0.0.2", "me", "guess")
		if code != 530 {
			t.Fatalf("wrong password %d from 127.0.0.2 = %d %s, want 530", i+1, code, msg)
		}
		if took < delay {
			t.Errorf("wrong password %d was answered after %v, want at least %v", i+1, took, delay)
		}
	}
	// Locked out: a new connection is refused before it takes a place,
	// and the right password does not help.
	for i := range 5 {
		code, msg, _ := login(t, s.Addr, "127.0.0.2", "me", "right")
		if code != 421 || !strings.Contains(msg, "too many failed logins") {
			t.Fatalf("login %d from 127.0.0.2 after 3 failures = %d %s, want 421 too many failed logins", i+1, code, msg)
		}
	}
	// Another address is not affected: the owner logs in at once, and a
	// typo there is only a typo.
	if code, msg, took := login(t, s.Addr, "127.0.0.1", "me", "right"); code != 230 || took >= delay {
		t.Errorf("the owner from 127.0.0.1 = %d %s after %v, want 230 at once", code, msg, took)
	}
	if code, msg, _ := login(t, s.Addr, "127.0.0.1", "me", "typo"); code != 530 {
		t.Errorf("a typo from 127.0.0.1 = %d %s, want 530", code, msg)
	}

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	// First failure, lockout, summary at shutdown: 3 lines for 8 tries.
	if n := logCount(logs, "remote=127.0.0.2"); n == 0 || n > 3 {
		t.Errorf("the log has %d lines about 127.0.0.2 for 8 tries, want 1 to 3:\n%s", n, logText(logs))
	}
	if !logs.contains("failures=3") || !logs.contains("refused=5") {
		t.Errorf("no summary of 127.0.0.2's failures in the log:\n%s", logText(logs))
	}
}

// A guesser gains nothing from many connections at once: one address
// tries one password at a time, each failure holding its turn for the
// delay, so six parallel guesses take at least three delays (the three
// before the lockout), and the other three are refused.
func TestParallelGuessesWaitTheirTurn(t *testing.T) {
	t.Parallel()
	const delay = time.Second // the default, with 3 failures before a lockout
	s := ftptest.StartUnplugged(t, ftptest.Options{Driver: ftpdriver.Options{User: "me", Password: "right"}})
	clients := make([]*rawClient, 6)
	for i := range clients {
		c, code, msg := dialFrom(t, s.Addr, "127.0.0.3")
		if code != 220 {
			t.Fatalf("connection %d = %d %s", i, code, msg)
		}
		c.expect(331, "USER me")
		clients[i] = c
	}
	start := time.Now()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		codes = map[int]int{}
	)
	for _, c := range clients {
		wg.Go(func() {
			if err := c.tp.PrintfLine("PASS guess"); err != nil {
				t.Errorf("PASS: %v", err)
				return
			}
			_ = c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			code, msg, _ := c.tp.ReadResponse(0)
			mu.Lock()
			codes[code]++
			mu.Unlock()
			if code != 530 {
				t.Errorf("a parallel guess = %d %s, want 530", code, msg)
			}
		})
	}
	wg.Wait()
	if took := time.Since(start); took < 3*delay {
		t.Errorf("6 parallel guesses were all answered after %v, want at least %v", took, 3*delay)
	}
	if codes[530] != 6 {
		t.Errorf("replies to 6 parallel guesses: %v", codes)
	}
}

// logCount counts the lines of the log that contain s.
func logCount(l *logBuffer, s string) int {
	n := 0
	for _, line := range strings.Split(logText(l), "\n") {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

func logText(l *logBuffer) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
