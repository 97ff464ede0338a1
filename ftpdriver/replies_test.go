package ftpdriver_test

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ftpbridge/ftpbridge/ftpdriver"
	"github.com/ftpbridge/ftpbridge/ftpdriver/ftptest"
)

// REST takes a byte offset, 0 or more: anything else is a syntax error in
// the argument (501, as vsftpd answers "REST -5"), not a 350 that makes
// the transfer fail later with "file name not allowed".
func TestRestNeedsAnOffset(t *testing.T) {
	t.Parallel()
	s := ftptest.StartUnplugged(t, ftptest.Options{})
	c := rawDial(t, s.Addr, "anonymous", "x")
	for _, arg := range []string{"-5", "abc", "", "1.5"} {
		if code, msg := c.cmd("REST %s", arg); code != 501 {
			t.Errorf("REST %s = %d %s, want 501", arg, code, msg)
		}
	}
	c.expect(350, "REST 10")
	c.expect(350, "REST 0")
}

// FEAT lists only the hashes the board computes (SHA-256), in the form
// draft-bryan-ftpext-hash gives ("HASH SHA-256*"); OPTS HASH refuses the
// others; HASH and XSHA256 take a path relative to the working directory,
// as MDTM does.
func TestHashAsAdvertised(t *testing.T) {
	t.Parallel()
	s := ftptest.Start(t, ftptest.Options{})
	content := []byte("hash me\n")
	put(t, s.Board.Root, "sub/a.txt", content)
	sum := sha256.Sum256(content)
	want := hex.EncodeToString(sum[:])
	c := rawDial(t, s.Addr, "anonymous", "x")

	feat := c.expect(211, "FEAT")
	var lines []string
	for _, l := range strings.Split(feat, "\n") {
		lines = append(lines, strings.TrimSpace(l))
	}
	if !slices.Contains(lines, "HASH SHA-256*") {
		t.Errorf("FEAT has no HASH SHA-256* line:\n%s", feat)
	}
	for _, other := range []string{"MD5", "XMD5", "XCRC", "XSHA", "XSHA1", "XSHA512", "CRC32", "SHA-1", "SHA-512"} {
		for _, l := range lines {
			if l == other || strings.Contains(l, other+";") || strings.Contains(l, other+"*") {
				t.Errorf("FEAT advertises %s, which the board does not compute:\n%s", other, feat)
			}
		}
	}
	if code, msg := c.cmd("OPTS HASH MD5"); code != 501 {
		t.Errorf("OPTS HASH MD5 = %d %s, want 501", code, msg)
	}
	c.expect(200, "OPTS HASH SHA-256")

	c.expect(250, "CWD /sub")
	if msg := c.expect(213, "HASH a.txt"); !strings.Contains(msg, want) {
		t.Errorf("HASH a.txt in /sub = %s, want %s", msg, want)
	}
	if msg := c.expect(250, "XSHA256 a.txt"); !strings.Contains(msg, want) {
		t.Errorf("XSHA256 a.txt in /sub = %s, want %s", msg, want)
	}
	if msg := c.expect(213, "HASH /sub/a.txt"); !strings.Contains(msg, want) {
		t.Errorf("HASH /sub/a.txt = %s, want %s", msg, want)
	}
}

// STAT of a folder lists its entries over the control connection, with
// no stray "%s" from the library's format string.
func TestStatOfAFolder(t *testing.T) {
	t.Parallel()
	s := ftptest.Start(t, ftptest.Options{})
	put(t, s.Board.Root, "sub/a.txt", []byte("a\n"))
	c := rawDial(t, s.Addr, "anonymous", "x")
	msg := c.expect(212, "STAT /sub")
	if strings.Contains(msg, "%s") || !strings.Contains(msg, " a.txt") {
		t.Errorf("STAT /sub =\n%s\nwant a.txt's line and no %%s", msg)
	}
}

