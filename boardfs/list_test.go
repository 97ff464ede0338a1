package boardfs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/boardfs"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
	"github.com/ftpbridge/ftpbridge/scripts/rig"
)

// TestBigListing: a directory of 2,000 files with 40-character names at
// 115200 baud lists whole, a page per exec, and another operation gets the
// board between two pages rather than waiting for the whole listing (issue
// 11, item 5: the listing was one exec of 17 s, holding the board). It
// runs alone, as TestSessionsTakeTurns does: it asserts that the other
// operation gets the board within 5 s, where a page takes under 1.
func TestBigListing(t *testing.T) {
	f, b, dir := startWith(t, boardtest.ESP32, boardtest.Options{Baud: 115200}, boardfs.Options{BusyWait: 5 * time.Second})
	ctx := ctxFor(t, 2*time.Minute)
	if err := f.Mkdir(ctx, dir); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 2000 {
		name := fmt.Sprintf("%04d-%s.csv", i, strings.Repeat("n", 31))
		if err := os.WriteFile(filepath.Join(hostPath(b, dir), name), []byte("t,v\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		want = append(want, name)
	}
	if err := os.WriteFile(hostPath(b, "/other.txt"), []byte("other"), 0o644); err != nil {
		t.Fatal(err)
	}
	stat := make(chan error, 1)
	go func() {
		time.Sleep(3 * time.Second)
		e, err := f.Stat(ctx, "/other.txt")
		if err == nil && e.Size != 5 {
			err = fmt.Errorf("Stat = %+v, want 5 bytes", e)
		}
		stat <- err
	}()
	before, start := f.Stats(), time.Now()
	entries, err := f.List(ctx, dir)
	took, after := time.Since(start), f.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-stat; err != nil {
		t.Errorf("Stat while the listing was under way: %v", err)
	}
	var got []string
	for _, e := range entries {
		if e.Size != 4 || e.IsDir {
			t.Errorf("%s: %+v, want a file of 4 bytes", e.Name, e)
		}
		got = append(got, e.Name)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("List = %d names, want the %d files", len(got), len(want))
	}
	t.Logf("2,000 entries: %d bytes from the board in %d execs, %v", after.Received-before.Received, after.Execs-before.Execs, took.Round(time.Millisecond))
}

// On a board with a real heap, a directory whose listing page leaves more
// garbage than the heap holds (the rig's ESP32 at 100 KB free failed at
// about 150 entries, as a new user's FileZilla found) lists whole: the
// listing starts over in smaller pages.
func TestListingOnASmallHeap(t *testing.T) {
	f, b, dir := startWith(t, boardtest.ESP32, boardtest.Options{Baud: 115200, Heap: rig.RealHeap(rig.ESP32)}, boardfs.Options{})
	ctx := ctxFor(t, 2*time.Minute)
	if err := f.Mkdir(ctx, dir); err != nil {
		t.Fatal(err)
	}
	const n = 400
	for i := range n {
		name := fmt.Sprintf("%04d-%s.py", i, strings.Repeat("m", 20))
		if err := os.WriteFile(filepath.Join(hostPath(b, dir), name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := f.List(ctx, dir)
	if err != nil {
		t.Fatalf("listing %d entries on a 100 KB heap: %v", n, err)
	}
	if len(entries) != n {
		t.Errorf("listed %d entries, want %d", len(entries), n)
	}
	// The smaller pages stay: the next listing needs no second try.
	before := f.Stats()
	if entries, err = f.List(ctx, dir); err != nil || len(entries) != n {
		t.Fatalf("second listing: %d entries, %v", len(entries), err)
	}
	if d := f.Stats().Execs - before.Execs; d > n/5 {
		t.Errorf("the second listing took %d execs", d)
	}
}
