package boardfs_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/boardfs"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

// TestDownloadDuringReplace: a file changed through boardfs in the middle
// of a download of it (by another session: STOR, RNTO over it, DELE then
// STOR, APPE) reaches the reader as the old file whole, the new file
// whole, or ErrChanged: never a mix reported complete, with or without the
// cache, and the cache keeps no mix (issue 11, item 2: the reader reopened
// the path for every segment, and a STOR of 6 KB over a 128 KB file gave
// its first 33 KB as the whole file).
func TestDownloadDuringReplace(t *testing.T) {
	t.Parallel()
	old := random(128 * 1024)
	changes := []struct {
		name   string
		change func(ctx context.Context, f *boardfs.FS, p string) ([]byte, error) // returns the new file
	}{
		{"STOR 6 KB", func(ctx context.Context, f *boardfs.FS, p string) ([]byte, error) {
			data := random(6 * 1024)
			return data, f.WriteFile(ctx, p, bytes.NewReader(data), int64(len(data)))
		}},
		{"STOR the same size", func(ctx context.Context, f *boardfs.FS, p string) ([]byte, error) {
			data := random(len(old))
			return data, f.WriteFile(ctx, p, bytes.NewReader(data), int64(len(data)))
		}},
		{"RNTO over it", func(ctx context.Context, f *boardfs.FS, p string) ([]byte, error) {
			data := random(len(old))
			if err := f.WriteFile(ctx, p+".new", bytes.NewReader(data), int64(len(data))); err != nil {
				return nil, err
			}
			return data, f.Rename(ctx, p+".new", p)
		}},
		{"DELE then STOR", func(ctx context.Context, f *boardfs.FS, p string) ([]byte, error) {
			if err := f.Remove(ctx, p); err != nil {
				return nil, err
			}
			data := random(len(old))
			return data, f.WriteFile(ctx, p, bytes.NewReader(data), int64(len(data)))
		}},
		{"APPE", func(ctx context.Context, f *boardfs.FS, p string) ([]byte, error) {
			more := random(3000)
			u, err := f.Append(ctx, p)
			if err != nil {
				return nil, err
			}
			if _, err := u.Write(more); err != nil {
				return nil, err
			}
			return append(bytes.Clone(old), more...), u.Commit(ctx)
		}},
	}
	for _, cached := range []bool{false, true} {
		label := "no cache"
		if cached {
			label = "cache"
		}
		t.Run(label, func(t *testing.T) {
			t.Parallel()
			cache := &memCache{m: map[string][]byte{}}
			opts := boardfs.Options{}
			if cached {
				opts.Cache = cache
			}
			f, b, dir := startWith(t, boardtest.ESP32, boardtest.Options{}, opts)
			ctx := ctxFor(t, 3*time.Minute)
			if err := f.Mkdir(ctx, dir); err != nil {
				t.Fatal(err)
			}
			for _, c := range changes {
				t.Run(c.name, func(t *testing.T) {
					p := dir + "/big.bin"
					// The download starts from the board, keeping a copy.
					cache.mu.Lock()
					clear(cache.m)
					cache.mu.Unlock()
					if err := os.WriteFile(hostPath(b, p), old, 0o644); err != nil {
						t.Fatal(err)
					}
					r, err := f.Open(ctx, p, 0)
					if err != nil {
						t.Fatal(err)
					}
					defer r.Close()
					head := make([]byte, 16*1024)
					if _, err := io.ReadFull(r, head); err != nil {
						t.Fatal(err)
					}
					updated, err := c.change(ctx, f, p)
					if err != nil {
						t.Fatalf("%s: %v", c.name, err)
					}
					rest, err := io.ReadAll(r)
					got := append(head, rest...)
					t.Logf("download across %s: %d bytes, %v", c.name, len(got), err)
					switch {
					case err != nil && !errors.Is(err, boardfs.ErrChanged):
						t.Errorf("download across %s: %v, want the old file, the new one or ErrChanged", c.name, err)
					case err == nil && !bytes.Equal(got, old) && !bytes.Equal(got, updated):
						t.Errorf("download across %s: %d bytes reported complete, neither the old file (%d) nor the new (%d)", c.name, len(got), len(old), len(updated))
					}
					cache.mu.Lock()
					for k, copy := range cache.m {
						if !bytes.Equal(copy, updated) {
							t.Errorf("the cache keeps %d bytes for %q: not the file on the board", len(copy), k)
						}
					}
					cache.mu.Unlock()
					var back bytes.Buffer
					if _, err := f.ReadFile(ctx, p, 0, &back); err != nil || !bytes.Equal(back.Bytes(), updated) {
						t.Errorf("download after %s: %d bytes, %v: not the new file", c.name, back.Len(), err)
					}
				})
			}
		})
	}
}

