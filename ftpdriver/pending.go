package ftpdriver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/ftpbridge/ftpbridge/boardfs"
	"github.com/ftpbridge/ftpbridge/spool"
)

// Uploads go through package spool: the client's bytes are on the host's
// disk at once, so its 226 does not wait for a serial line that moves 11 KB
// a second (FileZilla gives up after 20 s of silence, and its OS takes
// the whole file into socket buffers long before the board has it). What
// follows keeps the board's order and the client's view consistent: a
// pending file answers for its path, later changes to it wait for it or
// fold into it, and a failed write is told on the path's next operation.

// openSpool opens the spool for Listen.
func (s *Server) openSpool() error {
	dir := s.opts.SpoolDir
	if dir == "" {
		d, err := os.MkdirTemp("", "ftpbridge-spool-")
		if err != nil {
			return fmt.Errorf("ftpdriver: spool: %w", err)
		}
		dir, s.spoolTemp = d, true
	}
	// A read-only server changes nothing on the board, not even what an
	// earlier run left pending: that waits for a read-write one.
	st, err := spool.Open(spool.Options{Dir: dir, Logger: s.log, CommitTimeout: s.opts.LongOpTimeout, Hold: s.opts.ReadOnly})
	if err != nil {
		return fmt.Errorf("ftpdriver: %w", err)
	}
	s.spool = st
	return nil
}

// Drain is the end of a shutdown, after Serve returned: it waits for the
// uploads still being written to the boards, saying how many and how much,
// until they land or ctx is done (a second Ctrl-C); what is left then
// stays in the spool, to be written the next time the same board is
// served. Once it returns, no write is running on any board.
func (s *Server) Drain(ctx context.Context) {
	if s.spool == nil {
		return
	}
	s.spool.Drain(ctx)
	if !s.spoolTemp {
		return
	}
	if n, _ := s.spool.Pending(); n > 0 {
		return
	}
	if _, err := os.Stat(filepath.Join(s.spool.Dir(), "failed")); err == nil {
		return
	}
	_ = os.RemoveAll(s.spool.Dir())
}

// Pending counts the uploads not yet on their boards, and their bytes.
func (s *Server) Pending() (n int, bytes int64) {
	if s.spool == nil {
		return 0, 0
	}
	return s.spool.Pending()
}

