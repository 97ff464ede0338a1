package rig_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ftpbridge/ftpbridge/scripts/rig"
)

// A board's device link never leads to a pty that is not the board's.
// While Close runs, other programs make ptys (a console's, other
// boards'), which get the numbers of the ones closed: a host polling the
// link of a board being closed opened another test's console pty and
// spoke the raw REPL into it (TestConsoleOnPTY in CI, whose person got
// "\r\n>>> \r\n>>> \r\n>>> \r\nraw\x01rue\ndeflate\x01\x04\x04\x04>").
func TestClosedBoardsLinkLeadsToNoOtherPTY(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the emulated board")
	}
	b, err := rig.Start(rig.Config{Profile: rig.ESP32})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.WaitReady(time.Minute); err != nil {
		b.Close()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = b.Close(); close(done) }()
	for {
		select {
		case <-done:
			return
		default:
		}
		// Another program's new pty, as a console makes.
		m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
		if err != nil {
			t.Fatal(err)
		}
		n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
		if err != nil {
			t.Fatal(err)
		}
		other := fmt.Sprintf("/dev/pts/%d", n)
		target, lerr := os.Readlink(b.Device)
		_, serr := os.Stat(b.Device)
		m.Close()
		if lerr == nil && serr == nil && target == other {
			<-done
			t.Fatalf("while the board closed, its link %s led to %s, a pty made since", b.Device, other)
		}
		time.Sleep(time.Millisecond)
	}
}
