package ftpdriver_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"

	"github.com/ftpbridge/ftpbridge/ftpdriver/ftptest"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

// entryNames returns the names of a listing, sorted.
func entryNames(entries []*ftp.Entry) []string {
	var names []string
	for _, e := range entries {
		names = append(names, e.Name)
	}
	slices.Sort(names)
	return names
}

// Two boards behind one server: each is a folder of "/", files land on the
// board their path names, and nothing moves from one board to the other.
func TestMultiBoards(t *testing.T) {
	t.Parallel()
	s := ftptest.StartMulti(t, ftptest.Options{}, boardtest.Options{}, boardtest.Options{})
	root0, root1 := s.Boards[0].Root, s.Boards[1].Root
	want := randomBytes(5000, 71)
	put(t, root1, "y.bin", want)
	put(t, root1, "lib/z.py", []byte("z = 1\n"))
	c := s.Dial(t)

	entries, err := c.List("/")
	if err != nil {
		t.Fatalf("LIST /: %v", err)
	}
	if got := entryNames(entries); !slices.Equal(got, []string{"b0", "b1"}) {
		t.Errorf("LIST / = %q, want [b0 b1]", got)
	}
	for _, e := range entries {
		if e.Type != ftp.EntryTypeFolder {
			t.Errorf("LIST /: %s is %v, want a folder", e.Name, e.Type)
		}
	}
	for _, p := range []string{"/b0", "/b1/lib", "/"} {
		if err := c.ChangeDir(p); err != nil {
			t.Errorf("CWD %s: %v", p, err)
		}
	}
	if _, err := c.List("/b1/lib/z.py/.."); err != nil {
		t.Errorf("LIST of a path through a board's folder: %v", err)
	}

	if err := c.Stor("/b0/x.txt", strings.NewReader("on board 0\n")); err != nil {
		t.Fatalf("STOR /b0/x.txt: %v", err)
	}
	if got := get(t, root0, "x.txt"); string(got) != "on board 0\n" {
		t.Errorf("board 0's x.txt = %q", got)
	}
	if slices.Contains(hostNames(t, root1, "/"), "x.txt") {
		t.Errorf("x.txt uploaded to /b0 also landed on board 1")
	}
	// The cache is per board: board 1's listing says nothing of board 0.
	if entries, err := c.List("/b1"); err != nil || !slices.Equal(entryNames(entries), []string{"lib", "y.bin"}) {
		t.Errorf("LIST /b1 = %q, %v, want [lib y.bin]", entryNames(entries), err)
	}
	if _, err := c.FileSize("/b1/x.txt"); err == nil {
		t.Errorf("SIZE /b1/x.txt: found a file that is on board 0")
	}
	if got := retr(t, c, "/b1/y.bin", 0); !bytes.Equal(got, want) {
		t.Errorf("RETR /b1/y.bin: %d bytes, equal %v", len(got), bytes.Equal(got, want))
	}
	if got := retr(t, c, "/b1/y.bin", 4000); !bytes.Equal(got, want[4000:]) {
		t.Errorf("RETR /b1/y.bin from 4000: %d bytes, equal %v", len(got), bytes.Equal(got, want[4000:]))
	}

	if err := c.Rename("/b0/x.txt", "/b1/x.txt"); err == nil || !strings.Contains(err.Error(), "cannot rename across boards") {
		t.Errorf("rename /b0/x.txt to /b1/x.txt: %v, want \"cannot rename across boards\"", err)
	}
	if got := get(t, root0, "x.txt"); string(got) != "on board 0\n" {
		t.Errorf("board 0's x.txt after the refused rename = %q", got)
	}
	if slices.Contains(hostNames(t, root1, "/"), "x.txt") {
		t.Errorf("the refused rename put x.txt on board 1")
	}
	if err := c.Rename("/b0/x.txt", "/b0/w.txt"); err != nil {
		t.Errorf("rename inside board 0: %v", err)
	}

	top := "the top level holds one folder per board"
	refused := []struct {
		name string
		do   func() error
	}{
		{"MKD /b2", func() error { return c.MakeDir("/b2") }},
		{"MKD /", func() error { return c.MakeDir("/") }},
		{"RMD /b0", func() error { return c.RemoveDir("/b0") }},
		{"DELE /b1", func() error { return c.Delete("/b1") }},
		{"rename /b0", func() error { return c.Rename("/b0", "/b9") }},
		{"rename into /", func() error { return c.Rename("/b0/w.txt", "/w.txt") }},
		{"STOR /x.txt", func() error { return c.Stor("/x.txt", strings.NewReader("x")) }},
	}
	for _, tt := range refused {
		if err := tt.do(); err == nil || !strings.Contains(err.Error(), top) || replyCode(err) != 550 {
			t.Errorf("%s: %v, want 550 %q", tt.name, err, top)
		}
	}
	if _, err := c.List("/b2"); err == nil || !strings.Contains(err.Error(), "no such file or directory") {
		t.Errorf("LIST /b2 (no such board): %v", err)
	}
	if entries, err := c.List("/b0"); err != nil || !slices.Equal(entryNames(entries), []string{"w.txt"}) {
		t.Errorf("LIST /b0 after the refused changes = %v, %v", entries, err)
	}
}

