package ftpdriver_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"

	"github.com/ftpbridge/ftpbridge/filecache"
	"github.com/ftpbridge/ftpbridge/ftpdriver/ftptest"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

// replaceCase is a change another session makes to the file
// TestDownloadDuringUpload downloads.
type replaceCase struct {
	name    string
	updated []byte                                                   // the file after the change
	before  func(t *testing.T, s *ftptest.Server, w *ftp.ServerConn) // before the download
	during  func(t *testing.T, w *ftp.ServerConn)                    // once it moved 16 KB
	after   func(t *testing.T)                                       // once it ended
	cached  bool                                                     // with the file cache
}

// TestDownloadDuringUpload: at 115200 baud, a 128 KB file is downloaded
// while another session replaces it: a STOR of 6 KB, a new file of the
// same size renamed over it, both once the download has moved 16 KB, and
// a STOR of a new file of the same size begun before the download. With
// and without the file cache, the client gets the old file whole, the new
// file whole, or an error reply saying the file changed: never a mix with
// 226 (issue 11, item 2: 226 with the first 33,792 bytes of the old file,
// or old bytes up to 62 KB and new ones after).
//
// A STOR of the same size begun after the download cannot land in its
// middle: the upload and the download take turns on the board, a segment
// each. A STOR begun before it is pending in the spool when the download
// starts, which serves the spool's copy.
func TestDownloadDuringUpload(t *testing.T) {
	t.Parallel()
	old, updated := randomBytes(128<<10, 81), randomBytes(128<<10, 82)
	small := randomBytes(6<<10, 83)
	cases := []replaceCase{
		{name: "STOR 6 KB", updated: small, during: func(t *testing.T, w *ftp.ServerConn) {
			if err := w.Stor("/big.bin", bytes.NewReader(small)); err != nil {
				t.Errorf("STOR: %v", err)
			}
		}},
		{name: "RNTO of the same size", updated: updated, before: func(t *testing.T, s *ftptest.Server, w *ftp.ServerConn) {
			put(t, s.Board.Root, "big.new", updated)
		}, during: func(t *testing.T, w *ftp.ServerConn) {
			if err := w.Rename("/big.new", "/big.bin"); err != nil {
				t.Errorf("RNFR, RNTO: %v", err)
			}
		}},
	}
	for _, c := range slices.Clone(cases) {
		c.name += " with the cache"
		c.cached = true
		cases = append(cases, c)
	}
	stored := make(chan error, 1)
	cases = append(cases, replaceCase{name: "STOR of the same size begun first", updated: updated, before: func(t *testing.T, s *ftptest.Server, w *ftp.ServerConn) {
		go func() { stored <- w.Stor("/big.bin", bytes.NewReader(updated)) }()
		waitForTemporary(t, s.Board.Root, 16<<10)
	}, after: func(t *testing.T) {
		if err := <-stored; err != nil {
			t.Errorf("STOR: %v", err)
		}
	}})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			opts := ftptest.Options{Board: boardtest.Options{Baud: 115200}}
			if c.cached {
				cache, err := filecache.Open(t.TempDir(), 1<<20)
				if err != nil {
					t.Fatal(err)
				}
				opts.Cache = cache
			}
			s := ftptest.Start(t, opts)
			put(t, s.Board.Root, "big.bin", old)
			reader, writer := s.Dial(t), s.Dial(t)
			if c.before != nil {
				c.before(t, s, writer)
			}
			var during func()
			if c.during != nil {
				during = func() { c.during(t, writer) }
			}
			got, err := retrDuring(t, reader, "/big.bin", during)
			if c.after != nil {
				c.after(t)
			}
			t.Logf("RETR across the change: %d bytes (the old file %v, the new %v), %v", len(got), bytes.Equal(got, old), bytes.Equal(got, c.updated), err)
			switch {
			case err != nil && !strings.Contains(err.Error(), "changed"):
				t.Errorf("RETR across the change: %v, want a reply saying the file changed", err)
			case err == nil && !bytes.Equal(got, old) && !bytes.Equal(got, c.updated):
				t.Errorf("RETR across the change: 226 and %d bytes, neither the old file (%d) nor the new (%d)", len(got), len(old), len(c.updated))
			}
			if again := retr(t, reader, "/big.bin", 0); !bytes.Equal(again, c.updated) {
				t.Errorf("RETR after the change: %d bytes, not the new file", len(again))
			}
		})
	}
}

// retrDuring downloads p, and runs during (if not nil) once 16 KB have
// arrived. Its error holds the reply, when there is one.
func retrDuring(t *testing.T, c *ftp.ServerConn, p string, during func()) ([]byte, error) {
	t.Helper()
	r, err := c.Retr(p)
	if err != nil {
		return nil, err
	}
	if err := r.SetDeadline(time.Now().Add(2 * time.Minute)); err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 16<<10)
	if _, err := io.ReadFull(r, head); err != nil {
		return head, errors.Join(err, r.Close())
	}
	if during != nil {
		during()
	}
	rest, err := io.ReadAll(r)
	return append(head, rest...), errors.Join(err, r.Close())
}

// waitForTemporary waits until an upload's temporary file in root holds n
// bytes.
func waitForTemporary(t *testing.T, root string, n int64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		des, _ := os.ReadDir(root)
		for _, de := range des {
			if !strings.HasPrefix(de.Name(), ".ftpbridge-") {
				continue
			}
			if fi, err := os.Stat(filepath.Join(root, de.Name())); err == nil && fi.Size() >= n {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no upload temporary of %d bytes in %s after a minute", n, root)
}