// RNTO must follow an accepted RNFR right away (RFC 959: "the immediately
// preceding rename from"). The library kept the RNFR after a failed RNTO,
// so the next RNTO, meant for something else, renamed the old file.
func TestRnfrForgottenAfterFailedRnto(t *testing.T) {
	t.Parallel()
	s := ftptest.Start(t, ftptest.Options{})
	put(t, s.Board.Root, "a.txt", []byte("a\n"))
	c := rawDial(t, s.Addr, "anonymous", "x")

	c.expect(350, "RNFR /a.txt")
	if code, msg := c.cmd("RNTO /no/such/dir/b.txt"); code != 550 {
		t.Errorf("RNTO into a missing folder = %d %s, want 550", code, msg)
	}
	if code, msg := c.cmd("RNTO /b.txt"); code != 503 {
		t.Errorf("RNTO after a failed RNTO = %d %s, want 503", code, msg)
	}
	c.expect(350, "RNFR /a.txt")
	c.expect(200, "NOOP")
	if code, msg := c.cmd("RNTO /b.txt"); code != 503 {
		t.Errorf("RNTO after RNFR, NOOP = %d %s, want 503", code, msg)
	}
	c.expect(550, "RNFR /missing.txt")
	if code, msg := c.cmd("RNTO /b.txt"); code != 503 {
		t.Errorf("RNTO after a failed RNFR = %d %s, want 503", code, msg)
	}
	if got := hostNames(t, s.Board.Root, "/"); !slices.Equal(got, []string{"a.txt"}) {
		t.Errorf("the board holds %q, want a.txt alone", got)
	}
	c.expect(350, "RNFR /a.txt")
	c.expect(250, "RNTO /b.txt")
	if got := hostNames(t, s.Board.Root, "/"); !slices.Equal(got, []string{"b.txt"}) {
		t.Errorf("after RNFR, RNTO the board holds %q, want b.txt", got)
	}
}

// nlst runs NLST arg and returns the names it lists.
func nlst(t *testing.T, c *rawClient, arg string) []string {
	t.Helper()
	code, msg, data := c.transfer("%s", strings.TrimSpace("NLST "+arg))
	if code != 226 {
		t.Fatalf("NLST %s = %d %s", arg, code, msg)
	}
	names := strings.Fields(string(data))
	slices.Sort(names)
	return names
}

// LIST and NLST read their arguments as vsftpd does: leading "-" words are
// ls options, and -R is not followed (ls_recurse_enable=NO); the last
// element of the path may be a wildcard pattern. The library took both
// for file names ("LIST -R": 450 "file name not allowed").
func TestListOptionsAndWildcardsVsftpdStyle(t *testing.T) {
	t.Parallel()
	s := ftptest.Start(t, ftptest.Options{})
	for _, n := range []string{"a.py", "b.py", "c.txt", "sub/d.py", "sub/e.txt"} {
		put(t, s.Board.Root, n, []byte(n))
	}
	c := rawDial(t, s.Addr, "anonymous", "x")

	code, msg, data := c.transfer("LIST -R")
	if code != 226 {
		t.Fatalf("LIST -R = %d %s", code, msg)
	}
	for _, n := range []string{"a.py", "b.py", "c.txt", "sub"} {
		if !strings.Contains(string(data), " "+n+"\r\n") {
			t.Errorf("LIST -R lacks %s:\n%s", n, data)
		}
	}
	if strings.Contains(string(data), "d.py") {
		t.Errorf("LIST -R went into sub:\n%s", data)
	}
	if code, msg, data := c.transfer("LIST -la /sub"); code != 226 || !strings.Contains(string(data), " d.py\r\n") {
		t.Errorf("LIST -la /sub = %d %s:\n%s", code, msg, data)
	}

	tests := []struct{ arg, want string }{
		{"*", "a.py b.py c.txt sub"},
		{"*.py", "a.py b.py"},
		{"-l *.txt", "c.txt"},
		{"sub/*.py", "sub/d.py"},
		{"/sub/?.txt", "sub/e.txt"},
		{"*.none", ""},
		{"", "a.py b.py c.txt sub"},
	}
	for _, tt := range tests {
		if got := strings.Join(nlst(t, c, tt.arg), " "); got != tt.want {
			t.Errorf("NLST %s = %q, want %q", tt.arg, got, tt.want)
		}
	}
	// A pattern filters one listing only.
	if got := strings.Join(nlst(t, c, "/sub"), " "); got != "sub/d.py sub/e.txt" {
		t.Errorf("NLST /sub after patterns = %q", got)
	}
}

