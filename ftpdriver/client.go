package ftpdriver

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"

	"github.com/ftpbridge/ftpbridge/boardfs"
)

// clientDriver is one logged-in session's view of the board. ftpserverlib
// calls it from the session's command goroutine and from its transfer
// goroutine, never from two commands at once.
type clientDriver struct {
	srv      *Server
	ss       *session
	ctx      context.Context // the session's: cancelled on disconnect
	cc       ftpserver.ClientContext
	log      *slog.Logger
	readOnly bool
}

// The interfaces ftpserverlib looks for, pinned here so a change in the
// library's spelling (ClientDriverExtentionFileTransfer is spelt so) breaks
// the build, not the server.
var (
	_ ftpserver.ClientDriver                        = (*clientDriver)(nil)
	_ ftpserver.ClientDriverExtensionFileList       = (*clientDriver)(nil)
	_ ftpserver.ClientDriverExtentionFileTransfer   = (*clientDriver)(nil)
	_ ftpserver.ClientDriverExtensionRemoveDir      = (*clientDriver)(nil)
	_ ftpserver.ClientDriverExtensionHasher         = (*clientDriver)(nil)
	_ ftpserver.ClientDriverExtensionAvailableSpace = (*clientDriver)(nil)
)

// boardPath accepts only absolute paths: ftpserverlib resolves command
// arguments against the working directory, except where it does not (HASH
// passes its argument raw: Stat resolves it; LIST -la would arrive as
// Stat("-la") but for listHook). Anything else must not reach the board as
// a name.
func boardPath(name string) (string, error) {
	if !strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("%w: %q", ErrBadPath, name)
	}
	return path.Clean(name), nil
}

// run performs one board operation, on the board connected now, under its
// own deadline (none when timeout is 0: the operation bounds its own
// waits), registered with the server so shutdown can wait for it, and maps
// its error for the reply.
func (d *clientDriver) run(op, name string, timeout time.Duration, f func(ctx context.Context, t target) error) error {
	p, err := boardPath(name)
	if err != nil {
		return ftpError(d.log, op, name, err)
	}
	m, onBoard, err := d.srv.where(p)
	if err != nil {
		return ftpError(d.log, op, p, err)
	}
	if m == nil {
		// The top of a server over several boards is on none of them;
		// what may be asked of it (STAT, LIST) is answered before run.
		return ftpError(d.log, op, p, fmt.Errorf("%w: %q holds the boards' folders", ErrIsDir, p))
	}
	log := d.log
	if m.name != "" {
		log = log.With("board", m.name)
	}
	fsys, err := m.board.FS()
	if err != nil {
		return ftpError(log, op, onBoard, err)
	}
	if !d.srv.enter() {
		return ftpError(log, op, onBoard, ErrStopping)
	}
	defer d.srv.leave()
	ctx, cancel := context.WithCancel(d.ctx)
	if timeout > 0 {
		ctx, cancel = context.WithTimeoutCause(d.ctx, timeout, ErrTimeout)
	}
	defer cancel()
	ctx = boardfs.WithOp(ctx, d.ss.opName(op, p))
	start := time.Now()
	t := target{fsys: fsys, path: onBoard, cache: m.cache, log: log, m: m, q: d.srv.queue(m, fsys)}
	// An upload to this path that its client heard succeed, but the
	// board would not take, is told here, once.
	err = t.q.Failure(onBoard)
	if err == nil {
		err = f(ctx, t)
	}
	if err != nil && ctx.Err() != nil {
		// Say why the wait ended: the deadline, or the client left.
		err = fmt.Errorf("%w: %w", context.Cause(ctx), err)
	}
	log.Debug("ftp op", "op", op, "path", onBoard, "took", time.Since(start), "err", err)
	return ftpError(log, op, onBoard, err)
}

