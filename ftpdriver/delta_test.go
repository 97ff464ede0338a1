package ftpdriver_test

import (
	"bytes"
	"testing"

	"github.com/ftpbridge/ftpbridge/filecache"
	"github.com/ftpbridge/ftpbridge/ftpdriver/ftptest"
)

// TestRetrFromCopy: with a cache, a second RETR of an unchanged file moves
// only the board's block sums, and an edited file is still exact.
func TestRetrFromCopy(t *testing.T) {
	t.Parallel()
	cache, err := filecache.Open(t.TempDir(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	s := ftptest.Start(t, ftptest.Options{Cache: cache})
	want := randomBytes(64<<10, 71)
	put(t, s.Board.Root, "data.bin", want)
	c := s.Dial(t)
	fsys, err := s.Link.FS()
	if err != nil {
		t.Fatal(err)
	}
	for i, step := range []string{"first", "again", "edited"} {
		if step == "edited" {
			copy(want[30_000:], randomBytes(500, 72))
			put(t, s.Board.Root, "data.bin", want)
		}
		before := fsys.Stats().Received
		if got := retr(t, c, "/data.bin", 0); !bytes.Equal(got, want) {
			t.Fatalf("%s RETR: %d bytes, not the file", step, len(got))
		}
		received := fsys.Stats().Received - before
		t.Logf("%s RETR: %d bytes from the board", step, received)
		if i > 0 && received > 4000 {
			t.Errorf("%s RETR moved %d bytes over the line, want only sums and changed blocks", step, received)
		}
	}
}
