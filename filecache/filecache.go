// Package filecache is a bounded store of byte blobs on disk, kept by key:
// ftpbridge's copies of the files it has moved, so that a file that did not
// change on the board need not cross the serial line again. What it holds
// is a hint, never the truth: its user checks every copy against the
// board's hash before serving it.
package filecache

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Cache is a directory of blobs, at most max bytes in all; the blobs least
// recently used go first. It is safe for concurrent use, and for several
// processes sharing the directory (writes are atomic renames).
type Cache struct {
	dir string
	max int64
	mu  sync.Mutex
}

// Open returns the cache in dir, making the directory if needed.
func Open(dir string, max int64) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("filecache: %w", err)
	}
	return &Cache{dir: dir, max: max}, nil
}

func (c *Cache) file(key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(c.dir, hex.EncodeToString(sum[:])+".blob")
}

// Get returns the blob kept for key.
func (c *Cache) Get(key string) ([]byte, bool) {
	name := c.file(key)
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, false
	}
	now := time.Now()
	_ = os.Chtimes(name, now, now) // recently used: evicted last
	return data, true
}

// Put keeps data for key, replacing what was there, then evicts the least
// recently used blobs until the cache is within its size. A blob larger
// than the whole cache is not kept.
func (c *Cache) Put(key string, data []byte) {
	if int64(len(data)) > c.max {
		c.Delete(key)
		return
	}
	tmp, err := os.CreateTemp(c.dir, "put-*.tmp")
	if err != nil {
		return
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Rename(tmp.Name(), c.file(key)) != nil {
		_ = os.Remove(tmp.Name())
		return
	}
	c.evict()
}

// Delete forgets key.
func (c *Cache) Delete(key string) { _ = os.Remove(c.file(key)) }

func (c *Cache) evict() {
	c.mu.Lock()
	defer c.mu.Unlock()
	des, err := os.ReadDir(c.dir)
	if err != nil {
		return
	}
	type blob struct {
		name string
		size int64
		used time.Time
	}
	var blobs []blob
	var total int64
	for _, de := range des {
		if filepath.Ext(de.Name()) != ".blob" {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			continue
		}
		blobs = append(blobs, blob{de.Name(), fi.Size(), fi.ModTime()})
		total += fi.Size()
	}
	slices.SortFunc(blobs, func(a, b blob) int { return a.used.Compare(b.used) })
	for _, b := range blobs {
		if total <= c.max {
			break
		}
		if os.Remove(filepath.Join(c.dir, b.name)) == nil {
			total -= b.size
		}
	}
}
