package boardfs_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/boardfs"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

// TestFlippedBitInListing: a bit flipped in a listing (a name, a size) is
// caught by the listing's CRC-32 and the listing read again: a client never
// sees an entry the board does not have.
func TestFlippedBitInListing(t *testing.T) {
	t.Parallel()
	// Connecting moves under 1 KB from the board; the listing of 200
	// entries about 6 KB after it, in two pages.
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
	if execs := f.Stats().Execs - before; execs != 3 {
		t.Errorf("List took %d execs, want 3: the damaged first page, then both pages again", execs)
	}
}

// TestFlippedBitInSealedReplies: a bit flipped in a hash, stat or free
// space reply is caught by its CRC-32 and the question asked again. The
// same steps run first on a clean board to count their execs.
func TestFlippedBitInSealedReplies(t *testing.T) {
	t.Parallel()
	data := []byte("print('sealed')\n")
	steps := func(f *boardfs.FS, b *boardtest.Board, dir string, beforeHash func()) {
		t.Helper()
		ctx := ctxFor(t, time.Minute)
		if err := os.MkdirAll(filepath.Join(hostPath(b, dir)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(hostPath(b, dir), "main.py"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		beforeHash()
		sum, err := f.Hash(ctx, dir+"/main.py")
		if err != nil || fmt.Sprintf("%x", sum) != fmt.Sprintf("%x", sha256.Sum256(data)) {
			t.Errorf("Hash = %x, %v", sum, err)
		}
		e, err := f.Stat(ctx, dir+"/main.py")
		if err != nil || e.Size != int64(len(data)) {
			t.Errorf("Stat = %+v, %v", e, err)
		}
	}
	clean, b, dir := start(t, boardtest.ESP32, boardtest.Options{})
	steps(clean, b, dir, func() {})
	cleanExecs := clean.Stats().Execs

	// Into the middle of the hash's 64 hex digits, counted from the hash's
	// exec: how many bytes connecting took (more when a loaded host makes
	// the first try to enter raw mode time out) does not move it.
	f, b2, dir2 := start(t, boardtest.ESP32, boardtest.Options{})
	steps(f, b2, dir2, func() { b2.FlipOut(30) })
	if execs := f.Stats().Execs; execs != cleanExecs+1 {
		t.Errorf("%d execs with a flipped bit, %d without: want the hash asked again", execs, cleanExecs)
	}
}
