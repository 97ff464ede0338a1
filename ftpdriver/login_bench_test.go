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

	"github.com/ftpbridge/ftpbridge/ftpdriver/ftptest"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
	"github.com/ftpbridge/ftpbridge/scripts/rig"
)

// BenchmarkLoginToListing connects as FileZilla does (USER, PASS, SYST,
// FEAT, PWD, TYPE I, PASV, MLSD) to an ESP32 holding 200 files, at 115200
// baud behind a 16 ms latency timer with the board's flash, CPU and heap
// timed, and reports seconds from the connection to the listing's end
// (login-to-listing-s, and first-login-to-listing-s for the first
// connection); issue 12 asks for under 1.5 s.
func BenchmarkLoginToListing(b *testing.B) {
	opts := boardtest.Options{Baud: 115200, Latency: 16 * time.Millisecond, Flash: true, CPU: true, Heap: rig.RealHeap(boardtest.ESP32)}
	s := ftptest.Start(b, ftptest.Options{Board: opts})
	for i := range 200 {
		put(b, s.Board.Root, fmt.Sprintf("file-%03d.py", i), []byte("x=1\n"))
	}
	var elapsed, first time.Duration
	for b.Loop() {
		start := time.Now()
		n, err := loginAndList(s.Addr)
		took := time.Since(start)
		elapsed += took
		if first == 0 {
			first = took
		}
		if err != nil || n != 200 {
			b.Fatalf("MLSD = %d entries, %v", n, err)
		}
	}
	b.ReportMetric(elapsed.Seconds()/float64(b.N), "login-to-listing-s")
	// The first connection lists the board itself; later ones may be
	// served what the server already knows.
	b.ReportMetric(first.Seconds(), "first-login-to-listing-s")
}

// loginAndList runs FileZilla's commands up to the first listing and
// returns how many files it listed.
func loginAndList(addr string) (int, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	c := textproto.NewConn(conn)
	if _, _, err := c.ReadResponse(220); err != nil {
		return 0, err
	}
	steps := []struct {
		cmd  string
		code int
	}{{"USER anonymous", 331}, {"PASS ftptest@", 230}, {"SYST", 215}, {"FEAT", 211}, {"PWD", 257}, {"TYPE I", 200}}
	for _, st := range steps {
		if _, _, err := cmd(c, st.code, st.cmd); err != nil {
			return 0, err
		}
	}
	_, msg, err := cmd(c, 227, "PASV")
	if err != nil {
		return 0, err
	}
	open, end := strings.IndexByte(msg, '('), strings.IndexByte(msg, ')')
	if open < 0 || end < open {
		return 0, fmt.Errorf("PASV answered %q", msg)
	}
	f := strings.Split(msg[open+1:end], ",")
	if len(f) != 6 {
		return 0, fmt.Errorf("PASV answered %q", msg)
	}
	hi, _ := strconv.Atoi(f[4])
	lo, _ := strconv.Atoi(f[5])
	data, err := net.DialTimeout("tcp", net.JoinHostPort(strings.Join(f[:4], "."), strconv.Itoa(hi*256+lo)), 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer data.Close()
	id, err := c.Cmd("MLSD")
	if err != nil {
		return 0, err
	}
	c.StartResponse(id)
	defer c.EndResponse(id)
	if _, _, err := c.ReadResponse(150); err != nil {
		return 0, err
	}
	listing, err := io.ReadAll(data)
	if err != nil {
		return 0, err
	}
	if _, _, err := c.ReadResponse(226); err != nil {
		return 0, err
	}
	return strings.Count(string(listing), " file-"), nil
}

func cmd(c *textproto.Conn, code int, line string) (int, string, error) {
	id, err := c.Cmd("%s", line)
	if err != nil {
		return 0, "", err
	}
	c.StartResponse(id)
	defer c.EndResponse(id)
	return c.ReadResponse(code)
}
