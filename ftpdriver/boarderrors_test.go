package ftpdriver_test

import (
	"strings"
	"testing"

	"github.com/ftpbridge/ftpbridge/ftpdriver/ftptest"
)

// A board's OSError reaches the client in words, never as "OSError: 20"
// (what littlefs and the emulated ESP32 raise for a path through a file).
func TestBoardErrorsInWords(t *testing.T) {
	t.Parallel()
	s := ftptest.Start(t, ftptest.Options{})
	put(t, s.Board.Root, "file.txt", []byte("a file\n"))
	c := rawDial(t, s.Addr, "anonymous", "x")
	check := func(what string, code int, msg string) {
		t.Helper()
		if code < 400 || strings.Contains(msg, "OSError") || strings.Contains(msg, "Errno") || !strings.Contains(msg, "not a directory") {
			t.Errorf("%s = %d %s, want a failure that says a part of the path is not a directory", what, code, msg)
		}
	}
	code, msg := stor(c, "/file.txt/x", []byte("x"))
	check("STOR /file.txt/x", code, msg)
	code, msg = c.cmd("MKD /file.txt/d")
	check("MKD /file.txt/d", code, msg)
	code, msg = c.cmd("DELE /file.txt/x")
	check("DELE /file.txt/x", code, msg)
}
