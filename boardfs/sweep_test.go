package boardfs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/boardfs"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
	"github.com/ftpbridge/ftpbridge/scripts/rig"
)

// nearMisses are names a user may give a file that are close to, but not,
// the names of upload temporaries: the old ".NAME.<8 hex>.ftpbridge" form
// among them. None is hidden from a listing or removed by the sweep.
var nearMisses = []string{
	".ftpbridge-0123abc",          // 7 hex digits
	".ftpbridge-0123abcde",        // 9
	".ftpbridge-0123ABCD",         // upper case
	".ftpbridge-0123abcg",         // not hex
	".ftpbridge-0123abc ",         // a space for a digit
	".ftpbridge-",                 // no digits
	"ftpbridge-0123abcd",          // no dot
	".ftpbridge_0123abcd",         // underscore
	".Ftpbridge-0123abcd",         // capital
	".ftpbridge-0123abcd.txt",     // a suffix
	"x.ftpbridge-0123abcd",        // a prefix
	".notes.deadbeef.ftpbridge",   // a user's, in the old temporaries' form
	".main.py.0123abcd.ftpbridge", // the old form itself
}

// TestSweep holds together the three places that know the names of
// upload temporaries: newTempName makes them, isTempName matches them
// (listings hide them, Create refuses them), and the board's sweep, at
// each connection of a Link, removes them. Names it makes are matched,
// hidden and swept; near misses are none of these (issue 11, items 1 and
// 6: the sweep missed the names the bridge made, and took a user's
// .notes.deadbeef.ftpbridge).
func TestSweep(t *testing.T) {
	t.Parallel()
	var made []string
	for range 50 {
		n := path.Base(boardfs.NewTempName("/d"))
		if !boardfs.IsTempName(n) {
			t.Errorf("IsTempName(%q) = false for a name NewTempName made", n)
		}
		made = append(made, n)
	}
	for _, n := range nearMisses {
		if boardfs.IsTempName(n) {
			t.Errorf("IsTempName(%q) = true, want false", n)
		}
	}
	for _, p := range []boardtest.Profile{boardtest.ESP32, boardtest.Microbit} {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			f, b, _ := startWith(t, p, boardtest.Options{}, boardfs.Options{})
			ctx := ctxFor(t, 2*time.Minute)
			dir, onBoard := "/d", func(n string) string { return "/d/" + n }
			if p == boardtest.Microbit {
				dir, onBoard = "/", func(n string) string { return n }
			} else if err := f.Mkdir(ctx, dir); err != nil {
				t.Fatal(err)
			}
			temps := made[:5]
			for _, n := range append(slices.Clone(temps), nearMisses...) {
				if err := f.WriteRaw(ctx, onBoard(n), "x"); err != nil {
					t.Fatalf("WriteRaw(%q): %v", n, err)
				}
			}
			// A user's file in the old temporaries' form, through boardfs.
			user := ".mine.cafef00d.ftpbridge"
			if err := f.WriteFile(ctx, path.Join(dir, user), strings.NewReader("mine"), 4); err != nil {
				t.Fatalf("WriteFile(%q): %v", user, err)
			}
			want := append(slices.Clone(nearMisses), user)
			slices.Sort(want)
			listed := func(f *boardfs.FS, when string) {
				t.Helper()
				entries, err := f.List(ctx, dir)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, e := range entries {
					got = append(got, e.Name)
				}
				slices.Sort(got)
				if !slices.Equal(got, want) {
					t.Errorf("List(%q) %s = %q, want %q", dir, when, got, want)
				}
			}
			listed(f, "before the sweep")
			f.Close()

			link, err := boardfs.Connect(ctx, boardfs.LinkOptions{
				Dial: func(context.Context) (boardfs.Port, error) { return b.Open() },
			})
			if err != nil {
				t.Fatal(err)
			}
			lctx, stop := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { link.Run(lctx); close(done) }()
			defer func() { stop(); <-done }()
			lf, err := link.FS()
			if err != nil {
				t.Fatal(err)
			}
			listed(lf, "after the sweep")
			for _, n := range temps {
				if _, err := lf.Stat(ctx, path.Join(dir, n)); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("Stat(%q) after the sweep: %v, want fs.ErrNotExist", n, err)
				}
			}
			if b.Root != "" {
				host, err := os.ReadDir(hostPath(b, dir))
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, e := range host {
					got = append(got, e.Name())
				}
				if !slices.Equal(got, want) {
					t.Errorf("host directory after the sweep = %q, want %q", got, want)
				}
			}
		})
	}
}

