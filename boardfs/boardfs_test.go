package boardfs_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"

	"github.com/ftpbridge/ftpbridge/boardfs"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

// vmProfiles are the boards with a modern os module; the micro:bit's flat
// filesystem has tests of its own.
var vmProfiles = []boardtest.Profile{boardtest.ESP32, boardtest.ESP8266, boardtest.Pyboard}

func start(t testing.TB, p boardtest.Profile, opts boardtest.Options) (*boardfs.FS, *boardtest.Board, string) {
	t.Helper()
	return startWith(t, p, opts, boardfs.Options{})
}

func startWith(t testing.TB, p boardtest.Profile, opts boardtest.Options, opts2 boardfs.Options) (*boardfs.FS, *boardtest.Board, string) {
	t.Helper()
	b := boardtest.Start(t, p, opts)
	port, err := b.Open()
	if err != nil {
		t.Fatal(err)
	}
	if opts2.Clock == nil {
		// As ftpbridge does: files get true times on every profile.
		opts2.Clock = time.Now
	}
	f, err := boardfs.New(ctxFor(t, time.Minute), port, opts2)
	if err != nil {
		t.Fatalf("boardfs.New: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	// The directory the tests work in: the Pyboard's / is the VFS root,
	// where nothing can be created.
	base := "/"
	if p == boardtest.Pyboard {
		base = "/flash/"
	}
	return f, b, base + "t"
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func hostPath(b *boardtest.Board, p string) string {
	return filepath.Join(b.Root, filepath.FromSlash(p))
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestFilesRoundTrip(t *testing.T) {
	t.Parallel()
	for _, p := range vmProfiles {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			f, b, dir := start(t, p, boardtest.Options{})
			ctx := ctxFor(t, 2*time.Minute)
			if err := f.Mkdir(ctx, dir); err != nil {
				t.Fatal(err)
			}
			for _, size := range []int{0, 1, 127, 128, 129, 64*1024 + 1} {
				data := random(size)
				name := dir + "/f" + strings.Repeat("x", size%7)
				if err := f.WriteFile(ctx, name, bytes.NewReader(data), int64(size)); err != nil {
					t.Fatalf("WriteFile(%d bytes): %v", size, err)
				}
				if got, err := os.ReadFile(hostPath(b, name)); err != nil || !bytes.Equal(got, data) {
					t.Errorf("host sees %d bytes (%v), want the %d written", len(got), err, size)
				}
				var back bytes.Buffer
				if n, err := f.ReadFile(ctx, name, 0, &back); err != nil || n != int64(size) || !bytes.Equal(back.Bytes(), data) {
					t.Errorf("ReadFile(%d bytes) = %d, %v, equal %v", size, n, err, bytes.Equal(back.Bytes(), data))
				}
				if size > 10 {
					back.Reset()
					if _, err := f.ReadFile(ctx, name, 10, &back); err != nil || !bytes.Equal(back.Bytes(), data[10:]) {
						t.Errorf("ReadFile from offset 10: %v, equal %v", err, bytes.Equal(back.Bytes(), data[10:]))
					}
				}
				sum, err := f.Hash(ctx, name)
				if want := sha256.Sum256(data); err != nil || !bytes.Equal(sum, want[:]) {
					t.Errorf("Hash = %x, %v, want %x", sum, err, want)
				}
				e, err := f.Stat(ctx, name)
				if err != nil || e.IsDir || e.Size != int64(size) {
					t.Errorf("Stat = %+v, %v, want a file of %d bytes", e, err, size)
				}
			}
			entries, err := f.List(ctx, dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) == 0 {
				t.Fatal("List found nothing")
			}
			host, _ := os.ReadDir(hostPath(b, dir))
			var got, want []string
			for _, e := range entries {
				got = append(got, e.Name)
				if time.Since(e.ModTime).Abs() > time.Hour {
					t.Errorf("%s: mtime %v, want about now", e.Name, e.ModTime)
				}
			}
			for _, e := range host {
				want = append(want, e.Name())
			}
			sort.Strings(got)
			if strings.Join(got, "/") != strings.Join(want, "/") {
				t.Errorf("List = %q, host has %q", got, want)
			}
		})
	}
}

func TestDirectoriesAndRenames(t *testing.T) {
	t.Parallel()
	f, b, dir := start(t, boardtest.ESP32, boardtest.Options{})
	ctx := ctxFor(t, time.Minute)
	if err := f.Mkdir(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if err := f.Mkdir(ctx, dir); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Mkdir of an existing dir: %v, want fs.ErrExist", err)
	}
	deep := dir + "/a/b/c/d"
	for p := dir + "/a"; ; p += "/" + string(deep[len(p)+1]) {
		if err := f.Mkdir(ctx, p); err != nil {
			t.Fatal(err)
		}
		if p == deep {
			break
		}
	}
	if err := f.WriteFile(ctx, deep+"/x", strings.NewReader("new"), 3); err != nil {
		t.Fatal(err)
	}
	if err := f.WriteFile(ctx, deep+"/y", strings.NewReader("old"), 3); err != nil {
		t.Fatal(err)
	}
	if err := f.Rename(ctx, deep+"/x", deep+"/y"); err != nil {
		t.Fatalf("Rename over an existing file: %v", err)
	}
	if got, _ := os.ReadFile(hostPath(b, deep+"/y")); string(got) != "new" {
		t.Errorf("after rename y = %q, want new", got)
	}
	if err := f.RemoveDir(ctx, deep); !errors.Is(err, boardfs.ErrNotEmpty) {
		t.Errorf("RemoveDir of a non-empty dir: %v, want ErrNotEmpty", err)
	}
	if err := f.Remove(ctx, deep+"/y"); err != nil {
		t.Fatal(err)
	}
	if err := f.RemoveDir(ctx, deep); err != nil {
		t.Errorf("RemoveDir of an empty dir: %v", err)
	}
	if _, err := f.Stat(ctx, deep); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of a removed dir: %v, want fs.ErrNotExist", err)
	}
	if _, err := f.ReadFile(ctx, dir+"/missing", 0, io.Discard); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile of a missing file: %v, want fs.ErrNotExist", err)
	}
	if err := f.Remove(ctx, dir+"/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Remove of a missing file: %v, want fs.ErrNotExist", err)
	}
	if free, total, err := f.Space(ctx); err != nil || total <= 0 || free < 0 || free > total {
		t.Errorf("Space = %d, %d, %v", free, total, err)
	}
	for _, bad := range []string{"relative", "/a/../b", "/x\xff", "/nul\x00"} {
		if _, err := f.Stat(ctx, bad); !errors.Is(err, boardfs.ErrBadName) {
			t.Errorf("Stat(%q): %v, want ErrBadName", bad, err)
		}
	}
}

