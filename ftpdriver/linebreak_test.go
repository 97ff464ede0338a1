package ftpdriver_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftpbridge/ftpbridge/ftpdriver/ftptest"
)

// A name with a line break, which a program on the board can make, must
// not forge entries in a listing: vsftpd leaves such names out. One cannot
// be made over FTP either (a CR can reach a command line; an LF cannot),
// as it could never be listed.
func TestNamesWithLineBreaksForgeNoEntries(t *testing.T) {
	t.Parallel()
	s := ftptest.Start(t, ftptest.Options{})
	forged := "x\r\n-rw-r--r-- 1 ftp ftp 999 Dec  2 06:43 forged"
	for _, name := range []string{forged, "ok.txt"} {
		if err := os.WriteFile(filepath.Join(s.Board.Root, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := rawDial(t, s.Addr, "anonymous", "x")
	for _, verb := range []string{"LIST", "NLST", "MLSD"} {
		code, msg, data := c.transfer("%s /", verb)
		if code != 226 {
			t.Fatalf("%s = %d %s", verb, code, msg)
		}
		if strings.Contains(string(data), "forged") || !strings.Contains(string(data), "ok.txt") {
			t.Errorf("%s listed %q: want ok.txt, and no entry from the name with a line break", verb, data)
		}
	}
	for _, cmd := range []string{"STOR a\rb", "APPE a\rb", "MKD a\rb"} {
		code, msg, _ := c.transfer("%s", cmd)
		if code != 553 && code != 550 {
			t.Errorf("%q = %d %s, want a refusal", cmd, code, msg)
		}
	}
	c.expect(350, "RNFR ok.txt")
	if code, msg := c.cmd("RNTO a\rb"); code != 553 {
		t.Errorf("RNTO a\\rb = %d %s, want 553", code, msg)
	}
	if _, err := os.Stat(filepath.Join(s.Board.Root, "ok.txt")); err != nil {
		t.Errorf("ok.txt after the refused rename: %v", err)
	}
	entries, _ := os.ReadDir(s.Board.Root)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "a\r") {
			t.Errorf("the board holds %q", e.Name())
		}
	}
}
