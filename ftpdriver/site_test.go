package ftpdriver_test

import (
	"strings"
	"testing"

	"github.com/ftpbridge/ftpbridge/ftpdriver"
	"github.com/ftpbridge/ftpbridge/ftpdriver/ftptest"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

// SITE is answered by the bridge itself: HELP lists RESET and RUN, other
// words are not understood, and on a server without a console RESET says
// it is not available. (RESET and RUN at work: package console's tests.)
func TestSiteWords(t *testing.T) {
	t.Parallel()
	s := ftptest.Start(t, ftptest.Options{})
	c := rawDial(t, s.Addr, "anonymous", "x@")
	if msg := c.expect(214, "SITE HELP"); !strings.Contains(msg, "--console") || strings.Contains(msg, "output on the console") {
		t.Errorf("SITE HELP without a console = %q, want a word on --console, and no RESET or RUN offered", msg)
	}
	if msg := c.expect(500, "SITE CHMOD 777 /x"); !strings.Contains(msg, "SITE RESET") {
		t.Errorf("SITE CHMOD = %q, want the SITE commands named", msg)
	}
	c.expect(501, "SITE RUN")
	if msg := c.expect(502, "SITE RESET"); !strings.Contains(msg, "no console") {
		t.Errorf("SITE RESET without a console = %q", msg)
	}
	// The session goes on.
	c.expect(257, "PWD")
}

// A read-only server runs no code on the board.
func TestSiteRefusedReadOnly(t *testing.T) {
	t.Parallel()
	s := ftptest.Start(t, ftptest.Options{Driver: ftpdriver.Options{ReadOnly: true}})
	c := rawDial(t, s.Addr, "anonymous", "x@")
	for _, cmd := range []string{"SITE RESET", "SITE RUN main.py"} {
		if msg := c.expect(550, "%s", cmd); !strings.Contains(msg, "read-only") {
			t.Errorf("%s on a read-only server = %q", cmd, msg)
		}
	}
}

// Over several boards, SITE RESET at the top names no board.
func TestSiteAtTheTopOfSeveralBoards(t *testing.T) {
	t.Parallel()
	s := ftptest.StartMulti(t, ftptest.Options{}, boardtest.Options{}, boardtest.Options{})
	c := rawDial(t, s.Addr, "anonymous", "x@")
	if msg := c.expect(501, "SITE RESET"); !strings.Contains(msg, "which board") || !strings.Contains(msg, "/b") {
		t.Errorf("SITE RESET at / over several boards = %q", msg)
	}
	// Inside a board's folder, the board is known (and has no console
	// here).
	c.expect(502, "SITE RESET /b1")
}