// TestHostileNames stores files whose names hold everything a name can,
// and proves with a canary that no name ran as code.
func TestHostileNames(t *testing.T) {
	t.Parallel()
	names := map[string]string{
		"quotes":         `it's "quoted"`,
		"triple quotes":  `a'''b"""c`,
		"backslashes":    `back\slash\\x41\'`,
		"newlines":       "line1\nline2\r\n",
		"trailing nl":    "name\n",
		"raw repl bytes": "a\x01b\x02c\x03d\x04e\x05",
		"code":           "');import os;os.mkdir('canary');('",
		"code in bytes":  "\\x27);import os;os.mkdir(\\x27canary\\x27)#",
		"non-ascii":      "näme € 日本 🙂",
		"punctuation":    "!#$%&()*+,-.;<=>?@[]^_`{|}~",
		"long":           strings.Repeat("L", 200),
	}
	for _, p := range vmProfiles {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			hostileNames(t, p, names)
		})
	}
}

func hostileNames(t *testing.T, p boardtest.Profile, names map[string]string) {
	f, b, dir := start(t, p, boardtest.Options{})
	ctx := ctxFor(t, 2*time.Minute)
	if err := f.Mkdir(ctx, dir); err != nil {
		t.Fatal(err)
	}
	for label, name := range names {
		t.Run(label, func(t *testing.T) {
			p := dir + "/" + name
			data := []byte("content of " + label)
			if err := f.WriteFile(ctx, p, bytes.NewReader(data), int64(len(data))); err != nil {
				t.Fatalf("WriteFile(%q): %v", p, err)
			}
			if got, err := os.ReadFile(filepath.Join(hostPath(b, dir), name)); err != nil || !bytes.Equal(got, data) {
				t.Errorf("host file %q = %q, %v", name, got, err)
			}
			entries, err := f.List(ctx, dir)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, e := range entries {
				found = found || e.Name == name
			}
			if !found {
				t.Errorf("List(%q) does not hold %q", dir, name)
			}
			if err := f.Rename(ctx, p, p+".renamed"); err != nil {
				t.Errorf("Rename(%q): %v", p, err)
			}
			if err := f.Remove(ctx, p+".renamed"); err != nil {
				t.Errorf("Remove(%q): %v", p+".renamed", err)
			}
		})
	}
	// The code would run with the board's working directory: / or /flash.
	for _, canary := range []string{"canary", "flash/canary"} {
		if _, err := os.Stat(filepath.Join(b.Root, canary)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a name ran as code: %s exists (%v)", canary, err)
		}
	}
}

