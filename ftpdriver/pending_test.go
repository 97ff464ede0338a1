package ftpdriver_test

import (
	"bytes"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"

	"github.com/ftpbridge/ftpbridge/ftpdriver"
	"github.com/ftpbridge/ftpbridge/ftpdriver/ftptest"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

// idleConn gives up after limit without a byte moving either way, as
// FileZilla ("Connection timed out after 20 seconds of inactivity") and
// Python's ftplib with timeout=20 do: each read and write may wait limit.
type idleConn struct {
	net.Conn
	limit time.Duration
}

func (c idleConn) Read(p []byte) (int, error) {
	_ = c.SetReadDeadline(time.Now().Add(c.limit))
	return c.Conn.Read(p)
}

func (c idleConn) Write(p []byte) (int, error) {
	_ = c.SetWriteDeadline(time.Now().Add(c.limit))
	return c.Conn.Write(p)
}

// withIdleTimeout dials the control and data connections as idleConns.
func withIdleTimeout(limit time.Duration) ftp.DialOption {
	return ftp.DialWithDialFunc(func(network, addr string) (net.Conn, error) {
		conn, err := net.DialTimeout(network, addr, limit)
		if err != nil {
			return nil, err
		}
		return idleConn{Conn: conn, limit: limit}, nil
	})
}

// A client with FileZilla's 20-second inactivity timeout uploads 400 KB
// at 115200 baud, which takes the line about 37 s: the OS takes the whole
// file at once, and the client then hears nothing until the 226. It must
// get success, and what it reads back at once (RETR, SIZE, LIST) must be
// the new file; the board ends with it.
func TestUploadOutlastsClientTimeout(t *testing.T) {
	t.Parallel()
	s := ftptest.Start(t, ftptest.Options{Board: boardtest.Options{Baud: 115200}})
	root := s.Board.Root
	put(t, root, "big.bin", []byte("the old file\n"))
	c := s.Dial(t, withIdleTimeout(20*time.Second))
	data := randomBytes(400<<10, 91)

	start := time.Now()
	if err := c.Stor("/big.bin", bytes.NewReader(data)); err != nil {
		t.Fatalf("STOR of 400 KB with a 20 s inactivity timeout: %v (after %v)", err, time.Since(start))
	}
	t.Logf("STOR answered after %v", time.Since(start))
	if got, err := tryRetr(c, "/big.bin"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("RETR right after the STOR: %d bytes (the new file: %v), %v", len(got), bytes.Equal(got, data), err)
	}
	if n, err := c.FileSize("/big.bin"); err != nil || n != int64(len(data)) {
		t.Errorf("SIZE right after the STOR = %d, %v; want %d", n, err, len(data))
	}
	entries, err := c.List("/")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range entries {
		if e.Name == "big.bin" {
			found = true
			if e.Size != uint64(len(data)) {
				t.Errorf("LIST right after the STOR shows big.bin with %d bytes, want %d", e.Size, len(data))
			}
		}
	}
	if !found {
		t.Errorf("LIST right after the STOR does not show big.bin: %v", entryNames(entries))
	}
	waitBoardFile(t, root, "big.bin", data, 90*time.Second)
	noTemporaries(t, root, "/")
}

// waitBoardFile waits until the board holds want at name.
func waitBoardFile(t *testing.T, root, name string, want []byte, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := getMaybe(root, name)
		if bytes.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v the board holds %d bytes at %s, want %d", within, len(got), name, len(want))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// getMaybe reads a board file from the host side; nil when it is absent.
func getMaybe(root, name string) []byte {
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
	if err != nil {
		return nil
	}
	return b
}

// pendingServer starts a board at 115200 baud whose uploads answer after
// 100 ms, so that a file of a few tens of KB (a few seconds of the line)
// is still pending when the client's next command comes.
func pendingServer(t *testing.T, driver ftpdriver.Options) (*ftptest.Server, *logBuffer) {
	t.Helper()
	log, logs := capture(t)
	driver.Logger = log
	if driver.UploadWait == 0 {
		driver.UploadWait = 100 * time.Millisecond
	}
	return ftptest.Start(t, ftptest.Options{Board: boardtest.Options{Baud: 115200}, Driver: driver}), logs
}

// listed returns the names and sizes LIST shows in dir.
func listed(t *testing.T, c *ftp.ServerConn, dir string) map[string]uint64 {
	t.Helper()
	entries, err := c.List(dir)
	if err != nil {
		t.Fatalf("LIST %s: %v", dir, err)
	}
	m := map[string]uint64{}
	for _, e := range entries {
		m[e.Name] = e.Size
	}
	return m
}

// waitBoardGone waits until name is not on the board.
func waitBoardGone(t *testing.T, root, name string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if _, err := os.Lstat(filepath.Join(root, filepath.FromSlash(name))); os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v %s is still on the board", within, name)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitSettled waits until the spool has nothing pending: every upload
// landed, was given up or failed.
func waitSettled(t *testing.T, spoolDir string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var pending []string
		_ = filepath.WalkDir(spoolDir, func(p string, de fs.DirEntry, err error) error {
			if err == nil && !de.IsDir() && !strings.Contains(p, string(filepath.Separator)+"failed"+string(filepath.Separator)) {
				pending = append(pending, p)
			}
			return nil
		})
		if len(pending) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v the spool still holds %q", within, pending)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// A rename of a file still being written to the board is folded into its
// upload and answered at once, as rclone (name.XXXXXXXX.partial) and kio
// (x.part) need: they upload to a temporary name and rename it over the
// target straight away. The client sees the new name at once; the board
// ends with the target holding the new bytes and nothing at the names the
// renames took, stale files included.
func TestRenameFoldsIntoPendingUpload(t *testing.T) {
	t.Parallel()
	s, logs := pendingServer(t, ftpdriver.Options{})
	root := s.Board.Root
	c := s.Dial(t)

	t.Run("kio over a stale part", func(t *testing.T) {
		put(t, root, "x.py", []byte("old x\n"))
		put(t, root, "x.py.part", []byte("a part an earlier upload left\n"))
		data := randomBytes(32<<10, 92)
		if err := c.Stor("/x.py.part", bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		if err := c.Rename("/x.py.part", "/x.py"); err != nil {
			t.Fatalf("RNFR/RNTO of the pending x.py.part: %v", err)
		}
		if !logs.contains("rename folded into the pending upload") {
			t.Error("the rename was not folded into the pending upload")
		}
		l := listed(t, c, "/")
		if l["x.py"] != uint64(len(data)) {
			t.Errorf("LIST right after the rename shows x.py with %d bytes, want %d", l["x.py"], len(data))
		}
		if _, ok := l["x.py.part"]; ok {
			t.Error("LIST right after the rename still shows x.py.part")
		}
		if _, err := c.FileSize("/x.py.part"); replyCode(err) != 550 {
			t.Errorf("SIZE /x.py.part after the rename = %v, want 550", err)
		}
		if got, err := tryRetr(c, "/x.py"); err != nil || !bytes.Equal(got, data) {
			t.Errorf("RETR /x.py right after the rename: %d bytes, %v", len(got), err)
		}
		waitBoardFile(t, root, "x.py", data, 60*time.Second)
		waitBoardGone(t, root, "x.py.part", 10*time.Second)
	})

	t.Run("rclone, then renamed again over a file", func(t *testing.T) {
		put(t, root, "b.bin", []byte("old b\n"))
		data := randomBytes(32<<10, 93)
		if err := c.Stor("/a.0badcafe.partial", bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		if err := c.Rename("/a.0badcafe.partial", "/b.bin"); err != nil {
			t.Fatal(err)
		}
		if err := c.Rename("/b.bin", "/c.bin"); err != nil {
			t.Fatal(err)
		}
		l := listed(t, c, "/")
		for _, gone := range []string{"a.0badcafe.partial", "b.bin"} {
			if _, ok := l[gone]; ok {
				t.Errorf("LIST after the renames still shows %s", gone)
			}
		}
		if l["c.bin"] != uint64(len(data)) {
			t.Errorf("LIST after the renames shows c.bin with %d bytes, want %d", l["c.bin"], len(data))
		}
		waitBoardFile(t, root, "c.bin", data, 60*time.Second)
		waitBoardGone(t, root, "b.bin", 10*time.Second)
		waitBoardGone(t, root, "a.0badcafe.partial", 10*time.Second)
	})
	waitSettled(t, s.Spool, 30*time.Second)
	noTemporaries(t, root, "/")
}

// DELE of a file still being written to the board gives its upload up:
// the client hears at once, and the board ends without the file (its old
// version included) and without the names a folded rename took.
func TestDeletePendingUpload(t *testing.T) {
	t.Parallel()
	s, logs := pendingServer(t, ftpdriver.Options{})
	root := s.Board.Root
	c := s.Dial(t)

	put(t, root, "d.bin", []byte("old d\n"))
	if err := c.Stor("/d.bin", bytes.NewReader(randomBytes(48<<10, 94))); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete("/d.bin"); err != nil {
		t.Fatalf("DELE of the pending d.bin: %v", err)
	}
	if !logs.contains("the pending upload is given up") {
		t.Error("the pending upload was not given up by DELE")
	}
	if _, ok := listed(t, c, "/")["d.bin"]; ok {
		t.Error("LIST after DELE still shows d.bin")
	}
	if _, err := c.FileSize("/d.bin"); replyCode(err) != 550 {
		t.Errorf("SIZE /d.bin after DELE = %v, want 550", err)
	}

	put(t, root, "e.py", []byte("old e\n"))
	if err := c.Stor("/e.py.part", bytes.NewReader(randomBytes(48<<10, 95))); err != nil {
		t.Fatal(err)
	}
	if err := c.Rename("/e.py.part", "/e.py"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete("/e.py"); err != nil {
		t.Fatalf("DELE of the pending, renamed e.py: %v", err)
	}
	waitSettled(t, s.Spool, 30*time.Second)
	for _, n := range []string{"d.bin", "e.py", "e.py.part"} {
		waitBoardGone(t, root, n, 10*time.Second)
	}
	noTemporaries(t, root, "/")
}

// A second upload of a file still being written lands after it, and the
// board ends with the second; one that would wait past its bound is told
// why, in words.
func TestUploadAfterPendingUpload(t *testing.T) {
	t.Parallel()
	t.Run("in order", func(t *testing.T) {
		t.Parallel()
		s, _ := pendingServer(t, ftpdriver.Options{})
		c := s.Dial(t)
		if err := c.Stor("/o.bin", bytes.NewReader(randomBytes(24<<10, 96))); err != nil {
			t.Fatal(err)
		}
		second := randomBytes(3000, 97)
		if err := c.Stor("/o.bin", bytes.NewReader(second)); err != nil {
			t.Fatalf("a second STOR of the pending o.bin: %v", err)
		}
		waitSettled(t, s.Spool, 30*time.Second)
		if got := get(t, s.Board.Root, "o.bin"); !bytes.Equal(got, second) {
			t.Errorf("the board holds %d bytes at o.bin, want the second upload's %d", len(got), len(second))
		}
	})
	t.Run("into no directory, queued", func(t *testing.T) {
		t.Parallel()
		// The second upload waits for the board behind the first: what
		// the bridge can see is refused before its 226.
		s, _ := pendingServer(t, ftpdriver.Options{})
		c := s.Dial(t)
		put(t, s.Board.Root, "file", []byte("a file"))
		if err := c.Stor("/q.bin", bytes.NewReader(randomBytes(32<<10, 105))); err != nil {
			t.Fatal(err)
		}
		for p, words := range map[string]string{
			"/nodir/x.bin": "no such file or directory",
			"/file/x.bin":  "a part of the path is a file, not a directory",
		} {
			if err := c.Stor(p, strings.NewReader("x")); replyCode(err) != 550 || !strings.Contains(err.Error(), words) {
				t.Errorf("STOR %s = %v, want 550 %s", p, err, words)
			}
		}
		s.WaitUploads(t, time.Minute)
	})
	t.Run("busy past the bound", func(t *testing.T) {
		t.Parallel()
		// Operations wait half of OpTimeout for a pending upload.
		s, _ := pendingServer(t, ftpdriver.Options{OpTimeout: 2 * time.Second})
		c := s.Dial(t)
		if err := c.MakeDir("/d"); err != nil {
			t.Fatal(err)
		}
		data := randomBytes(64<<10, 98)
		if err := c.Stor("/d/p.bin", bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		// 450: a client may try again (lftp does, and gave up on 550).
		err := c.RemoveDir("/d")
		if replyCode(err) != 450 || !strings.Contains(err.Error(), "is still being written to the board") {
			t.Errorf("RMD of d while an upload into it is written = %v, want 450 and a busy reply saying why", err)
		}
		// An upload's stays 550: lftp takes a 4xx to STOR as a partial
		// upload to resume from SIZE, which is the old file's.
		err = c.Stor("/d/p.bin", bytes.NewReader([]byte("second")))
		if replyCode(err) != 550 || !strings.Contains(err.Error(), "is still being written to the board") {
			t.Errorf("STOR of p.bin while its first upload is written = %v, want 550 and a busy reply saying why", err)
		}
		waitSettled(t, s.Spool, 60*time.Second)
		if got := get(t, s.Board.Root, "d/p.bin"); !bytes.Equal(got, data) {
			t.Errorf("the board holds %d bytes at d/p.bin, want the first upload's %d", len(got), len(data))
		}
	})
}

// A board write that fails after its client heard success is never
// silent: it is logged, the data is kept in the spool's failed/ folder,
// and the next operation on the path is told why, in words, once. Here a
// program on the board makes a directory where the file was to land, so
// the board refuses the final rename.
func TestPendingUploadFails(t *testing.T) {
	t.Parallel()
	s, logs := pendingServer(t, ftpdriver.Options{})
	root := s.Board.Root
	c := s.Dial(t)
	data := randomBytes(48<<10, 99)
	if err := c.Stor("/f.bin", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "f.bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !logs.contains("could not be written to the board") {
		if time.Now().After(deadline) {
			t.Fatal("no failure logged within 60 s")
		}
		time.Sleep(250 * time.Millisecond)
	}
	_, err := c.FileSize("/f.bin")
	if err == nil || !strings.Contains(err.Error(), "the upload of /f.bin received at") || !strings.Contains(err.Error(), "could not be written to the board") {
		t.Errorf("SIZE /f.bin after its write failed = %v, want a reply saying the upload was not written and why", err)
	}
	if _, err := c.FileSize("/f.bin"); err != nil && strings.Contains(err.Error(), "could not be written") {
		t.Errorf("the failure was told twice: %v", err)
	}
	kept, err := filepath.Glob(filepath.Join(s.Spool, "failed", "*-f.bin"))
	if err != nil || len(kept) != 1 {
		t.Fatalf("failed/ holds %q (%v), want the one upload", kept, err)
	}
	if got, err := os.ReadFile(kept[0]); err != nil || !bytes.Equal(got, data) {
		t.Errorf("the kept upload holds %d bytes (%v), want the %d uploaded", len(got), err, len(data))
	}
	if note, err := os.ReadFile(kept[0] + ".txt"); err != nil || !strings.Contains(string(note), "path: /f.bin") {
		t.Errorf("the note beside the kept upload: %q, %v", note, err)
	}
	waitSettled(t, s.Spool, 10*time.Second)
	noTemporaries(t, root, "/")
}

// The board is unplugged while an upload is written in the background,
// after its client heard success, and plugged back 2 s later: the write
// starts again once the board is back, and the file lands whole.
func TestPendingUploadAcrossUnplug(t *testing.T) {
	t.Parallel()
	log, logs := capture(t)
	// Starting takes a few KB; 64 KB of random bytes take the line about
	// 6 s, so the cut comes in the middle of the write.
	s := ftptest.Start(t, ftptest.Options{
		Board:  boardtest.Options{Baud: 115200, CutAfter: 40_000, ReplugAfter: 2 * time.Second},
		Driver: ftpdriver.Options{Logger: log, UploadWait: 100 * time.Millisecond},
	})
	c := s.Dial(t)
	data := randomBytes(64<<10, 100)
	if err := c.Stor("/u.bin", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	waitBoardFile(t, s.Board.Root, "u.bin", data, 90*time.Second)
	if !logs.contains("the board left during the write") {
		t.Error("the cut did not land in the background write")
	}
	waitSettled(t, s.Spool, 10*time.Second)
	noTemporaries(t, s.Board.Root, "/")
}

// Ctrl-C waits for the uploads still being written, saying so; pressed
// twice, it leaves them in the spool, and the next start for the same
// board writes them.
func TestStopWithPendingUploads(t *testing.T) {
	t.Parallel()
	t.Run("waits", func(t *testing.T) {
		t.Parallel()
		s, logs := pendingServer(t, ftpdriver.Options{})
		c := s.Dial(t)
		data := randomBytes(32<<10, 101)
		if err := c.Stor("/w.bin", bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		if err := s.Stop(); err != nil {
			t.Fatal(err)
		}
		if got := getMaybe(s.Board.Root, "w.bin"); !bytes.Equal(got, data) {
			t.Errorf("after Stop the board holds %d bytes at w.bin, want %d", len(got), len(data))
		}
		if !logs.contains("waiting for 1 upload(s), 32768 bytes") {
			t.Error("Stop did not say what it waits for")
		}
	})
	t.Run("twice, then the next start", func(t *testing.T) {
		t.Parallel()
		root, dir := t.TempDir(), t.TempDir()
		log, logs := capture(t)
		opts := ftptest.Options{
			Board: boardtest.Options{Root: root, Baud: 115200},
			// The emulated board has no machine.unique_id: the port names it.
			Driver: ftpdriver.Options{Logger: log, SpoolDir: dir, BoardName: "the-port", UploadWait: 100 * time.Millisecond},
		}
		put(t, root, "r.bin", []byte("old r\n"))
		s := ftptest.Start(t, opts)
		data := randomBytes(64<<10, 102)
		if err := s.Dial(t).Stor("/r.bin", bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		if err := s.StopHurried(); err != nil {
			t.Fatal(err)
		}
		if !logs.contains("leaving 1 upload(s), 65536 bytes, in the spool") {
			t.Error("the hurried stop did not say what it left")
		}
		if got := get(t, root, "r.bin"); bytes.Equal(got, data) {
			t.Fatal("the upload landed before the stop: the test needs a bigger file")
		}
		noTemporaries(t, root, "/")

		// A new board process over the same files, as after a restart.
		ftptest.Start(t, opts)
		waitBoardFile(t, root, "r.bin", data, 60*time.Second)
		if !logs.contains("writing 1 upload(s), 65536 bytes, that an earlier run left pending") {
			t.Error("the next start did not say what it took up")
		}
		waitSettled(t, dir, 10*time.Second)
		noTemporaries(t, root, "/")
	})
}

// An append still being written answers for the whole file: the board's
// bytes it adds to, then its own, whatever the restart point.
func TestPendingAppend(t *testing.T) {
	t.Parallel()
	s, _ := pendingServer(t, ftpdriver.Options{})
	root := s.Board.Root
	c := s.Dial(t)
	base := randomBytes(6000, 103)
	put(t, root, "log.bin", base)
	more := randomBytes(32<<10, 104)
	if err := c.Append("/log.bin", bytes.NewReader(more)); err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte{}, base...), more...)
	if n, err := c.FileSize("/log.bin"); err != nil || n != int64(len(want)) {
		t.Errorf("SIZE of the pending append = %d, %v; want %d", n, err, len(want))
	}
	if got, err := tryRetr(c, "/log.bin"); err != nil || !bytes.Equal(got, want) {
		t.Errorf("RETR of the pending append: %d bytes (exact: %v), %v", len(got), bytes.Equal(got, want), err)
	}
	for _, at := range []uint64{1000, 6000, 9000} {
		if got := retr(t, c, "/log.bin", at); !bytes.Equal(got, want[at:]) {
			t.Errorf("REST %d + RETR of the pending append: %d bytes, want %d", at, len(got), len(want)-int(at))
		}
	}
	s.WaitUploads(t, time.Minute)
	if got := get(t, root, "log.bin"); !bytes.Equal(got, want) {
		t.Errorf("the board holds %d bytes at log.bin, want %d", len(got), len(want))
	}
}
