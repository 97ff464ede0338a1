package ftpdriver

import (
	"io/fs"
	"os"
	"path"
	"sync"
	"time"

	"github.com/ftpbridge/ftpbridge/boardfs"
)

// fileInfo is a board entry as os.FileInfo, the form ftpserverlib formats
// LIST, MLSD, MLST, SIZE and MDTM replies from.
type fileInfo struct {
	e        boardfs.Entry
	readOnly bool
}

func (fi fileInfo) Name() string       { return fi.e.Name }
func (fi fileInfo) Size() int64        { return fi.e.Size }
func (fi fileInfo) ModTime() time.Time { return fi.e.ModTime }
func (fi fileInfo) IsDir() bool        { return fi.e.IsDir }
func (fi fileInfo) Sys() any           { return nil }

// Mode has no meaning on the board (no permissions, no owners); LIST shows
// it, so it says what a client may do here.
func (fi fileInfo) Mode() fs.FileMode {
	var m fs.FileMode = 0o644
	if fi.e.IsDir {
		m = fs.ModeDir | 0o755
	}
	if fi.readOnly {
		m &^= 0o222
	}
	return m
}

var _ os.FileInfo = fileInfo{}

// metaCache keeps one board's listings and stats for a short while, for
// every session: gvfs sends MDTM for each file whose LIST date shows a year
// (always, on a board whose clock starts at its epoch), and FileZilla and
// rclone stat what they just listed. Any write through the bridge clears it
// all; what a program on the board changes itself shows up after ttl at the
// latest, counted from when the question that missed it was asked. Keys are
// paths on the board, so a server over several boards keeps one cache per
// board.
type metaCache struct {
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	gen   uint64 // bumped by every invalidation
	dirs  map[string]cachedDir
	stats map[string]cachedStat
}

type cachedDir struct {
	entries []boardfs.Entry
	at      time.Time
}

type cachedStat struct {
	e      boardfs.Entry
	absent bool
	at     time.Time
}

// maxCached bounds the maps; past it, expired entries are dropped.
const maxCached = 1024

func newMetaCache(ttl time.Duration) *metaCache {
	return &metaCache{
		ttl:   ttl,
		now:   time.Now,
		dirs:  map[string]cachedDir{},
		stats: map[string]cachedStat{},
	}
}

// cacheTicket is taken before a question to the board and given back with
// its answer to the put methods.
type cacheTicket struct {
	gen uint64    // an answer read before an invalidation is not cached after it
	at  time.Time // the answer is as old as the question: a listing that took 1.5 s is older than its end
}

// generation returns a ticket for a question about to go to the board.
func (c *metaCache) generation() cacheTicket {
	c.mu.Lock()
	defer c.mu.Unlock()
	return cacheTicket{gen: c.gen, at: c.now()}
}

func (c *metaCache) fresh(at time.Time) bool { return c.now().Sub(at) < c.ttl }

// list returns a cached listing of dir.
func (c *metaCache) list(dir string) ([]boardfs.Entry, bool) {
	if c.ttl <= 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.dirs[dir]
	if !ok || !c.fresh(d.at) {
		return nil, false
	}
	return d.entries, true
}

// stat answers from a cached stat or from a cached listing of the parent.
// absent is true when the cache knows p does not exist.
func (c *metaCache) stat(p string) (e boardfs.Entry, absent, ok bool) {
	if c.ttl <= 0 {
		return boardfs.Entry{}, false, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, found := c.stats[p]; found && c.fresh(s.at) {
		return s.e, s.absent, true
	}
	if p == "/" {
		return boardfs.Entry{}, false, false
	}
	d, found := c.dirs[path.Dir(p)]
	if !found || !c.fresh(d.at) {
		return boardfs.Entry{}, false, false
	}
	name := path.Base(p)
	for _, e := range d.entries {
		if e.Name == name {
			return e, false, true
		}
	}
	return boardfs.Entry{}, true, true
}

func (c *metaCache) putList(t cacheTicket, dir string, entries []boardfs.Entry) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.gen != c.gen {
		return
	}
	c.prune()
	c.dirs[dir] = cachedDir{entries: entries, at: t.at}
}

func (c *metaCache) putStat(t cacheTicket, p string, e boardfs.Entry, absent bool) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.gen != c.gen {
		return
	}
	c.prune()
	c.stats[p] = cachedStat{e: e, absent: absent, at: t.at}
}

// prune drops expired entries once the maps grow; c.mu is held.
func (c *metaCache) prune() {
	if len(c.dirs)+len(c.stats) < maxCached {
		return
	}
	for k, d := range c.dirs {
		if !c.fresh(d.at) {
			delete(c.dirs, k)
		}
	}
	for k, s := range c.stats {
		if !c.fresh(s.at) {
			delete(c.stats, k)
		}
	}
}

// invalidate forgets everything. Writes are rare next to reads, and a
// rename or rmdir touches whole subtrees: clearing all is simple and right.
func (c *metaCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.dirs)
	clear(c.stats)
}