// TestFailedUploadsLeaveTheOldFile: an upload the board cannot store, or
// whose source fails half-way, changes nothing and leaves no temporary file.
func TestFailedUploadsLeaveTheOldFile(t *testing.T) {
	t.Parallel()
	f, b, dir := start(t, boardtest.ESP8266, boardtest.Options{Baud: 115200})
	ctx := ctxFor(t, time.Minute)
	if err := f.Mkdir(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if err := f.WriteFile(ctx, dir+"/missing/x", strings.NewReader("data"), 4); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("upload into a missing directory: %v, want fs.ErrNotExist", err)
	}
	old := random(1000)
	if err := f.WriteFile(ctx, dir+"/keep", bytes.NewReader(old), int64(len(old))); err != nil {
		t.Fatal(err)
	}
	short := io.MultiReader(bytes.NewReader(random(600)), iotest.ErrReader(errors.New("client went away")))
	if err := f.WriteFile(ctx, dir+"/keep", short, 2000); err == nil {
		t.Errorf("upload from a failing source succeeded")
	}
	if got, _ := os.ReadFile(hostPath(b, dir+"/keep")); !bytes.Equal(got, old) {
		t.Errorf("the old file changed: %d bytes", len(got))
	}
	entries, err := f.List(ctx, dir)
	if err != nil || len(entries) != 1 || entries[0].Name != "keep" {
		t.Errorf("List after failed uploads = %+v, %v, want only keep", entries, err)
	}
}

func TestListIsOneExec(t *testing.T) {
	t.Parallel()
	f, b, dir := start(t, boardtest.ESP32, boardtest.Options{})
	ctx := ctxFor(t, time.Minute)
	if err := f.Mkdir(ctx, dir); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		os.WriteFile(filepath.Join(hostPath(b, dir), strings.Repeat("n", i+1)), []byte("x"), 0o644)
	}
	before := f.Stats().Execs
	entries, err := f.List(ctx, dir)
	if err != nil || len(entries) != 50 {
		t.Fatalf("List = %d entries, %v", len(entries), err)
	}
	if n := f.Stats().Execs - before; n != 1 {
		t.Errorf("List of 50 entries took %d execs, want 1", n)
	}
}

