package boardfs_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/boardfs"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

// memCache is a boardfs.Cache a test can tamper with.
type memCache struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (c *memCache) Get(k string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.m[k]
	return bytes.Clone(b), ok
}

func (c *memCache) Put(k string, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[k] = bytes.Clone(b)
}

func (c *memCache) Delete(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, k)
}

// tamper changes every copy with f.
func (c *memCache) tamper(f func([]byte) []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, b := range c.m {
		c.m[k] = f(b)
	}
}

// TestCachedDownloads: a file read once comes again for its block sums
// alone; one changed KB costs about a KB; a copy that no longer matches
// the board (changed, shortened, longer, tampered with) is never served.
func TestCachedDownloads(t *testing.T) {
	t.Parallel()
	cache := &memCache{m: map[string][]byte{}}
	f, b, dir := startWith(t, boardtest.ESP32, boardtest.Options{}, boardfs.Options{Cache: cache})
	ctx := ctxFor(t, time.Minute)
	if err := f.Mkdir(ctx, dir); err != nil {
		t.Fatal(err)
	}
	name := dir + "/app.py"
	data := script(96 * 1024)
	write := func(d []byte) {
		t.Helper()
		if err := os.WriteFile(hostPath(b, name), d, 0o644); err != nil {
			t.Fatal(err)
		}
		data = d
	}
	read := func(step string, maxReceived int64) {
		t.Helper()
		before := f.Stats()
		var got bytes.Buffer
		if _, err := f.ReadFile(ctx, name, 0, &got); err != nil || !bytes.Equal(got.Bytes(), data) {
			t.Fatalf("%s: ReadFile = %d bytes (equal %v), %v", step, got.Len(), bytes.Equal(got.Bytes(), data), err)
		}
		received := f.Stats().Received - before.Received
		t.Logf("%s: %d bytes received", step, received)
		if maxReceived > 0 && received > maxReceived {
			t.Errorf("%s: %d bytes received, want at most %d", step, received, maxReceived)
		}
	}
	write(data)
	read("first", 0)
	read("unchanged", 1200)

	changed := bytes.Clone(data)
	copy(changed[50_000:], bytes.Repeat([]byte("# changed on the board\n"), 44))
	write(changed)
	read("1 KB changed", 3000)

	write(append(bytes.Clone(data[:70_000]), []byte("print('shorter')\n")...))
	read("shortened", 1500)
	write(append(bytes.Clone(data), script(5000)...))
	read("longer", 4000)

	cache.tamper(func(b []byte) []byte { b[10] ^= 0xff; return b })
	read("tampered copy", 2000)
	cache.tamper(func(b []byte) []byte { return b[:100] })
	read("truncated copy", 0)

	// An upload leaves its copy: the next download moves only sums.
	data = script(40 * 1024)[7:]
	if err := f.WriteFile(ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	read("after an upload", 1000)
	if err := f.Remove(ctx, name); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadFile(ctx, name, 0, &bytes.Buffer{}); err == nil {
		t.Error("a removed file was served from the cache")
	}
}

// TestCachedDownloadScattered: a cached file changed in many scattered
// blocks is read whole, within the open's bound, not a range per exec
// until the bound runs out and the whole read fails with it.
func TestCachedDownloadScattered(t *testing.T) {
	t.Parallel()
	cache := &memCache{m: map[string][]byte{}}
	f, b, dir := startWith(t, boardtest.ESP32, boardtest.Options{Baud: 115200}, boardfs.Options{Cache: cache})
	ctx := ctxFor(t, time.Minute)
	if err := f.Mkdir(ctx, dir); err != nil {
		t.Fatal(err)
	}
	name := dir + "/c.bin"
	data := random(64 * 1024)
	if err := os.WriteFile(hostPath(b, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadFile(ctx, name, 0, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	// A byte changed in every other KB: 32 ranges, about 100 ms each at
	// 115200 baud, against an open bounded at 2 s.
	for i := 0; i < len(data); i += 2048 {
		data[i] ^= 0xff
	}
	if err := os.WriteFile(hostPath(b, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	octx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	r, err := f.Open(octx, name, 0)
	if err != nil {
		t.Fatalf("Open of a scattered change within 2 s: %v", err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("read %d bytes (equal %v), %v", len(got), bytes.Equal(got, data), err)
	}
}

// TestUploadKnownBlocks: uploading a file the board holds in part sends
// only the segments that differ; the board copies the rest from the old
// file, and the result is checked whole.
func TestUploadKnownBlocks(t *testing.T) {
	t.Parallel()
	f, b, dir := start(t, boardtest.ESP32, boardtest.Options{})
	ctx := ctxFor(t, time.Minute)
	if err := f.Mkdir(ctx, dir); err != nil {
		t.Fatal(err)
	}
	name := dir + "/app.py"
	data := random(96 * 1024) // random: deflate cannot hide what is sent
	upload := func(step string, d []byte, maxSent int64) {
		t.Helper()
		before := f.Stats()
		if err := f.WriteFile(ctx, name, bytes.NewReader(d), int64(len(d))); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		sent := f.Stats().Sent - before.Sent
		t.Logf("%s: %d bytes sent", step, sent)
		if maxSent > 0 && sent > maxSent {
			t.Errorf("%s: %d bytes sent, want at most %d", step, sent, maxSent)
		}
		if got, err := os.ReadFile(hostPath(b, name)); err != nil || !bytes.Equal(got, d) {
			t.Fatalf("%s: the board holds %d other bytes (%v)", step, len(got), err)
		}
	}
	upload("new", data, 0)
	upload("the same again", data, 6000)
	edited := bytes.Clone(data)
	copy(edited[50_000:], random(1000))
	upload("1 KB changed", edited, 12_000)
	upload("longer", append(bytes.Clone(edited), random(3000)...), 12_000)
	upload("shifted by one byte", append([]byte{'#'}, edited...), 0)
}