// TestReservedNames: the names of upload temporaries are refused as the
// target of a STOR, APPE, RNTO or MKD, with ErrReserved, before the board
// is asked, rather than accepted and then hidden and swept (issue 11,
// item 6).
func TestReservedNames(t *testing.T) {
	t.Parallel()
	f, b, dir := start(t, boardtest.ESP32, boardtest.Options{})
	ctx := ctxFor(t, time.Minute)
	if err := f.Mkdir(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if err := f.WriteFile(ctx, dir+"/mine.txt", strings.NewReader("mine"), 4); err != nil {
		t.Fatal(err)
	}
	reserved := dir + "/.ftpbridge-0123abcd"
	ops := []struct {
		name string
		op   func() error
	}{
		{"create", func() error { return f.WriteFile(ctx, reserved, strings.NewReader("data"), 4) }},
		{"append", func() error { _, err := f.Append(ctx, reserved); return err }},
		{"rename to", func() error { return f.Rename(ctx, dir+"/mine.txt", reserved) }},
		{"mkdir", func() error { return f.Mkdir(ctx, reserved) }},
	}
	for _, o := range ops {
		t.Run(o.name, func(t *testing.T) {
			before, execs := hostTree(t, b.Root), f.Stats().Execs
			err := o.op()
			if !errors.Is(err, boardfs.ErrReserved) || !errors.Is(err, boardfs.ErrBadName) {
				t.Errorf("%s %q: %v, want ErrReserved", o.name, reserved, err)
			}
			if n := f.Stats().Execs - execs; n != 0 {
				t.Errorf("%s took %d execs, want it refused before any", o.name, n)
			}
			if after := hostTree(t, b.Root); !slices.Equal(after, before) {
				t.Errorf("%s changed the board: %q, was %q", o.name, after, before)
			}
		})
	}
}

// TestLongNames: a name as long as the board takes (255 bytes on the
// rig's filesystem, as on littlefs and FAT) can be stored, overwritten,
// renamed over and read (issue 11, item 6: the temporary name was the
// target's name and 20 bytes more, so such a name could not be uploaded).
func TestLongNames(t *testing.T) {
	t.Parallel()
	f, b, dir := start(t, boardtest.ESP32, boardtest.Options{})
	ctx := ctxFor(t, time.Minute)
	if err := f.Mkdir(ctx, dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{strings.Repeat("L", 255), strings.Repeat("€", 85)} {
		t.Run(name[:3], func(t *testing.T) {
			p := dir + "/" + name
			for i, data := range []string{"first", "second, longer"} {
				if err := f.WriteFile(ctx, p, strings.NewReader(data), int64(len(data))); err != nil {
					t.Fatalf("WriteFile #%d of a %d-byte name: %v", i+1, len(name), err)
				}
				if got, err := os.ReadFile(hostPath(b, p)); err != nil || string(got) != data {
					t.Errorf("host file after write #%d = %q, %v", i+1, got, err)
				}
			}
			if err := f.WriteFile(ctx, dir+"/short", strings.NewReader("third"), 5); err != nil {
				t.Fatal(err)
			}
			if err := f.Rename(ctx, dir+"/short", p); err != nil {
				t.Fatalf("Rename over a %d-byte name: %v", len(name), err)
			}
			var back strings.Builder
			if _, err := f.ReadFile(ctx, p, 0, &back); err != nil || back.String() != "third" {
				t.Errorf("ReadFile = %q, %v, want third", back.String(), err)
			}
			if err := f.Remove(ctx, p); err != nil {
				t.Error(err)
			}
		})
	}
}

// A board whose sweep fails is still served: the sweep is housekeeping.
// The sweep fails here as it does on the emulated ESP32 with its real
// heap and 2,000 files (MemoryError: the VM collects garbage only between
// execs); the test says so if that stops being a way to fail it.
func TestSweepFailureIsNotFatal(t *testing.T) {
	t.Parallel()
	b := boardtest.Start(t, boardtest.ESP32, boardtest.Options{Heap: rig.RealHeap(rig.ESP32)})
	dir := filepath.Join(b.Root, "big")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%04d-nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn.csv", i)), []byte("t,v\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var logged bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logged}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := ctxFor(t, 2*time.Minute)
	link, err := boardfs.Connect(ctx, boardfs.LinkOptions{
		Dial: func(context.Context) (boardfs.Port, error) { return b.Open() },
		FS:   boardfs.Options{Logger: log},
	})
	if err != nil {
		t.Fatalf("Connect with a failing sweep: %v", err)
	}
	lctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { link.Run(lctx); close(done) }()
	defer func() { stop(); <-done }()
	mu.Lock()
	said := logged.String()
	mu.Unlock()
	if !strings.Contains(said, "could not remove interrupted uploads") {
		t.Fatalf("the sweep did not fail (log: %q): this test needs another way to fail it", said)
	}
	f, err := link.FS()
	if err != nil {
		t.Fatal(err)
	}
	if e, err := f.Stat(ctx, "/big/0042-nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn.csv"); err != nil || e.Size != 4 {
		t.Errorf("Stat after the failed sweep = %+v, %v; want a 4-byte file", e, err)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