// TestSessionsTakeTurns: a listing gets the board between the segments of a
// long download, and an operation that cannot get the board in time gets
// ErrBusy instead of waiting on.
func TestSessionsTakeTurns(t *testing.T) {
	f, b, dir := startWith(t, boardtest.ESP32, boardtest.Options{Baud: 115200}, boardfs.Options{BusyWait: 3 * time.Second})
	ctx := ctxFor(t, 2*time.Minute)
	if err := f.Mkdir(ctx, dir); err != nil {
		t.Fatal(err)
	}
	big := random(96 * 1024) // about 8.5 s at 115200 baud
	if err := os.WriteFile(hostPath(b, dir+"/big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		var got bytes.Buffer
		_, err := f.ReadFile(ctx, dir+"/big", 0, &got)
		if err == nil && !bytes.Equal(got.Bytes(), big) {
			err = errors.New("download differs")
		}
		done <- err
	}()
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	if _, err := f.List(ctx, dir); err != nil {
		t.Errorf("List during a download: %v", err)
	}
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Errorf("List during a download took %v, want it between two segments", d)
	}
	select {
	case err := <-done:
		t.Errorf("the download ended (%v) before the listing was served between its segments", err)
	default:
	}
	if err := <-done; err != nil {
		t.Errorf("download: %v", err)
	}

	// Hold the board with one long exec: an upload segment at 9600 baud
	// takes over 4 s.
	slow, _, sdir := startWith(t, boardtest.ESP32, boardtest.Options{Baud: 9600}, boardfs.Options{BusyWait: 300 * time.Millisecond})
	if err := slow.Mkdir(ctx, sdir); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	written := make(chan struct{})
	go func() {
		defer close(written)
		slow.WriteFile(wctx, sdir+"/x", bytes.NewReader(random(4*1024)), 4*1024)
	}()
	time.Sleep(500 * time.Millisecond)
	if _, err := slow.List(ctx, sdir); !errors.Is(err, boardfs.ErrBusy) {
		t.Errorf("List while the board is held past BusyWait: %v, want ErrBusy", err)
	}
	// The upload must be over before the cleanup closes its conn.
	cancel()
	<-written
}

// FuzzPyStrOnBoard sends names through pyStr to a real board and back
// through the listing's hex: any valid name survives exactly.
func FuzzPyStrOnBoard(f *testing.F) {
	for _, s := range []string{"plain", "it's", "a\\b", "new\nline", "\x03\x04", "日本語", "'''", strings.Repeat("z", 100)} {
		f.Add(s)
	}
	fsys, b, dir := start(f, boardtest.ESP32, boardtest.Options{})
	ctx := ctxFor(f, 10*time.Minute)
	if err := fsys.Mkdir(ctx, dir); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") || !utf8.ValidString(name) || len(name) > 200 {
			t.Skip("not a single valid file name")
		}
		p := dir + "/" + name
		if err := os.WriteFile(filepath.Join(hostPath(b, dir), name), []byte("x"), 0o644); err != nil {
			t.Skip("the host cannot hold this name")
		}
		defer os.Remove(filepath.Join(hostPath(b, dir), name))
		e, err := fsys.Stat(ctx, p)
		if err != nil || e.Size != 1 {
			t.Fatalf("Stat(%q) = %+v, %v", p, e, err)
		}
		entries, err := fsys.List(ctx, dir)
		if err != nil || len(entries) != 1 || entries[0].Name != name {
			t.Fatalf("List = %+v, %v, want just %q", entries, err, name)
		}
	})
}

