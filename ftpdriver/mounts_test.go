package ftpdriver_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ftpbridge/ftpbridge/ftpdriver/ftptest"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

// On a Pyboard "/" is MicroPython's VFS root: it holds the mounts
// (/flash, /sd) and nothing else. A change there is refused with a reply
// that says so, before it reaches the board; a mount itself can be
// neither deleted nor renamed (RMD /flash used to succeed on the rig,
// DELE /flash said "board: OSError: [Errno 21] EISDIR", STOR /x "file name
// not allowed"); and asking for something there that is not a mount is
// "no such file", not "file name not allowed" (the board's ENODEV).
func TestPyboardTopLevelHoldsOnlyMounts(t *testing.T) {
	t.Parallel()
	s := ftptest.Start(t, ftptest.Options{Profile: boardtest.Pyboard})
	put(t, s.Board.Root, "flash/main.py", []byte("print(1)\n"))
	c := rawDial(t, s.Addr, "anonymous", "x")

	mounts := func(what string, code int, msg string, want int) {
		t.Helper()
		if code != want || !strings.Contains(msg, "/flash") || !strings.Contains(msg, "/sd") || !strings.Contains(msg, "mounts") {
			t.Errorf("%s = %d %s, want %d saying / holds only the mounts /flash and /sd", what, code, msg, want)
		}
	}
	code, msg := stor(c, "/x.txt", []byte("x\n"))
	mounts("STOR /x.txt", code, msg, 553)
	code, msg = c.cmd("MKD /newdir")
	mounts("MKD /newdir", code, msg, 550)
	c.expect(350, "RNFR /flash/main.py")
	code, msg = c.cmd("RNTO /main.py")
	mounts("RNTO /main.py", code, msg, 553)

	for _, cmd := range []string{"DELE /flash", "RMD /flash", "RMD /sd/"} {
		if code, msg := c.cmd("%s", cmd); code != 550 || !strings.Contains(msg, "mounted") {
			t.Errorf("%s = %d %s, want 550 saying it is where a drive is mounted", cmd, code, msg)
		}
	}
	c.expect(350, "RNFR /flash")
	if code, msg := c.cmd("RNTO /flash2"); code != 553 || !strings.Contains(msg, "mounted") {
		t.Errorf("RNFR /flash, RNTO /flash2 = %d %s, want 553 saying /flash is a mount", code, msg)
	}
	if code, msg := c.cmd("SIZE /nothing-here"); code != 550 || !strings.Contains(msg, "no such file") {
		t.Errorf("SIZE /nothing-here = %d %s, want 550 no such file", code, msg)
	}

	if got := hostNames(t, s.Board.Root, "/"); !slices.Equal(got, []string{"flash", "sd"}) {
		t.Errorf("the rig's VFS root holds %q, want flash and sd", got)
	}
	if got := get(t, s.Board.Root, "flash/main.py"); string(got) != "print(1)\n" {
		t.Errorf("flash/main.py = %q", got)
	}
	// Inside a mount, everything works.
	if code, msg := stor(c, "/flash/x.txt", []byte("x\n")); code != 226 {
		t.Errorf("STOR /flash/x.txt = %d %s", code, msg)
	}
	c.expect(257, "MKD /sd/newdir")
}

// A folder does not move between a Pyboard's drives (it would take a copy
// of each file in it), and the reply says so, not "not supported by this
// board": the board renames folders within a drive. Nothing moves.
func TestPyboardFolderAcrossDrivesSaysWhy(t *testing.T) {
	t.Parallel()
	s := ftptest.Start(t, ftptest.Options{Profile: boardtest.Pyboard})
	put(t, s.Board.Root, "flash/lib/x.py", []byte("x\n"))
	c := rawDial(t, s.Addr, "anonymous", "x")
	c.expect(350, "RNFR /flash/lib")
	if code, msg := c.cmd("RNTO /sd/lib"); code != 550 || !strings.Contains(msg, "drives") {
		t.Errorf("RNFR /flash/lib, RNTO /sd/lib = %d %s, want 550 saying a folder cannot move between drives", code, msg)
	}
	if got := get(t, s.Board.Root, "flash/lib/x.py"); string(got) != "x\n" {
		t.Errorf("flash/lib/x.py = %q", got)
	}
}
