package ftpdriver_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/ftpdriver"
	"github.com/ftpbridge/ftpbridge/ftpdriver/ftptest"
)

// stor sends STOR name with a few bytes, and returns the final reply.
func stor(c *rawClient, name string, data []byte) (int, string) {
	c.t.Helper()
	conn := c.epsv()
	defer conn.Close()
	code, msg := c.cmd("STOR %s", name)
	if code != 150 {
		return code, msg
	}
	_, _ = conn.Write(data)
	_ = conn.Close()
	return c.read()
}

// Every path that cleans to "/" is refused as the target of a change, at
// once and before the board hears of it: "/" can be neither replaced,
// removed nor renamed. vsftpd answers STOR onto a folder with 553 ("Could
// not create file"), as STOR and RNTO get here; MKD, RMD and DELE have
// 550. STOR /.. used to make the board copy a temporary file over and over
// until the deadline (806 hidden files in 60 s), RNTO / the same.
func TestChangesToRootRefusedAtOnce(t *testing.T) {
	t.Parallel()
	s := ftptest.Start(t, ftptest.Options{Driver: ftpdriver.Options{OpTimeout: 5 * time.Second, LongOpTimeout: 5 * time.Second}})
	put(t, s.Board.Root, "victim.txt", []byte("keep me\n"))
	c := rawDial(t, s.Addr, "anonymous", "x")

	for _, name := range []string{"/..", "/.", "//", "/", "/../..", "/./"} {
		if code, msg := stor(c, name, []byte("overwrite?\n")); code != 553 {
			t.Errorf("STOR %s = %d %s, want 553", name, code, msg)
		}
	}
	for _, to := range []string{"/", "/..", "//"} {
		c.expect(350, "RNFR /victim.txt")
		if code, msg := c.cmd("RNTO %s", to); code != 553 {
			t.Errorf("RNFR /victim.txt, RNTO %s = %d %s, want 553", to, code, msg)
		}
	}
	for _, cmd := range []string{"MKD /..", "RMD /", "RMD /.", "DELE /", "DELE //"} {
		if code, msg := c.cmd("%s", cmd); code != 550 {
			t.Errorf("%s = %d %s, want 550", cmd, code, msg)
		}
	}
	// The root is refused as what to rename at the RNFR, and the RNTO
	// after it finds nothing to rename.
	for _, from := range []string{"/", "/..", "."} {
		if code, msg := c.cmd("RNFR %s", from); code != 550 || !strings.Contains(msg, "root folder") {
			t.Errorf("RNFR %s = %d %s, want 550 about the root folder", from, code, msg)
		}
		if code, msg := c.cmd("RNTO /renamed"); code != 503 {
			t.Errorf("RNFR %s, RNTO /renamed = %d %s, want 503", from, code, msg)
		}
	}

	if names := hostNames(t, s.Board.Root, "/"); !slices.Equal(names, []string{"victim.txt"}) {
		t.Errorf("the board holds %q, want only victim.txt", names)
	}
	if got := get(t, s.Board.Root, "victim.txt"); string(got) != "keep me\n" {
		t.Errorf("victim.txt = %q", got)
	}
}

// A STOR names a file: "STOR trail/" is refused (the library cleaned the
// slash away, and a file "trail" was made), and a name longer than the
// boards' filesystems take is refused before the 150, not after the
// whole upload was sent.
func TestStorNamesRefusedBeforeData(t *testing.T) {
	t.Parallel()
	s := ftptest.Start(t, ftptest.Options{})
	c := rawDial(t, s.Addr, "anonymous", "x")
	for _, name := range []string{"trail/", "/sub/", strings.Repeat("n", 256)} {
		data := c.epsv()
		code, msg := c.cmd("STOR %s", name)
		data.Close()
		if code != 553 {
			t.Errorf("STOR %.20s... = %d %s, want 553 at once", name, code, msg)
			if code == 150 {
				c.read()
			}
		}
	}
	c.expect(553, "APPE trail/")
	if names := hostNames(t, s.Board.Root, "/"); len(names) != 0 {
		t.Errorf("the board holds %q, want nothing", names)
	}
	// 255 bytes is still a name.
	if code, msg := stor(c, strings.Repeat("n", 255), []byte("x")); code != 226 {
		t.Errorf("STOR of a 255-byte name = %d %s, want 226", code, msg)
	}
}
