package filecache

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPutGetEvict(t *testing.T) {
	dir := t.TempDir()
	c, err := Open(dir, 250)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get("a"); ok {
		t.Fatal("Get on an empty cache found something")
	}
	a, b, d := bytes.Repeat([]byte("a"), 100), bytes.Repeat([]byte("b"), 100), bytes.Repeat([]byte("d"), 100)
	c.Put("a", a)
	c.Put("b", b)
	// Make a the most recently used, b the least, whatever the clock's
	// resolution.
	old := time.Now().Add(-time.Hour)
	_ = os.Chtimes(c.file("b"), old, old)
	if got, ok := c.Get("a"); !ok || !bytes.Equal(got, a) {
		t.Fatalf("Get(a) = %d bytes, %v", len(got), ok)
	}
	c.Put("d", d) // 300 bytes > 250: b goes
	if _, ok := c.Get("b"); ok {
		t.Error("the least recently used blob survived eviction")
	}
	for key, want := range map[string][]byte{"a": a, "d": d} {
		if got, ok := c.Get(key); !ok || !bytes.Equal(got, want) {
			t.Errorf("Get(%s) after eviction = %d bytes, %v", key, len(got), ok)
		}
	}
	c.Put("a", []byte("new"))
	if got, _ := c.Get("a"); string(got) != "new" {
		t.Errorf("Get(a) after a replacing Put = %q", got)
	}
	c.Put("big", make([]byte, 251))
	if _, ok := c.Get("big"); ok {
		t.Error("a blob larger than the cache was kept")
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(tmps) > 0 {
		t.Errorf("temporary files left: %q", tmps)
	}
}