func TestPyboardMounts(t *testing.T) {
	t.Parallel()
	f, b, _ := start(t, boardtest.Pyboard, boardtest.Options{})
	ctx := ctxFor(t, time.Minute)
	data := random(3000)
	if err := f.WriteFile(ctx, "/flash/a.bin", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if err := f.Rename(ctx, "/flash/a.bin", "/sd/b.bin"); err != nil {
		t.Fatalf("Rename across mounts: %v", err)
	}
	if got, err := os.ReadFile(filepath.Join(b.Root, "sd", "b.bin")); err != nil || !bytes.Equal(got, data) {
		t.Errorf("sd/b.bin = %d bytes, %v", len(got), err)
	}
	if _, err := os.Stat(filepath.Join(b.Root, "flash", "a.bin")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("flash/a.bin still there after the move: %v", err)
	}
	if err := f.WriteFile(ctx, "/top.bin", bytes.NewReader(data), int64(len(data))); !errors.Is(err, boardfs.ErrBadName) {
		t.Errorf("creating a file in / (the VFS root): %v, want ErrBadName", err)
	}
	entries, err := f.List(ctx, "/")
	if err != nil || len(entries) != 2 {
		t.Errorf("List(/) = %+v, %v, want the two mounts", entries, err)
	}
}

// TestMicrobitFlatFiles runs the operations the micro:bit's flat
// filesystem has, on its real firmware.
func TestMicrobitFlatFiles(t *testing.T) {
	t.Parallel()
	f, _, _ := start(t, boardtest.Microbit, boardtest.Options{Baud: 115200})
	ctx := ctxFor(t, 3*time.Minute)
	for _, size := range []int{0, 1, 500} {
		data := random(size)
		name := "/f" + strings.Repeat("x", size%5) + ".bin"
		if err := f.WriteFile(ctx, name, bytes.NewReader(data), int64(size)); err != nil {
			t.Fatalf("WriteFile(%d bytes): %v", size, err)
		}
		var back bytes.Buffer
		if _, err := f.ReadFile(ctx, name, 0, &back); err != nil || !bytes.Equal(back.Bytes(), data) {
			t.Errorf("ReadFile(%d bytes): %v, equal %v", size, err, bytes.Equal(back.Bytes(), data))
		}
		if size > 10 {
			back.Reset()
			if _, err := f.ReadFile(ctx, name, 7, &back); err != nil || !bytes.Equal(back.Bytes(), data[7:]) {
				t.Errorf("ReadFile from offset 7: %v", err)
			}
		}
		back.Reset()
		if n, err := f.ReadFile(ctx, name, int64(size)+100, &back); err != nil || n != 0 {
			t.Errorf("ReadFile from past the end = %d, %v, want nothing", n, err)
		}
		if e, err := f.Stat(ctx, name); err != nil || e.Size != int64(size) {
			t.Errorf("Stat = %+v, %v, want %d bytes", e, err, size)
		}
	}
	for _, name := range []string{`it's`, `a\b`, "sp ace", "ünï"} {
		if err := f.WriteFile(ctx, "/"+name, strings.NewReader(name), int64(len(name))); err != nil {
			t.Errorf("WriteFile(%q): %v", name, err)
		}
	}
	if err := f.Rename(ctx, "/f.bin", "/g.bin"); err != nil {
		t.Errorf("Rename: %v", err)
	}
	entries, err := f.List(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name)
	}
	sort.Strings(names)
	if want := "a\\b/fx.bin/g.bin/it's/sp ace/ünï"; strings.Join(names, "/") != want {
		t.Errorf("List = %q, want %q", names, strings.Split(want, "/"))
	}
	for _, n := range names {
		if strings.HasPrefix(n, ".ftpbridge") {
			t.Errorf("temporary file %q left behind", n)
		}
	}
	if err := f.Remove(ctx, "/g.bin"); err != nil {
		t.Errorf("Remove: %v", err)
	}
	if _, err := f.Stat(ctx, "/g.bin"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of a removed file: %v, want fs.ErrNotExist", err)
	}
	if err := f.Remove(ctx, "/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Remove of a missing file: %v, want fs.ErrNotExist", err)
	}
	if err := f.Mkdir(ctx, "/d"); !errors.Is(err, boardfs.ErrNotSupported) {
		t.Errorf("Mkdir: %v, want ErrNotSupported", err)
	}
}