// One board is unplugged while the other sends a 32 KB file: that transfer
// is exact, the unplugged board's folder says so until the board is back,
// and then it serves again.
func TestMultiUnplugOne(t *testing.T) {
	t.Parallel()
	root0, root1 := t.TempDir(), t.TempDir()
	big := randomBytes(64<<10, 72)
	put(t, root0, "big.bin", big)
	want := randomBytes(32<<10, 73)
	put(t, root1, "data.bin", want)
	s := ftptest.StartMulti(t, ftptest.Options{},
		boardtest.Options{Root: root0, CutAfter: 30_000, ReplugAfter: 3 * time.Second},
		// A slow line, so the cut on board 0 falls inside this transfer.
		boardtest.Options{Root: root1, Baud: 115200},
	)
	c0, c1 := s.Dial(t), s.Dial(t)

	type result struct {
		data []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		b, err := tryRetr(c1, "/b1/data.bin")
		done <- result{b, err}
	}()
	time.Sleep(300 * time.Millisecond)
	if got, err := tryRetr(c0, "/b0/big.bin"); err == nil {
		t.Fatalf("RETR /b0/big.bin cut after %d of %d bytes reported success", len(got), len(big))
	}
	select {
	case r := <-done:
		t.Fatalf("RETR /b1/data.bin ended (%d bytes, %v) before board 0 was cut: the cut did not fall inside it", len(r.data), r.err)
	default:
	}
	if _, err := c0.List("/b0"); err == nil || !strings.Contains(err.Error(), "board not connected") {
		t.Errorf("LIST /b0 while board 0 is away: %v, want \"board not connected\"", err)
	}
	r := <-done
	if r.err != nil || !bytes.Equal(r.data, want) {
		t.Fatalf("RETR /b1/data.bin while board 0 was cut: %d bytes (equal %v), %v", len(r.data), bytes.Equal(r.data, want), r.err)
	}
	if entries, err := c1.List("/"); err != nil || !slices.Equal(entryNames(entries), []string{"b0", "b1"}) {
		t.Errorf("LIST / while board 0 is away = %v, %v", entries, err)
	}

	for deadline := time.Now().Add(30 * time.Second); ; {
		_, err := c0.List("/b0")
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "not connected") && !strings.Contains(err.Error(), "try again") {
			t.Errorf("LIST /b0 while board 0 was away: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("board 0 did not come back: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got, err := tryRetr(c0, "/b0/big.bin"); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("RETR /b0/big.bin after the replug: %d bytes (equal %v), %v", len(got), bytes.Equal(got, big), err)
	}
}