// TestDownloadDuringReplaceMicrobit: the same on the micro:bit, whose
// rename is a copy: the end of a download checks the count and the sum of
// the file's bytes.
func TestDownloadDuringReplaceMicrobit(t *testing.T) {
	t.Parallel()
	f, _, _ := start(t, boardtest.Microbit, boardtest.Options{})
	ctx := ctxFor(t, 3*time.Minute)
	old, updated := random(5000), random(5000) // two segments; the board holds about 25 KB
	if err := f.WriteFile(ctx, "/big.bin", bytes.NewReader(old), int64(len(old))); err != nil {
		t.Fatal(err)
	}
	r, err := f.Open(ctx, "/big.bin", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	head := make([]byte, 100)
	if _, err := io.ReadFull(r, head); err != nil {
		t.Fatal(err)
	}
	if err := f.WriteFile(ctx, "/big.bin", bytes.NewReader(updated), int64(len(updated))); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(r)
	got := append(head, rest...)
	t.Logf("download across a STOR: %d bytes, %v", len(got), err)
	if err == nil || !errors.Is(err, boardfs.ErrChanged) {
		t.Errorf("download across a STOR: %d bytes (old %v, new %v), %v, want ErrChanged", len(got), bytes.Equal(got, old), bytes.Equal(got, updated), err)
	}
	var back bytes.Buffer
	if _, err := f.ReadFile(ctx, "/big.bin", 0, &back); err != nil || !bytes.Equal(back.Bytes(), updated) {
		t.Errorf("download after the STOR: %d bytes, %v: not the new file", back.Len(), err)
	}
}

// TestCommitChecksBeforeRename: Commit checks the upload and renames it in
// one exec (_vr), which renames only the bytes the host sent. A temporary
// file changed on the board before Commit fails it with ErrCorrupt and the
// old file stays; a bit flipped in the check's answer costs one more
// question, not the upload.
func TestCommitChecksBeforeRename(t *testing.T) {
	t.Parallel()
	f, b, dir := start(t, boardtest.ESP32, boardtest.Options{})
	ctx := ctxFor(t, time.Minute)
	if err := f.Mkdir(ctx, dir); err != nil {
		t.Fatal(err)
	}
	old := []byte("the old file\n")
	if err := f.WriteFile(ctx, dir+"/x.bin", bytes.NewReader(old), int64(len(old))); err != nil {
		t.Fatal(err)
	}
	data := random(64 * 1024)
	u, err := f.Create(ctx, dir+"/x.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Write(data); err != nil {
		t.Fatal(err)
	}
	// The data is on the board: change one byte of the temporary file.
	tmps, _ := filepath.Glob(filepath.Join(hostPath(b, dir), ".*"))
	if len(tmps) != 1 {
		t.Fatalf("temporary files on the board: %q, want one", tmps)
	}
	if st, err := os.Stat(tmps[0]); err != nil || st.Size() != int64(len(data)) {
		t.Fatalf("the temporary file is %v (%v), want all %d bytes sent before Commit", st, err, len(data))
	}
	tampered, _ := os.ReadFile(tmps[0])
	tampered[1000] ^= 1
	if err := os.WriteFile(tmps[0], tampered, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := u.Commit(ctx); !errors.Is(err, boardfs.ErrCorrupt) || !strings.Contains(err.Error(), "SHA-256 on the board") {
		t.Errorf("Commit of a changed temporary file: %v, want ErrCorrupt naming the SHA-256", err)
	}
	if got, _ := os.ReadFile(hostPath(b, dir+"/x.bin")); !bytes.Equal(got, old) {
		t.Errorf("the target holds %d bytes, want the old file", len(got))
	}
	if left, _ := filepath.Glob(filepath.Join(hostPath(b, dir), ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %q", left)
	}

	// A flipped bit in _vr's answer: the file lands, no temporary stays.
	u, err = f.Create(ctx, dir+"/x.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Write(data); err != nil {
		t.Fatal(err)
	}
	b.FlipOut(30) // inside the 64 hex digits of the answer
	before := f.Stats().Execs
	if err := u.Commit(ctx); err != nil {
		t.Errorf("Commit with a bit flipped in the check's answer: %v", err)
	}
	if n := f.Stats().Execs - before; n < 2 {
		t.Errorf("Commit took %d exec(s): the flip missed the check's answer", n)
	}
	if got, _ := os.ReadFile(hostPath(b, dir+"/x.bin")); !bytes.Equal(got, data) {
		t.Errorf("the target holds %d other bytes, want the new file", len(got))
	}
	if left, _ := filepath.Glob(filepath.Join(hostPath(b, dir), ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %q", left)
	}
}