// Without a certificate, AUTH TLS gets RFC 2228's reply for a mechanism
// the server cannot accept for want of a resource, 431 (RFC 4217 takes
// AUTH's replies from RFC 2228), in words; FileZilla then tries AUTH SSL
// and carries on in plain FTP. The library answered 550 "Cannot get a TLS
// config". Another mechanism is 504.
func TestAuthTLSWithoutCertificate(t *testing.T) {
	t.Parallel()
	s := ftptest.StartUnplugged(t, ftptest.Options{})
	c := rawDial(t, s.Addr, "", "")
	if code, msg := c.cmd("AUTH TLS"); code != 431 || !strings.Contains(msg, "certificate") {
		t.Errorf("AUTH TLS without a certificate = %d %s, want 431 saying there is none", code, msg)
	}
	if code, msg := c.cmd("AUTH SSL"); code != 431 {
		t.Errorf("AUTH SSL without a certificate = %d %s, want 431", code, msg)
	}
	if code, msg := c.cmd("AUTH KERBEROS_V4"); code != 504 {
		t.Errorf("AUTH KERBEROS_V4 = %d %s, want 504", code, msg)
	}
	c.expect(331, "USER anonymous")
	c.expect(230, "PASS x")
}

// PBSZ and PROT on a plain connection get RFC 4217's 503: they follow a
// successful AUTH. The library said "200 OK" to PROT P, then answered
// every EPSV and PASV "421 Cannot get a TLS config".
func TestProtWithoutTLS(t *testing.T) {
	t.Parallel()
	s := ftptest.StartUnplugged(t, ftptest.Options{})
	c := rawDial(t, s.Addr, "anonymous", "x")
	for _, cmd := range []string{"PBSZ 0", "PROT P"} {
		if code, msg := c.cmd("%s", cmd); code != 503 {
			t.Errorf("%s on a plain connection = %d %s, want 503", cmd, code, msg)
		}
	}
	c.epsv().Close()
}

// Under TLS the control connection still reads the commands first: the
// replies are the same as in plain FTP. A command sent right after AUTH
// TLS, before the handshake, is dropped, never run.
func TestTLSSessionGetsTheSameReplies(t *testing.T) {
	t.Parallel()
	s := ftptest.Start(t, ftptest.Options{Driver: ftpdriver.Options{
		TLS: &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}, MinVersion: tls.VersionTLS12},
	}})
	put(t, s.Board.Root, "a.txt", []byte("a\n"))
	c := rawDial(t, s.Addr, "", "")
	// An injected command rides along with AUTH TLS, in plain text.
	if _, err := c.conn.Write([]byte("AUTH TLS\r\nDELE /a.txt\r\n")); err != nil {
		t.Fatal(err)
	}
	if code, msg := c.read(); code != 234 {
		t.Fatalf("AUTH TLS = %d %s", code, msg)
	}
	tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true}) // the test's own certificate
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.tp = textproto.NewConn(tc)
	c.expect(331, "USER anonymous")
	c.expect(230, "PASS x")
	if feat := c.expect(211, "FEAT"); !strings.Contains(feat, "HASH SHA-256*") || strings.Contains(feat, "MD5") {
		t.Errorf("FEAT over TLS:\n%s", feat)
	}
	if code, msg := c.cmd("REST -5"); code != 501 {
		t.Errorf("REST -5 over TLS = %d %s, want 501", code, msg)
	}
	if _, err := os.Stat(filepath.Join(s.Board.Root, "a.txt")); err != nil {
		t.Errorf("the DELE sent before the handshake ran: %v", err)
	}
	c.expect(221, "QUIT")
	// The server closes TLS properly: the client reads a clean end.
	if _, err := bufio.NewReader(tc).ReadByte(); err == nil {
		t.Errorf("data after QUIT")
	}
}
