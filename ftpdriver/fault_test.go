package ftpdriver_test

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"

	"github.com/ftpbridge/ftpbridge/ftpdriver"
	"github.com/ftpbridge/ftpbridge/ftpdriver/ftptest"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

// logBuffer keeps what the server logs, for tests that check a fault was
// seen and handled, and passes it on to the test's output.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	out io.Writer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	return l.out.Write(p)
}

func (l *logBuffer) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.buf.String(), s)
}

func capture(t *testing.T) (*slog.Logger, *logBuffer) {
	lb := &logBuffer{out: t.Output()}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelInfo})), lb
}

// tryRetr downloads p and returns its bytes and the first error: from the
// data connection or from the reply that ends the transfer.
func tryRetr(c *ftp.ServerConn, p string) ([]byte, error) {
	r, err := c.Retr(p)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(r)
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	return b, err
}

// waitBack polls with LIST until the board answers again, and returns the
// errors seen while it was away.
func waitBack(t *testing.T, c *ftp.ServerConn, within time.Duration) []error {
	t.Helper()
	var seen []error
	deadline := time.Now().Add(within)
	for {
		_, err := c.List("/")
		if err == nil {
			return seen
		}
		seen = append(seen, err)
		if time.Now().After(deadline) {
			t.Fatalf("the board did not come back within %v; last reply: %v", within, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// noTemporaries fails when an upload's temporary file is left in dir.
func noTemporaries(t *testing.T, root, dir string) {
	t.Helper()
	for _, n := range hostNames(t, root, dir) {
		if strings.HasSuffix(n, ".ftpbridge") || strings.HasPrefix(n, ".ftpbridge-") {
			t.Errorf("temporary file %q left in %s", n, dir)
		}
	}
}

// The line is cut in the middle of a download: the client gets an error,
// never a short file reported complete; while the board is away a request
// gets "board not connected"; once it is plugged back in the bridge takes
// it back by itself and the same download is exact.
func TestUnplugDuringDownload(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	want := randomBytes(64<<10, 61)
	put(t, root, "big.bin", want)
	s := ftptest.Start(t, ftptest.Options{Board: boardtest.Options{
		Root: root, CutAfter: 30_000, ReplugAfter: 3 * time.Second,
	}})
	c := s.Dial(t)

	got, err := tryRetr(c, "/big.bin")
	if err == nil {
		t.Fatalf("RETR cut after %d of %d bytes reported success", len(got), len(want))
	}
	t.Logf("cut RETR: %d bytes, %v", len(got), err)
	if _, err := c.List("/"); err == nil || !strings.Contains(err.Error(), "board not connected") {
		t.Errorf("LIST while the board is away: %v, want a \"board not connected\" reply", err)
	}
	away := waitBack(t, c, 30*time.Second)
	for _, err := range away {
		if !strings.Contains(err.Error(), "not connected") && !strings.Contains(err.Error(), "try again") {
			t.Errorf("reply while the board was away: %v", err)
		}
	}
	if got, err := tryRetr(c, "/big.bin"); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("RETR after the replug: %d bytes (equal %v), %v", len(got), bytes.Equal(got, want), err)
	}
}

// The line is cut in the middle of an upload over an existing file: the
// client gets an error, the old file stays whole, and the temporary file the
// upload left is removed when the board comes back.
func TestUnplugDuringUpload(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	old := []byte("print('old')\n")
	put(t, root, "main.py", old)
	s := ftptest.Start(t, ftptest.Options{Board: boardtest.Options{
		Root: root, CutAfter: 30_000, ReplugAfter: 2 * time.Second,
	}})
	c := s.Dial(t)

	data := randomBytes(64<<10, 62)
	if err := c.Stor("/main.py", bytes.NewReader(data)); err == nil {
		t.Fatal("STOR cut in the middle reported success")
	} else {
		t.Logf("cut STOR: %v", err)
	}
	waitBack(t, c, 30*time.Second)
	if got := get(t, root, "main.py"); !bytes.Equal(got, old) {
		t.Errorf("main.py after a cut upload holds %d bytes, want the old %d", len(got), len(old))
	}
	noTemporaries(t, root, "/")
	if err := c.Stor("/main.py", bytes.NewReader(data)); err != nil {
		t.Fatalf("STOR after the replug: %v", err)
	}
	if got := get(t, root, "main.py"); !bytes.Equal(got, data) {
		t.Errorf("main.py after the second upload holds %d bytes, want %d", len(got), len(data))
	}
}

// The line is cut while a listing is on the wire: LIST fails, and the
// next one, once the board is back, is whole.
func TestUnplugDuringList(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	var names []string
	for i := range 600 {
		n := strings.Repeat("x", 40) + string(rune('a'+i%26)) + "-" + string(rune('a'+i/26))
		put(t, root, n, nil)
		names = append(names, n)
	}
	slices.Sort(names)
	// Startup moves a few KB, over 12 KB when the board boots slowly and
	// repl's first try to enter raw mode meets silence and sends its 8 KB
	// of Ctrl-C; the listing of 600 long names about 33 KB
	// (raw names, in pages of 4 KB).
	s := ftptest.Start(t, ftptest.Options{Board: boardtest.Options{
		Root: root, CutAfter: 30_000, ReplugAfter: 2 * time.Second,
	}, Driver: ftpdriver.Options{CacheTTL: -1}})
	c := s.Dial(t)
	if got, err := c.NameList("/"); err == nil {
		t.Fatalf("NLST cut in the middle reported success with %d names", len(got))
	}
	waitBack(t, c, 30*time.Second)
	got, err := c.NameList("/")
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		got[i] = strings.TrimPrefix(got[i], "/")
	}
	slices.Sort(got)
	if !slices.Equal(got, names) {
		t.Errorf("NLST after the replug: %d names, want %d", len(got), len(names))
	}
}

// The board resets (its reset button) in the middle of a download: the
// segment it was sending is read again, and the file arrives exact.
func TestResetDuringDownload(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	want := randomBytes(48<<10, 63)
	put(t, root, "big.bin", want)
	log, logs := capture(t)
	s := ftptest.Start(t, ftptest.Options{Board: boardtest.Options{Root: root, Baud: 115200}, Driver: ftpdriver.Options{Logger: log}})
	c := s.Dial(t)

	r, err := c.Retr("/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 14<<10)
	if _, err := io.ReadFull(r, head); err != nil {
		t.Fatal(err)
	}
	s.Board.Reset()
	rest, err := io.ReadAll(r)
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	got := append(head, rest...)
	if err == nil && !bytes.Equal(got, want) {
		t.Fatalf("RETR across a reset reported success with %d wrong bytes", len(got))
	}
	if err != nil {
		t.Fatalf("RETR across a reset: %v (after %d bytes)", err, len(got))
	}
	if !logs.contains("reading it again") {
		t.Error("no segment was read again: the reset did not land inside the transfer")
	}
	if got, err := tryRetr(c, "/big.bin"); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("RETR after the reset: %d bytes, %v", len(got), err)
	}
}

// The board resets in the middle of an upload: the old file stays whole
// unless the upload completes, no temporary is left, and the next upload
// works. The reset is pressed once the board holds part of the upload in
// its temporary file, however much of it the host takes in first (the
// spool takes it all at once).
func TestResetDuringUpload(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	old := []byte("print('old')\n")
	put(t, root, "main.py", old)
	s := ftptest.Start(t, ftptest.Options{Board: boardtest.Options{Root: root, Baud: 115200}})
	c := s.Dial(t)

	data := randomBytes(48<<10, 64)
	stored := make(chan error, 1)
	go func() { stored <- c.Stor("/main.py", bytes.NewReader(data)) }()
	waitTemporary(t, root, stored)
	held := temporaryBytes(t, root)
	s.Board.Reset()
	// Inside the upload: the board held part of it, and the target was
	// still the old file once the reset was done.
	if held <= 0 || held >= int64(len(data)) {
		t.Fatalf("the reset came when the upload's temporary held %d of %d bytes: not inside the upload", held, len(data))
	}
	if got := get(t, root, "main.py"); !bytes.Equal(got, old) {
		t.Fatalf("main.py was replaced by the time the reset was done: the reset came after the upload")
	}
	err := <-stored
	// A 226 comes once the upload is safe in the spool, which writes it
	// again after a reset; either way the spool is done before the board's
	// files say anything.
	s.WaitUploads(t, 60*time.Second)
	if err == nil {
		if got := get(t, root, "main.py"); !bytes.Equal(got, data) {
			t.Fatalf("STOR across a reset reported success; main.py holds %d bytes", len(got))
		}
		t.Log("the upload completed across the reset")
	} else {
		t.Logf("STOR across a reset: %v", err)
		if got := get(t, root, "main.py"); !bytes.Equal(got, old) {
			t.Errorf("main.py after a failed upload holds %d bytes, want the old %d", len(got), len(old))
		}
	}
	noTemporaries(t, root, "/")
	if err := c.Stor("/main.py", bytes.NewReader(data)); err != nil {
		t.Fatalf("STOR after the reset: %v", err)
	}
	s.WaitUploads(t, 60*time.Second)
	if got := get(t, root, "main.py"); !bytes.Equal(got, data) {
		t.Errorf("main.py holds %d bytes, want %d", len(got), len(data))
	}
}

// waitTemporary waits until an upload's temporary file in root holds
// bytes; it fails the test if the upload ends first.
func waitTemporary(t *testing.T, root string, done <-chan error) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); temporaryBytes(t, root) == 0; time.Sleep(10 * time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("the upload ended (%v) before its temporary file held a byte", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no upload temporary file held a byte within 30 s")
		}
	}
}