// write runs a change: refused when read-only or aimed at the top level of
// a server over several boards, and the board's cache forgotten afterwards,
// whatever the outcome (a failed rename may have half happened).
func (d *clientDriver) write(op, name string, f func(ctx context.Context, t target) error) error {
	if d.readOnly {
		return ftpError(d.log, op, name, ErrReadOnly)
	}
	if d.srv.isTop(name) {
		return ftpError(d.log, op, name, fmt.Errorf("%w: %q", ErrBoardFolder, name))
	}
	return d.run(op, name, d.srv.opts.OpTimeout, func(ctx context.Context, t target) error {
		if err := d.checkChange(ctx, t, t.path); err != nil {
			return err
		}
		defer t.cache.invalidate()
		return f(ctx, t)
	})
}

// checkChange refuses a change aimed at p on t's board before anything
// reaches the board: the root folder itself (STOR /.. once made the board
// copy a file over and over until the deadline), and, on a board whose
// "/" holds only its mounts, anything at the top level.
func (d *clientDriver) checkChange(ctx context.Context, t target, p string) error {
	if p == "/" {
		return fmt.Errorf("%w: %q", ErrRoot, t.clientPath(p))
	}
	if path.Dir(p) != "/" {
		return nil
	}
	mounts, err := t.m.rootMounts(ctx, t.fsys)
	if err != nil || mounts == nil {
		return err
	}
	me := &MountError{Path: t.clientPath(p)}
	for _, mp := range mounts {
		me.Mounts = append(me.Mounts, t.clientPath(mp))
		me.IsMount = me.IsMount || mp == p
	}
	return me
}

// stat returns t.path's entry, from the cache when it is fresh.
func (d *clientDriver) stat(ctx context.Context, t target) (boardfs.Entry, error) {
	p := t.path
	if p == "/" {
		// The root always exists, and CWD / and CDUP ask often. On boards
		// with several mounts it is the VFS root, which has no stat of its
		// own worth asking for.
		return boardfs.Entry{Name: "/", IsDir: true, ModTime: d.srv.start}, nil
	}
	if e, gone, ok := t.q.Stat(p); ok {
		if gone {
			return boardfs.Entry{}, fmt.Errorf("ftpdriver: stat %q (renamed by a pending upload): %w", p, fs.ErrNotExist)
		}
		return e, nil
	}
	c := t.cache
	if e, absent, ok := c.stat(p); ok {
		if absent {
			return boardfs.Entry{}, fmt.Errorf("ftpdriver: stat %q (cached): %w", p, fs.ErrNotExist)
		}
		return e, nil
	}
	gen := c.generation()
	e, err := t.fsys.Stat(ctx, p)
	switch {
	case err == nil:
		c.putStat(gen, p, e, false)
	case errors.Is(err, fs.ErrNotExist):
		c.putStat(gen, p, boardfs.Entry{}, true)
	}
	return e, err
}

