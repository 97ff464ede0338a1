package ftpdriver_test

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"

	"github.com/ftpbridge/ftpbridge/ftpdriver/ftptest"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

// The board goes silent in the middle of a download with its line open
// (a hung firmware, a stalled USB-serial adapter): the RETR fails with a
// reply that says the board stopped answering, long before the board
// speaks again; another session asking meanwhile hears the same, not
// "busy"; and once the board answers again, the next RETR and LIST work,
// the bytes exact, with no restart of the bridge.
func TestSilentBoardDuringDownload(t *testing.T) {
	t.Parallel()
	// Longer than the bridge's bounds on a silent board (10 s without a
	// byte, 30 s for a segment's end) with room to spare.
	const stall = 45 * time.Second
	root := t.TempDir()
	want := randomBytes(96<<10, 64)
	put(t, root, "big.bin", want)
	s := ftptest.Start(t, ftptest.Options{Board: boardtest.Options{Root: root, Baud: 115200}})
	c := s.Dial(t, ftp.DialWithTimeout(2*stall))
	other := s.Dial(t, ftp.DialWithTimeout(2*stall))

	r, err := c.Retr("/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 16<<10)
	if _, err := io.ReadFull(r, head); err != nil {
		t.Fatal(err)
	}
	s.Board.Stall(stall)
	stalled := time.Now()

	otherDone := make(chan error, 1)
	go func() {
		time.Sleep(time.Second)
		_, err := other.List("/")
		otherDone <- err
	}()

	retrDone := make(chan error, 1)
	go func() {
		rest, err := io.ReadAll(r)
		if cerr := r.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			t.Errorf("RETR reported success over a board that went silent, %d bytes (exact: %v)",
				len(head)+len(rest), bytes.Equal(append(head, rest...), want))
		}
		retrDone <- err
	}()
	for _, w := range []struct {
		what string
		done chan error
	}{{"the stalled RETR", retrDone}, {"another session's LIST", otherDone}} {
		select {
		case err := <-w.done:
			t.Logf("%s: %v after %v", w.what, err, time.Since(stalled).Round(time.Millisecond))
			if err == nil || !strings.Contains(err.Error(), "board stopped answering") {
				t.Errorf("%s while the board is silent: %v, want a reply saying the board stopped answering", w.what, err)
			}
		case <-time.After(time.Until(stalled.Add(stall - 5*time.Second))):
			t.Fatalf("%s still waits %v into the board's silence", w.what, time.Since(stalled).Round(time.Second))
		}
	}

	time.Sleep(time.Until(stalled.Add(stall + time.Second)))
	if got, err := tryRetr(c, "/big.bin"); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("RETR once the board answers again: %d bytes (exact: %v), %v", len(got), bytes.Equal(got, want), err)
	}
	names, err := other.NameList("/")
	if err != nil || !slices.Contains(names, "big.bin") {
		t.Fatalf("NLST once the board answers again: %q, %v", names, err)
	}
}

// The board goes silent while an upload its client was already answered
// for (226 once the spool had it) is being written to it: the bridge
// waits for the board as for one unplugged, however long the silence,
// and writes the upload again once the board answers; the file lands
// whole and no temporary file is left.
func TestSilentBoardDuringUpload(t *testing.T) {
	t.Parallel()
	// Longer than a few tries of the write take on a silent board.
	const stall = 45 * time.Second
	root := t.TempDir()
	put(t, root, "up.bin", []byte("old\n"))
	s := ftptest.Start(t, ftptest.Options{Board: boardtest.Options{Root: root, Baud: 115200}})
	c := s.Dial(t)

	data := randomBytes(128<<10, 65) // 11 s of the line: answered long before the board has it
	if err := c.Stor("/up.bin", bytes.NewReader(data)); err != nil {
		t.Fatalf("STOR: %v", err)
	}
	s.Board.Stall(stall)
	stalled := time.Now()
	time.Sleep(time.Until(stalled.Add(stall + time.Second)))
	s.WaitUploads(t, 60*time.Second)
	if got := get(t, root, "up.bin"); !bytes.Equal(got, data) {
		t.Errorf("after the silence the board holds %d bytes (exact: %v), want the upload's %d", len(got), bytes.Equal(got, data), len(data))
	}
	noTemporaries(t, root, ".")
}

// The board goes silent in the middle of a listing: LIST fails with a
// reply that says the board stopped answering, long before the board
// speaks again, and once it answers the same LIST is whole.
func TestSilentBoardDuringList(t *testing.T) {
	t.Parallel()
	const stall = 30 * time.Second
	root := t.TempDir()
	var want []string
	for i := range 400 {
		n := fmt.Sprintf("file-%04d-%s.txt", i, strings.Repeat("n", 30))
		put(t, root, "d/"+n, []byte("x"))
		want = append(want, "d/"+n)
	}
	s := ftptest.Start(t, ftptest.Options{Board: boardtest.Options{Root: root, Baud: 115200}})
	c := s.Dial(t, ftp.DialWithTimeout(2*stall))

	done := make(chan error, 1)
	go func() {
		_, err := c.NameList("/d")
		done <- err
	}()
	time.Sleep(700 * time.Millisecond) // 400 names are about 2 s of the line
	s.Board.Stall(stall)
	stalled := time.Now()
	select {
	case err := <-done:
		t.Logf("the stalled NLST: %v after %v", err, time.Since(stalled).Round(time.Millisecond))
		if err == nil || !strings.Contains(err.Error(), "board stopped answering") {
			t.Errorf("NLST while the board is silent: %v, want a reply saying the board stopped answering", err)
		}
	case <-time.After(stall - 5*time.Second):
		t.Fatalf("NLST still waits %v into the board's silence", time.Since(stalled).Round(time.Second))
	}

	time.Sleep(time.Until(stalled.Add(stall + time.Second)))
	got, err := c.NameList("/d")
	slices.Sort(got)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("NLST once the board answers again: %d names, %v; want %d", len(got), err, len(want))
	}
}
