package ftpdriver

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/ftpbridge/ftpbridge/boardfs"
	"github.com/ftpbridge/ftpbridge/spool"
)

// Boards is a changing set of named boards, served by NewMulti as one
// top-level folder each. The server asks on every operation, from many
// sessions at once: both methods must be quick and safe for concurrent use.
type Boards interface {
	// Names lists the boards to show in "/" now, in any order. A name is
	// one path element: no "/", not "." or "..".
	Names() []string
	// Board returns the board by that name; false when there is none now,
	// and the client hears "no such file or directory".
	Board(name string) (Board, bool)
}

// NewMulti returns a server over boards: "/" lists one folder per board
// (sorted), and "/NAME/rest" is "/rest" on board NAME. Clients may not
// change "/" itself: creating, removing or renaming a board's folder, or a
// file directly in "/", fails with ErrBoardFolder; a rename from one board
// to another fails with ErrAcrossBoards. A board's folder answers "board
// not connected" while Board returns a board whose FS fails so. Call
// Listen, then Serve.
func NewMulti(boards Boards, opts Options) *Server {
	s := newServer(opts)
	s.boards = boards
	return s
}

// mount is one board as the server reaches it. Each board has its own
// metadata cache: one board's "/main.py" must never answer for another's.
type mount struct {
	name  string // the board's folder; "" on a server over one board
	board Board
	cache *metaCache

	mu       sync.Mutex
	layoutOf *boardfs.FS // the connection rootMounts last asked
	mounts   []string    // its answer
}

// target is where one operation runs: the board's filesystem, the path on
// it, the board's cache, and the session's logger, which names the board
// on a server over several.
type target struct {
	fsys  *boardfs.FS
	path  string
	cache *metaCache
	log   *slog.Logger
	m     *mount
	q     *spool.Queue // the board's pending uploads
}

// clientPath is p, a path on t's board, as the client names it.
func (t target) clientPath(p string) string {
	if t.m.name == "" {
		return p
	}
	return path.Join("/"+t.m.name, p)
}

// where finds the board a clean absolute client path is on, and the path
// on that board. Over several boards, "/" is on none: m is nil.
func (s *Server) where(p string) (m *mount, onBoard string, err error) {
	if s.boards == nil {
		return s.single, p, nil
	}
	if p == "/" {
		return nil, p, nil
	}
	name, rest := splitBoard(p)
	b, ok := s.boards.Board(name)
	if !ok {
		return nil, "", fmt.Errorf("ftpdriver: %q: no board %q: %w", p, name, fs.ErrNotExist)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m = s.mounts[name]
	if m == nil {
		m = &mount{name: name, board: b, cache: newMetaCache(s.opts.CacheTTL)}
		s.mounts[name] = m
	}
	// Boards may hand out a new Board under a known name; the cache is
	// the name's, and expires within CacheTTL anyway.
	m.board = b
	return m, rest, nil
}

// splitBoard cuts a clean absolute path into the board's folder name and
// the path on that board: "/b0/lib/x.py" is "b0" and "/lib/x.py".
func splitBoard(p string) (name, onBoard string) {
	name, rest, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	return name, "/" + rest
}

// isRoot reports whether name is "/" of a server over several boards,
// which is on no board.
func (s *Server) isRoot(name string) bool {
	return s.boards != nil && strings.HasPrefix(name, "/") && path.Clean(name) == "/"
}

// isTop reports whether name is "/" or directly in it, on a server over
// several boards: what is there is decided by the boards plugged in, not
// by clients.
func (s *Server) isTop(name string) bool {
	if s.boards == nil || !strings.HasPrefix(name, "/") {
		return false
	}
	p := path.Clean(name)
	return p == "/" || !strings.Contains(p[1:], "/")
}

// boardFolders is the listing of "/" over several boards.
func (s *Server) boardFolders(readOnly bool) []os.FileInfo {
	names := slices.Clone(s.boards.Names())
	slices.Sort(names)
	names = slices.Compact(names)
	infos := make([]os.FileInfo, 0, len(names))
	for _, n := range names {
		infos = append(infos, fileInfo{e: boardfs.Entry{Name: n, IsDir: true, ModTime: s.start}, readOnly: readOnly})
	}
	return infos
}