// Stat serves CWD, CDUP, SIZE, MDTM, MLST, RNFR, AVBL, STAT and the first
// step of every listing.
func (d *clientDriver) Stat(name string) (os.FileInfo, error) {
	if !strings.HasPrefix(name, "/") && d.cc != nil {
		// HASH hands its argument over unresolved; the other commands
		// resolve theirs against the working directory, as this does.
		name = path.Join(d.cc.Path(), name)
	}
	if d.srv.isRoot(name) {
		return fileInfo{e: boardfs.Entry{Name: "/", IsDir: true, ModTime: d.srv.start}, readOnly: d.readOnly}, nil
	}
	var e boardfs.Entry
	err := d.run("stat", name, d.srv.opts.OpTimeout, func(ctx context.Context, t target) error {
		var err error
		e, err = d.stat(ctx, t)
		if err == nil {
			// The client's name: a board's folder is the root on the board.
			e.Name = path.Base(path.Clean(name))
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return fileInfo{e: e, readOnly: d.readOnly}, nil
}

// ReadDir serves LIST, NLST, MLSD and STAT of a directory; a wildcard
// pattern from LIST or NLST (listHook) keeps the entries it matches.
func (d *clientDriver) ReadDir(name string) ([]os.FileInfo, error) {
	pattern := d.ss.takeListFilter(path.Clean(name))
	infos, err := d.readDir(name)
	if err != nil {
		return nil, err
	}
	if pattern != "" {
		infos = slices.DeleteFunc(infos, func(fi os.FileInfo) bool {
			ok, _ := path.Match(pattern, fi.Name())
			return !ok
		})
	}
	return infos, nil
}

func (d *clientDriver) readDir(name string) ([]os.FileInfo, error) {
	if d.srv.isRoot(name) {
		return d.srv.boardFolders(d.readOnly), nil
	}
	var entries []boardfs.Entry
	// No deadline of its own: boardfs lists a page at a time, giving the
	// board up between pages, and bounds each page by the wait for the
	// board and the silence on the line, so a big directory lists whole
	// however long it takes while its bytes move.
	err := d.run("list", name, 0, func(ctx context.Context, t target) error {
		pending := t.q.Dir(t.path)
		c := t.cache
		if cached, ok := c.list(t.path); ok {
			entries = pending.Apply(cached)
			return nil
		}
		gen := c.generation()
		var err error
		entries, err = t.fsys.List(ctx, t.path)
		if err == nil {
			c.putList(gen, t.path, entries)
			entries = pending.Apply(entries)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	infos := make([]os.FileInfo, 0, len(entries))
	for _, e := range entries {
		if hasLineBreak(e.Name) {
			// A program on the board can make such a name; listed, its
			// line break would end the entry's line, and what follows it
			// would read as another entry of the attacker's choosing.
			// vsftpd leaves such names out of listings too.
			d.log.Warn("left out of a listing: a name with a line break", "dir", name, "name", e.Name)
			continue
		}
		infos = append(infos, fileInfo{e: e, readOnly: d.readOnly})
	}
	return infos, nil
}

// hasLineBreak reports whether a name holds a CR or an LF.
func hasLineBreak(name string) bool {
	return strings.ContainsAny(name, "\r\n")
}

// checkNewName refuses a name a change would create that no listing can
// show.
func checkNewName(p string) error {
	name := path.Base(p)
	if hasLineBreak(name) {
		return fmt.Errorf("%w: %q", ErrLineBreak, p)
	}
	// Refused here, before the 150 of a STOR: the board's refusal came
	// only once the whole upload had been sent.
	if len(name) > maxName {
		return fmt.Errorf("%w: %d bytes", ErrNameTooLong, len(name))
	}
	return nil
}

// maxName is the longest name, in bytes, that the boards' filesystems
// take: FAT's long names and littlefs's LFS_NAME_MAX are both 255.
const maxName = 255

// Mkdir serves MKD.
func (d *clientDriver) Mkdir(name string, _ os.FileMode) error {
	return d.write("mkdir", name, func(ctx context.Context, t target) error {
		if err := checkNewName(t.path); err != nil {
			return err
		}
		if err := d.settle(ctx, t, t.path); err != nil {
			return err
		}
		return t.fsys.Mkdir(ctx, t.path)
	})
}

// Remove serves DELE.
func (d *clientDriver) Remove(name string) error {
	return d.write("remove", name, func(ctx context.Context, t target) error {
		return d.remove(ctx, t)
	})
}

// RemoveDir serves RMD; it removes empty directories only.
func (d *clientDriver) RemoveDir(name string) error {
	return d.write("rmdir", name, func(ctx context.Context, t target) error {
		if err := d.settle(ctx, t, t.path); err != nil {
			return err
		}
		return t.fsys.RemoveDir(ctx, t.path)
	})
}

// Rename serves RNFR/RNTO. It replaces an existing target: kio and rclone
// upload to a temporary name, then rename it over the file. On a server
// over several boards both names must be inside the same board's folder.
func (d *clientDriver) Rename(oldname, newname string) error {
	to, err := boardPath(newname)
	if err != nil {
		return ftpError(d.log, "rename", newname, err)
	}
	if d.srv.isTop(to) {
		return ftpError(d.log, "rename", to, fmt.Errorf("%w: %q", ErrBoardFolder, to))
	}
	if d.srv.boards != nil {
		from, err := boardPath(oldname)
		if err != nil {
			return ftpError(d.log, "rename", oldname, err)
		}
		fromBoard, _ := splitBoard(from)
		toBoard, rest := splitBoard(to)
		if fromBoard != toBoard && !d.srv.isTop(from) {
			// Moving a file between boards would be a download and an
			// upload, with no way to make it all or nothing.
			return ftpError(d.log, "rename", from, fmt.Errorf("%w: %q to %q", ErrAcrossBoards, from, to))
		}
		to = rest
	}
	return d.write("rename", oldname, func(ctx context.Context, t target) error {
		if err := d.checkChange(ctx, t, to); err != nil {
			return err
		}
		if err := checkNewName(to); err != nil {
			return err
		}
		return d.rename(ctx, t, to)
	})
}

// ComputeHash serves HASH and XSHA256 with SHA-256 computed on the board,
// for the whole file only.
func (d *clientDriver) ComputeHash(name string, algo ftpserver.HASHAlgo, start, end int64) (string, error) {
	var sum []byte
	err := d.run("hash", name, d.srv.opts.LongOpTimeout, func(ctx context.Context, t target) error {
		if algo != ftpserver.HASHAlgoSHA256 {
			return fmt.Errorf("%w: only SHA-256 is computed on the board", boardfs.ErrNotSupported)
		}
		e, err := d.stat(ctx, t)
		if err != nil {
			return err
		}
		if start != 0 || end != e.Size {
			return fmt.Errorf("%w: hash of part of a file (%d-%d of %d bytes)", boardfs.ErrNotSupported, start, end, e.Size)
		}
		if pending, ok, err := t.q.Hash(t.path); ok {
			sum = pending
			return err
		}
		sum, err = t.fsys.Hash(ctx, t.path)
		return err
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(sum), nil
}

// GetAvailableSpace serves AVBL: the board's free bytes.
func (d *clientDriver) GetAvailableSpace(name string) (int64, error) {
	if d.srv.isRoot(name) {
		return 0, ftpError(d.log, "space", name, fmt.Errorf("%w: free space of %q, which is on no board", boardfs.ErrNotSupported, name))
	}
	var free int64
	err := d.run("space", name, d.srv.opts.OpTimeout, func(ctx context.Context, t target) error {
		var err error
		free, _, err = t.fsys.Space(ctx)
		return err
	})
	return free, err
}

// Name is afero's name for this filesystem.
func (d *clientDriver) Name() string { return "ftpbridge" }

// Chtimes is only reached by MFMT, which the library answers even when
// it is not advertised: the board has no way to set a file's time.
func (d *clientDriver) Chtimes(name string, _, _ time.Time) error {
	return ftpError(d.log, "mfmt", name, fmt.Errorf("%w: setting a file's time", boardfs.ErrNotSupported))
}

// The afero.Fs methods below are never called by ftpserverlib with this
// driver: GetHandle and ReadDir replace Create, Open and OpenFile, and only
// SITE (disabled) calls MkdirAll, RemoveAll, Chmod and Chown.

// Create is not used: GetHandle serves STOR.
func (d *clientDriver) Create(name string) (afero.File, error) {
	return nil, ftpError(d.log, "create", name, ErrNotUsed)
}

// Open is not used: ReadDir serves listings and GetHandle downloads.
func (d *clientDriver) Open(name string) (afero.File, error) {
	return nil, ftpError(d.log, "open", name, ErrNotUsed)
}

// OpenFile is not used: GetHandle serves transfers.
func (d *clientDriver) OpenFile(name string, _ int, _ os.FileMode) (afero.File, error) {
	return nil, ftpError(d.log, "openfile", name, ErrNotUsed)
}

// MkdirAll is only called by SITE MKDIR.
func (d *clientDriver) MkdirAll(name string, _ os.FileMode) error {
	return ftpError(d.log, "mkdirall", name, ErrNotUsed)
}

// RemoveAll is only called by SITE RMDIR; it must never delete a tree.
func (d *clientDriver) RemoveAll(name string) error {
	return ftpError(d.log, "removeall", name, ErrNotUsed)
}

// Chmod is only called by SITE CHMOD; the board has no permissions.
func (d *clientDriver) Chmod(name string, _ os.FileMode) error {
	return ftpError(d.log, "chmod", name, ErrNotUsed)
}

// Chown is only called by SITE CHOWN; the board has no owners.
func (d *clientDriver) Chown(name string, _, _ int) error {
	return ftpError(d.log, "chown", name, ErrNotUsed)
}