// temporaryBytes is the size of the upload temporary file in root, 0 if
// there is none.
func temporaryBytes(t *testing.T, root string) int64 {
	t.Helper()
	for _, n := range hostNames(t, root, "/") {
		if fi, err := os.Stat(filepath.Join(root, n)); err == nil && strings.HasPrefix(n, ".ftpbridge-") {
			return fi.Size()
		}
	}
	return 0
}

// A bit flips on the line in the middle of a download: the frame's CRC-32
// catches it, the segment is read again, and the file arrives exact.
func TestFlippedBitDuringDownload(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	want := randomBytes(32<<10, 65)
	put(t, root, "big.bin", want)
	log, logs := capture(t)
	s := ftptest.Start(t, ftptest.Options{Board: boardtest.Options{Root: root, FlipAt: 20_000}, Driver: ftpdriver.Options{Logger: log}})
	c := s.Dial(t)
	got, err := tryRetr(c, "/big.bin")
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("RETR with a flipped bit: %d bytes (equal %v), %v", len(got), bytes.Equal(got, want), err)
	}
	if !logs.contains("CRC-32") {
		t.Error("no damaged frame was seen: the flipped bit missed the transfer")
	}
}

// Replies give the reason in words, without the library's names for its
// own calls ("driver error: calling GetHandle:") or "network error" for a
// board that went away. No board is plugged in for the first part.
func TestRepliesCarryNoLibraryJargon(t *testing.T) {
	t.Parallel()
	jargon := []string{"driver error", "GetHandle", "OpenFile", "network error", "error transferring data"}
	check := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s succeeded, want a refusal", what)
			return
		}
		for _, j := range jargon {
			if strings.Contains(err.Error(), j) {
				t.Errorf("%s: reply %q says %q", what, err, j)
			}
		}
	}
	t.Run("unplugged", func(t *testing.T) {
		t.Parallel()
		s := ftptest.StartUnplugged(t, ftptest.Options{})
		c := s.Dial(t)
		_, err := tryRetr(c, "/main.py")
		check("RETR", err)
		check("STOR", c.Stor("/main.py", strings.NewReader("print(1)")))
	})
	t.Run("cut", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		put(t, root, "big.bin", randomBytes(64<<10, 62))
		s := ftptest.Start(t, ftptest.Options{Board: boardtest.Options{Root: root, CutAfter: 30_000}})
		_, err := tryRetr(s.Dial(t), "/big.bin")
		check("RETR cut mid-way", err)
	})
}
