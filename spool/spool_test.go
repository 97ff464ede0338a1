package spool

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/boardfs"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

// These tests take up, on a rig board, what an earlier run left in the
// spool at the moments a crash can leave it, which the FTP tests cannot
// stop a run at. The spool's files are written as the package writes them.

// connected is a board that stays connected.
type connected struct{ f *boardfs.FS }

func (b connected) FS() (*boardfs.FS, error) { return b.f, nil }

// away is a board that is not plugged in.
type away struct{}

func (away) FS() (*boardfs.FS, error) { return nil, boardfs.ErrNotConnected }

func startBoard(t *testing.T) (*boardfs.FS, string) {
	t.Helper()
	b := boardtest.Start(t, boardtest.ESP32, boardtest.Options{Baud: 115200})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	port, err := b.Open()
	if err != nil {
		t.Fatal(err)
	}
	f, err := boardfs.New(ctx, port, boardfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, b.Root
}

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(Options{Dir: dir, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		s.Drain(ctx)
	})
	return s
}

// leave writes an upload into the spool as a run that stopped would have
// left it.
func leave(t *testing.T, s *Store, key string, m meta, data []byte) {
	t.Helper()
	dir := s.boardDir(key)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	m.Board, m.Size, m.SHA256, m.Received = key, int64(len(data)), hex.EncodeToString(sum[:]), time.Now()
	if m.Target == "" {
		m.Target = m.Origin
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("%016x-00000000", time.Now().UnixNano())
	if err := os.WriteFile(filepath.Join(dir, id+dataExt), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, id+metaExt), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func waitPending(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		n, _ := s.Pending()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d uploads still pending after a minute", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func hostFile(root, name string) []byte {
	b, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		return nil
	}
	return b
}

func write(t *testing.T, root, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(root, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A run stopped between the board's commit of the upload at its first
// name and the rename a folded RNTO asked for: the next start renames,
// and does not send the file again. Stopped after the rename too: the
// next start finds the file in place.
func TestResumeAfterCommit(t *testing.T) {
	f, root := startBoard(t)
	data := randomBytes(20_000, 1)
	for _, tc := range []struct {
		name    string
		onBoard string // where the earlier run left the file
	}{
		{"before the rename", "x.part"},
		{"after the rename", "x.py"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			write(t, root, tc.onBoard, data)
			write(t, root, "old.py", []byte("a name a folded rename took\n"))
			s := open(t, t.TempDir())
			leave(t, s, "k", meta{Origin: "/x.part", Target: "/x.py", Gone: []string{"/old.py"}, Committed: true}, data)
			before := f.Stats()
			q := s.Queue("k", connected{f}, nil, nil)
			waitPending(t, s)
			if got := hostFile(root, "x.py"); !bytes.Equal(got, data) {
				t.Errorf("x.py holds %d bytes, want the %d left pending", len(got), len(data))
			}
			for _, n := range []string{"x.part", "old.py"} {
				if hostFile(root, n) != nil {
					t.Errorf("%s is still on the board", n)
				}
			}
			if sent := f.Stats().Sent - before.Sent; sent > int64(len(data))/2 {
				t.Errorf("%d bytes sent to the board: the committed file was sent again", sent)
			}
			if e, gone, ok := q.Stat("/x.py"); ok {
				t.Errorf("after landing, Stat(/x.py) still answers from the spool: %v %v", e, gone)
			}
		})
	}
}

// A run stopped in the middle of an append, which the board writes in
// place: the next start appends the rest, from where the board's file
// ends. A file that no longer ends anywhere inside the append is not
// touched, and the append is kept in failed/.
func TestResumeAppend(t *testing.T) {
	f, root := startBoard(t)
	base := []byte("line one\n")
	data := randomBytes(9000, 2)
	s := open(t, t.TempDir())

	write(t, root, "log.txt", append(append([]byte{}, base...), data[:5000]...))
	leave(t, s, "k", meta{Origin: "/log.txt", Append: true, Base: int64(len(base))}, data)
	write(t, root, "short.txt", []byte("shorter"))
	leave(t, s, "k", meta{Origin: "/short.txt", Append: true, Base: 100}, data[:10])

	q := s.Queue("k", connected{f}, nil, nil)
	waitPending(t, s)
	if got, want := hostFile(root, "log.txt"), append(append([]byte{}, base...), data...); !bytes.Equal(got, want) {
		t.Errorf("log.txt holds %d bytes, want %d", len(got), len(want))
	}
	if got := hostFile(root, "short.txt"); string(got) != "shorter" {
		t.Errorf("short.txt was changed: %q", got)
	}
	if err := q.Failure("/short.txt"); err == nil {
		t.Error("the append that could not resume was not told as failed")
	}
	kept, _ := filepath.Glob(filepath.Join(s.Dir(), "failed", "*-short.txt"))
	if len(kept) != 1 {
		t.Errorf("failed/ holds %q, want the one append", kept)
	}
}

// A spool file whose bytes no longer match what was received (a damaged
// disk) is not written to the board: it is moved to failed/ with the
// reason.
func TestResumeDamaged(t *testing.T) {
	f, root := startBoard(t)
	s := open(t, t.TempDir())
	leave(t, s, "k", meta{Origin: "/d.bin"}, []byte("what was received"))
	ids, _ := filepath.Glob(filepath.Join(s.boardDir("k"), "*"+dataExt))
	if len(ids) != 1 {
		t.Fatalf("spool holds %q", ids)
	}
	if err := os.WriteFile(ids[0], []byte("what the disk holds"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Queue("k", connected{f}, nil, nil)
	waitPending(t, s)
	if hostFile(root, "d.bin") != nil {
		t.Error("damaged spool bytes reached the board")
	}
	notes, _ := filepath.Glob(filepath.Join(s.Dir(), "failed", "*-d.bin.txt"))
	if len(notes) != 1 {
		t.Fatalf("failed/ holds %q, want the damaged upload's note", notes)
	}
	if note, _ := os.ReadFile(notes[0]); !bytes.Contains(note, []byte("do not match")) {
		t.Errorf("note: %q", note)
	}
}

// A store that holds (a read-only server) leaves what an earlier run left
// pending unwritten, in the spool.
func TestHold(t *testing.T) {
	f, root := startBoard(t)
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Hold: true, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	leave(t, s, "k", meta{Origin: "/h.bin"}, []byte("pending"))
	s.Queue("k", connected{f}, nil, nil)
	if n, _ := s.Pending(); n != 0 {
		t.Errorf("a holding store took up %d upload(s)", n)
	}
	s.Drain(context.Background())
	time.Sleep(500 * time.Millisecond)
	if hostFile(root, "h.bin") != nil {
		t.Error("a holding store wrote to the board")
	}
	if metas, _ := filepath.Glob(filepath.Join(s.boardDir("k"), "*"+metaExt)); len(metas) != 1 {
		t.Errorf("the spool holds %q, want the pending upload", metas)
	}
}

// Drain does not wait for a board that is not there: the uploads stay in
// the spool, for the next start.
func TestDrainWithoutBoard(t *testing.T) {
	s := open(t, t.TempDir())
	leave(t, s, "k", meta{Origin: "/a.bin"}, []byte("pending"))
	s.Queue("k", away{}, nil, nil)
	done := make(chan struct{})
	go func() { s.Drain(context.Background()); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Drain waits for a board that is away")
	}
	metas, _ := filepath.Glob(filepath.Join(s.boardDir("k"), "*"+metaExt))
	if len(metas) != 1 {
		t.Errorf("after Drain the spool holds %q, want the pending upload", metas)
	}
}

// Drain does not wait for a board that stopped answering with its port
// open (a hung board, a stalled adapter) any more than for one unplugged:
// Ctrl-C during the silence leaves the upload in the spool at once rather
// than once the board speaks again, which nothing says it will.
func TestDrainSilentBoard(t *testing.T) {
	const stall = 120 * time.Second
	b := boardtest.Start(t, boardtest.ESP32, boardtest.Options{Baud: 115200})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	port, err := b.Open()
	if err != nil {
		t.Fatal(err)
	}
	f, err := boardfs.New(ctx, port, boardfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	s := open(t, t.TempDir())
	leave(t, s, "k", meta{Origin: "/silent.bin"}, randomBytes(64<<10, 11))
	b.Stall(stall)
	stalled := time.Now()
	s.Queue("k", connected{f}, nil, nil)
	done := make(chan struct{})
	go func() { s.Drain(context.Background()); close(done) }()
	select {
	case <-done:
		t.Logf("Drain returned %v into the silence", time.Since(stalled).Round(time.Second))
	case <-time.After(stall / 2):
		t.Fatalf("Drain still waits %v into the board's silence", time.Since(stalled).Round(time.Second))
	}
	metas, _ := filepath.Glob(filepath.Join(s.boardDir("k"), "*"+metaExt))
	if len(metas) != 1 {
		t.Errorf("after Drain the spool holds %q, want the pending upload", metas)
	}
}