func TestListHidesUploadsInFlight(t *testing.T) {
	t.Parallel()
	f, b, dir := start(t, boardtest.ESP32, boardtest.Options{})
	ctx := ctxFor(t, time.Minute)
	if err := f.Mkdir(ctx, dir); err != nil {
		t.Fatal(err)
	}
	u, err := f.Create(ctx, dir+"/new.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if _, err := u.Write(random(40 << 10)); err != nil { // more than a span: on the board now
		t.Fatal(err)
	}
	host, _ := os.ReadDir(hostPath(b, dir))
	if len(host) != 1 {
		t.Fatalf("host sees %d files, want the one temporary file", len(host))
	}
	if entries, err := f.List(ctx, dir); err != nil || len(entries) != 0 {
		t.Errorf("List during an upload = %+v, %v, want nothing", entries, err)
	}
	if err := u.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if entries, err := f.List(ctx, dir); err != nil || len(entries) != 1 || entries[0].Name != "new.bin" {
		t.Errorf("List after the upload = %+v, %v, want new.bin", entries, err)
	}
}

// TestFlippedBitIsCaught: a bit flipped on the line during a download is
// caught by the frame's CRC-32 and the segment read again; the file that
// arrives is the file on the board.
func TestFlippedBitIsCaught(t *testing.T) {
	t.Parallel()
	for _, at := range []int64{30000, 30001, 45000} {
		f, b, dir := start(t, boardtest.ESP32, boardtest.Options{FlipAt: at})
		ctx := ctxFor(t, time.Minute)
		if err := f.Mkdir(ctx, dir); err != nil {
			t.Fatal(err)
		}
		data := random(64 * 1024)
		if err := os.WriteFile(hostPath(b, dir+"/data"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		before := f.Stats().Execs
		if _, err := f.ReadFile(ctx, dir+"/data", 0, &got); err != nil {
			t.Errorf("flip at %d: ReadFile: %v, want the segment read again", at, err)
		} else if !bytes.Equal(got.Bytes(), data) {
			t.Errorf("flip at %d: ReadFile succeeded with different data", at)
		}
		damaged := f.Stats().Execs - before
		// The same read again, with the flip spent, counts the segments.
		before = f.Stats().Execs
		if _, err := f.ReadFile(ctx, dir+"/data", 0, io.Discard); err != nil {
			t.Fatal(err)
		}
		if clean := f.Stats().Execs - before; damaged != clean+1 {
			t.Errorf("flip at %d: %d execs, want %d (one segment read again)", at, damaged, clean+1)
		}
	}
}

// TestFlippedBitOnMicrobit: the micro:bit's frames carry the sum of their
// bytes, which one flipped bit always changes.
func TestFlippedBitOnMicrobit(t *testing.T) {
	t.Parallel()
	f, b, _ := start(t, boardtest.Microbit, boardtest.Options{Baud: 115200})
	ctx := ctxFor(t, time.Minute)
	data := random(3000)
	if err := f.WriteFile(ctx, "/data.bin", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	before := f.Stats().Execs
	if _, err := f.ReadFile(ctx, "/data.bin", 0, io.Discard); err != nil {
		t.Fatal(err)
	}
	clean := f.Stats().Execs - before
	for _, at := range []int64{10, 1500, 2950} {
		b.FlipOut(at)
		before = f.Stats().Execs
		var got bytes.Buffer
		if _, err := f.ReadFile(ctx, "/data.bin", 0, &got); err != nil {
			t.Errorf("flip at %d: ReadFile: %v, want the segment read again", at, err)
		} else if !bytes.Equal(got.Bytes(), data) {
			t.Errorf("flip at %d: ReadFile succeeded with different data", at)
		}
		if damaged := f.Stats().Execs - before; damaged != clean+1 {
			t.Errorf("flip at %d: %d execs, want %d (one segment read again)", at, damaged, clean+1)
		}
	}
	// Listings and stat replies end with the sum of their bytes. The
	// flipped byte is the 6th of the reply: after OK, in the first line.
	b.FlipOut(6)
	before = f.Stats().Execs
	if entries, err := f.List(ctx, "/"); err != nil || len(entries) != 1 || entries[0].Name != "data.bin" || entries[0].Size != 3000 {
		t.Errorf("List with a flipped bit = %+v, %v, want data.bin of 3000 bytes", entries, err)
	}
	if execs := f.Stats().Execs - before; execs != 2 {
		t.Errorf("List with a flipped bit took %d execs, want 2", execs)
	}
	b.FlipOut(6)
	before = f.Stats().Execs
	if e, err := f.Stat(ctx, "/data.bin"); err != nil || e.Size != 3000 {
		t.Errorf("Stat with a flipped bit = %+v, %v, want 3000 bytes", e, err)
	}
	if execs := f.Stats().Execs - before; execs != 2 {
		t.Errorf("Stat with a flipped bit took %d execs, want 2", execs)
	}
}

// TestHelpersStay: after an exchange cut short (the conn interrupts the
// board and enters raw mode again) the board still holds the helpers, and
// only the check that it does crosses the line again, on every profile.
func TestHelpersStay(t *testing.T) {
	t.Parallel()
	for _, p := range boardtest.Profiles {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			f, b, _ := startWith(t, p, boardtest.Options{Baud: 115200}, boardfs.Options{})
			ctx := ctxFor(t, time.Minute)
			listing := func() int64 {
				before := f.Stats().Sent
				if _, err := f.List(ctx, "/"); err != nil {
					t.Fatal(err)
				}
				return f.Stats().Sent - before
			}
			plain := listing()
			if err := f.Interrupt(ctx); err != nil {
				t.Fatal(err)
			}
			again := listing()
			// Entering raw mode and asking for _fb cost a few hundred bytes;
			// the helpers are KBs.
			if again-plain > 400 {
				t.Errorf("a listing sent %d bytes, and %d after an interrupt: the helpers went again", plain, again)
			}
			t.Logf("listing: %d bytes; after an interrupt: %d", plain, again)
			b.Reset()
			time.Sleep(500 * time.Millisecond) // the board boots
			var afterReset int64
			var err error
			for range 2 { // the first may meet the reset
				before := f.Stats().Sent
				if _, err = f.List(ctx, "/"); err == nil {
					afterReset = f.Stats().Sent - before
					break
				}
			}
			if err != nil || afterReset-plain < 400 {
				t.Errorf("after a reset a listing sent %d bytes (%v): want the helpers installed again", afterReset, err)
			}
		})
	}
}

// TestHelpersComeBack: a board reset wipes the helpers; the next operation
// finds them again.
func TestHelpersComeBack(t *testing.T) {
	t.Parallel()
	f, b, dir := start(t, boardtest.ESP32, boardtest.Options{})
	ctx := ctxFor(t, time.Minute)
	if err := f.Mkdir(ctx, dir); err != nil {
		t.Fatal(err)
	}
	b.Reset()
	time.Sleep(500 * time.Millisecond) // the board boots
	before := f.Stats().Sent
	if _, err := f.List(ctx, dir); err != nil && !errors.Is(err, boardfs.ErrBoardReset) {
		t.Fatalf("List right after a reset: %v", err)
	}
	if entries, err := f.List(ctx, dir); err != nil || len(entries) != 0 {
		t.Errorf("List after a reset = %+v, %v, want an empty directory", entries, err)
	}
	// The helpers are KBs; a listing with them in place a few hundred bytes.
	if sent := f.Stats().Sent - before; sent < 2000 {
		t.Errorf("the listings after a reset sent %d bytes: the helpers did not go again, so the reset missed", sent)
	}
}
