package boardfs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

// TestFlippedBitInListing: a bit flipped in a listing (a name, a size) is
// caught by the listing's CRC-32 and the listing read again: a client never
// sees an entry the board does not have.
func TestFlippedBitInListing(t *testing.T) {
	// Connecting moves under 1 KB from the board; the listing of 200
	// entries about 7 KB after it.
	f, b, dir := start(t, boardtest.ESP32, boardtest.Options{FlipAt: 3000})
	ctx := ctxFor(t, time.Minute)
	if err := f.Mkdir(ctx, dir); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 200 {
		name := fmt.Sprintf("sensor-log-%03d.csv", i)
		if err := os.WriteFile(filepath.Join(hostPath(b, dir), name), []byte("t,v\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		want = append(want, name)
	}
	before := f.Stats().Execs
	entries, err := f.List(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		if e.Size != 4 {
			t.Errorf("%s: %d bytes, want 4", e.Name, e.Size)
		}
		got = append(got, e.Name)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("listing after a flipped bit: %d names, want %d", len(got), len(want))
	}
	if execs := f.Stats().Execs - before; execs != 2 {
		t.Errorf("List took %d execs, want 2: the damaged listing read again", execs)
	}
}