// adopt takes up each board's queue as soon as the board is there, so
// that what an earlier run left pending is written at start, not at the
// first client's request. Over several boards, boards come and go: it
// looks every second (no board traffic: the FS and its Info are at hand).
func (s *Server) adopt(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if s.boards == nil {
			if fsys, err := s.single.board.FS(); err == nil {
				s.queue(s.single, fsys)
			}
		} else {
			for _, name := range s.boards.Names() {
				m, _, err := s.where("/" + name)
				if err != nil || m == nil {
					continue
				}
				if fsys, err := m.board.FS(); err == nil {
					s.queue(m, fsys)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// queue returns the pending uploads of the board fsys is, on mount m.
func (s *Server) queue(m *mount, fsys *boardfs.FS) *spool.Queue {
	name, log := s.opts.BoardName, s.log
	if m.name != "" {
		name, log = m.name, log.With("board", m.name)
	}
	key := spool.Key(fsys.Board(), name)
	return s.spool.Queue(key, mountBoard{s: s, m: m, key: key, name: name}, m.cache.invalidate, log)
}

// mountBoard is a mount's board as its queue reaches it: only while the
// board there is the one the queue is for.
type mountBoard struct {
	s         *Server
	m         *mount
	key, name string
}

func (b mountBoard) FS() (*boardfs.FS, error) {
	board := b.m.board
	if b.s.boards != nil {
		var ok bool
		if board, ok = b.s.boards.Board(b.m.name); !ok {
			return nil, fmt.Errorf("ftpdriver: board %q: %w", b.m.name, boardfs.ErrNotConnected)
		}
	}
	fsys, err := board.FS()
	if err != nil {
		return nil, err
	}
	if spool.Key(fsys.Board(), b.name) != b.key {
		return nil, fmt.Errorf("ftpdriver: another board is connected in the place of %s: %w", b.key, boardfs.ErrNotConnected)
	}
	return fsys, nil
}

// openPending opens the pending version of p at offset; false when no
// upload to p is pending. A pending append's first bytes are the board's:
// they are read from the board, up to where the append begins.
func openPending(ctx context.Context, fsys *boardfs.FS, q *spool.Queue, p string, offset int64) (io.ReadCloser, bool, error) {
	rc, base, ok := q.Open(p, offset)
	if !ok || offset >= base {
		return rc, ok, nil
	}
	head, err := fsys.Open(ctx, p, offset)
	if err != nil {
		rc.Close()
		return nil, true, err
	}
	return &joined{Reader: io.MultiReader(&exactly{r: head, n: base - offset}, rc), closers: []io.Closer{head, rc}}, true, nil
}

// exactly reads n bytes of r, and fails if r ends before: a board file
// shorter than where its append began is no file to serve.
type exactly struct {
	r io.Reader
	n int64
}

func (e *exactly) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, io.EOF
	}
	n, err := e.r.Read(p[:min(int64(len(p)), e.n)])
	e.n -= int64(n)
	if errors.Is(err, io.EOF) && e.n > 0 {
		err = fmt.Errorf("ftpdriver: the board's file ends %d bytes before its pending append: %w", e.n, io.ErrUnexpectedEOF)
	}
	if err == nil && e.n == 0 {
		err = io.EOF
	}
	return n, err
}

// joined reads the board's part of a pending append, then the spool's.
type joined struct {
	io.Reader
	closers []io.Closer
}

func (j *joined) Close() error {
	var errs []error
	for _, c := range j.closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// inDirectory checks that p's directory is one, before an upload is
// taken: the board may not see the upload before its client is answered
// (it writes one upload at a time), and a refusal the bridge can see
// coming is better told at once than after a 226.
func (d *clientDriver) inDirectory(ctx context.Context, t target) error {
	dir := path.Dir(t.path)
	if dir == "/" {
		return nil
	}
	at := t
	at.path = dir
	e, err := d.stat(ctx, at)
	if err != nil {
		return err
	}
	if !e.IsDir {
		return fmt.Errorf("%w: upload to %q: %q is a file", ErrNotDir, t.path, dir)
	}
	return nil
}

// settleWait is how long an operation waits for a pending upload of its
// path before it answers busy: half its deadline, leaving it the rest.
func (d *clientDriver) settleWait() time.Duration { return d.srv.opts.OpTimeout / 2 }

// settle waits for the pending uploads touching p, so a change to p comes
// after them, as it was asked.
func (d *clientDriver) settle(ctx context.Context, t target, p string) error {
	return t.q.Settle(ctx, p, d.settleWait())
}

// remove serves DELE. Deleting a pending file is folded into its upload
// (spool.Queue.Remove) rather than waiting for it to land and then
// deleting it: the client hears at once, the line is spared the rest of
// the file, and the board ends the same: without the file, its old
// version, or any name a folded rename took.
func (d *clientDriver) remove(ctx context.Context, t target) error {
	if _, gone, ok := t.q.Stat(t.path); ok && gone {
		return fmt.Errorf("ftpdriver: remove %q (renamed by a pending upload): %w", t.path, fs.ErrNotExist)
	}
	if folded, err := t.q.Remove(t.path); folded || err != nil {
		return err
	}
	if err := d.settle(ctx, t, t.path); err != nil {
		return err
	}
	return t.fsys.Remove(ctx, t.path)
}

// rename serves RNTO. A pending file renamed is folded into its upload:
// rclone and kio upload to a temporary name and rename it over the target
// at once, and waiting for the board to have the whole file first would
// bring back the timeout the spool is there to avoid. It is folded only
// where the board would take the rename (to is no directory, and its
// directory is one); anything else waits for the pending uploads it
// touches, and renames on the board.
func (d *clientDriver) rename(ctx context.Context, t target, to string) error {
	from := t.path
	e, gone, pending := t.q.Stat(from)
	if pending && gone {
		return fmt.Errorf("ftpdriver: rename %q (renamed by a pending upload): %w", from, fs.ErrNotExist)
	}
	if pending && !e.IsDir && d.takes(ctx, t, to) {
		folded, err := t.q.Rename(from, to)
		if folded || err != nil {
			return err
		}
	}
	if err := d.settle(ctx, t, from); err != nil {
		return err
	}
	if err := d.settle(ctx, t, to); err != nil {
		return err
	}
	return t.fsys.Rename(ctx, from, to)
}

// takes reports whether the board would take a file renamed to p: p is no
// directory and its parent is one.
func (d *clientDriver) takes(ctx context.Context, t target, p string) bool {
	at := t
	at.path = p
	if e, err := d.stat(ctx, at); err == nil && e.IsDir {
		return false
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false
	}
	at.path = path.Dir(p)
	e, err := d.stat(ctx, at)
	return err == nil && e.IsDir
}

// failedReply says in words why an upload its client was told had
// succeeded is not on the board. The host path of the kept data is in the
// log: the client may be on another machine.
func failedReply(f *spool.Failed) string {
	why := ftpError(slog.New(slog.DiscardHandler), "", "", f.Err).Error()
	return fmt.Sprintf("the upload of %s received at %s could not be written to the board (%s); its data is kept on the host, in ftpbridge's spool (see its log)",
		f.Path, f.Received.Format("15:04:05"), why)
}
