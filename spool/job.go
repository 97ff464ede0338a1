package spool

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/ftpbridge/ftpbridge/boardfs"
)

const (
	// piece is how much the writer hands boardfs at once: one segment.
	piece = 4 << 10
	// maxAttempts bounds how often a write the board spoilt (a reset, a
	// damaged segment, a busy board) starts over. A board that leaves,
	// or stops answering, is waited for, however long, and not counted.
	maxAttempts = 4
	// retryAfter is the pause before a write starts over.
	retryAfter = time.Second
	// silentRetry is the pause before a write starts over on a board that
	// stopped answering: each try costs the board's other users a second
	// or more of asking it.
	silentRetry = 5 * time.Second
)

// Job is one upload: its bytes arriving into the spool (Write), until its
// client is done (Finish) or gone (Drop), and its writer sending them to
// the board.
type Job struct {
	q    *Queue
	id   string   // the spool file's name, which orders uploads
	file *os.File // the bytes; written by the transfer, read by the writer and readers
	hash hash.Hash
	done chan struct{} // closed when the writer returns

	first  *boardfs.Upload // the caller's, for the first attempt only
	saveMu sync.Mutex      // one save of m at a time

	// Under q.mu.
	m            meta
	received     int64
	fed          int64 // handed to the board's upload, this attempt
	complete     bool  // the client finished: m is on disk with the size
	attached     bool  // the client waits for its reply: failures are told to it
	dropped      bool  // given up: the transfer failed
	finished     bool  // the writer is done: out of the queue
	landed       bool  // the board has it
	err          error // the failure the client is told
	waitingBoard bool  // the writer waits for the board to be connected
	silentBoard  bool  // the board stopped answering this job's last write
	refs         int   // the writer, the transfer, readers: the file closes at 0
	remove       bool  // remove the files at refs 0 (else keep them)
}

// meta is what the spool keeps beside an upload's bytes, once its client
// is done: enough to write it at the next start.
type meta struct {
	Board    string    `json:"board"`
	Origin   string    `json:"origin"`         // the name written on the board first
	Target   string    `json:"target"`         // where it lands: a folded rename moves it
	Gone     []string  `json:"gone,omitempty"` // names folded renames took from the board
	Append   bool      `json:"append,omitempty"`
	Base     int64     `json:"base,omitempty"` // the size of the file appended to
	Size     int64     `json:"size"`
	SHA256   string    `json:"sha256"`
	Received time.Time `json:"received"`
	// Committed: Origin on the board holds the upload; what is left is
	// the rename to Target and removing Gone.
	Committed bool `json:"committed,omitempty"`
	// Deleted: the file was deleted before it landed; what is left is
	// removing Origin, Target and Gone from the board.
	Deleted bool `json:"deleted,omitempty"`
}

func newJob(q *Queue, id string, f *os.File, m meta) *Job {
	return &Job{q: q, id: id, file: f, hash: sha256.New(), done: make(chan struct{}), m: m}
}

// Write adds the client's bytes to the spool. It fails with the board's
// error once the writer failed while the client is still sending.
func (j *Job) Write(p []byte) (int, error) {
	q := j.q
	q.mu.Lock()
	err, target := j.err, j.m.Target
	if err == nil && (j.dropped || j.finished) {
		err = fmt.Errorf("spool: %q: %w", target, errDropped)
	}
	q.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n, err := j.file.Write(p)
	j.hash.Write(p[:n])
	q.mu.Lock()
	j.received += int64(n)
	q.broadcast()
	q.mu.Unlock()
	if err != nil {
		return n, fmt.Errorf("spool: keeping the upload of %q on the host: %w", target, err)
	}
	return n, nil
}

// Finish is called when the client has sent everything: it makes the
// spool durable (fsync), so the upload survives a stop or a crash, and
// then waits up to wait for the board to have it. onBoard says the board
// has it; with a nil error and onBoard false, the write goes on in the
// background. An error is the board's when the write failed within wait
// (the upload is then given up: its client, told, still has the file).
// If gone closes before the board has the upload whole, or before Finish
// is called, the upload is given up with ErrClientGone.
func (j *Job) Finish(wait time.Duration, gone <-chan struct{}) (onBoard bool, err error) {
	q := j.q
	defer j.release()
	select {
	case <-gone:
		j.drop()
		return false, ErrClientGone
	default:
	}
	q.mu.Lock()
	err = j.err
	q.mu.Unlock()
	if err == nil {
		err = j.durable()
	}
	if err != nil {
		j.drop()
		return false, err
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-j.done:
	case <-t.C:
	case <-gone:
		// Before the board has it whole: the old file stays.
		j.drop()
		q.mu.Lock()
		landed := j.landed
		q.mu.Unlock()
		if !landed {
			return false, ErrClientGone
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	j.attached = false
	if j.err != nil {
		// The writer may have failed, and cleared up, before the meta
		// was saved.
		_ = os.Remove(j.metaFile())
	}
	return j.landed, j.err
}

// durable syncs the bytes and saves the meta beside them: from then on the
// upload is the spool's, and answers for its path.
func (j *Job) durable() error {
	if err := j.file.Sync(); err != nil {
		return fmt.Errorf("spool: keeping the upload of %q on the host: %w", j.m.Target, err)
	}
	q := j.q
	q.mu.Lock()
	j.m.Size = j.received
	j.m.SHA256 = hex.EncodeToString(j.hash.Sum(nil))
	j.m.Received = time.Now()
	q.mu.Unlock()
	if err := j.save(); err != nil {
		return err
	}
	q.mu.Lock()
	j.complete = true
	q.broadcast()
	q.mu.Unlock()
	return nil
}

// Drop gives the upload up: its transfer failed. The writer removes what
// it put on the board; Drop waits for it, so that the client's reply comes
// after, as for any failed upload.
func (j *Job) Drop() {
	defer j.release()
	j.drop()
}

func (j *Job) drop() {
	q := j.q
	q.mu.Lock()
	if !j.finished {
		j.dropped = true
		j.attached = false
		q.broadcast()
	}
	q.mu.Unlock()
	t := time.NewTimer(q.s.opts.CommitTimeout)
	defer t.Stop()
	select {
	case <-j.done:
	case <-t.C:
	}
}

// release gives up one reference to the spool file; the last one closes
// it, and removes the files when the upload is done with.
func (j *Job) release() {
	q := j.q
	q.mu.Lock()
	j.refs--
	last, remove := j.refs == 0, j.remove
	q.mu.Unlock()
	if !last {
		return
	}
	_ = j.file.Close()
	if remove {
		_ = os.Remove(j.file.Name())
	}
}

// run is the writer: it waits for its turn (one upload at a time per
// board, in order), writes, and settles the outcome.
func (j *Job) run() {
	defer j.q.s.writers.Done()
	err := j.turn()
	if err == nil {
		err = j.write()
	}
	j.end(err)
	close(j.done)
}

// stopped says why the writer must stop now, if it must; q.mu is held.
func (j *Job) stopped() error {
	switch {
	case j.dropped:
		return errDropped
	case j.q.s.leaving.Load():
		return errLeft
	}
	return nil
}

// errDeleted stops feeding an upload whose file was deleted meanwhile.
var errDeleted = errors.New("spool: deleted before it was written")

// wait sleeps until the queue changes or d passes; q.mu is held, and
// held again on return.
func (j *Job) wait(d time.Duration) {
	q := j.q
	ch := q.wake
	q.mu.Unlock()
	t := time.NewTimer(d)
	select {
	case <-ch:
	case <-t.C:
	}
	t.Stop()
	q.mu.Lock()
}

// turn waits until j is the oldest pending upload of its board: the
// board takes one write at a time, and uploads land in the order they
// came.
func (j *Job) turn() error {
	q := j.q
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		if err := j.stopped(); err != nil {
			return err
		}
		// A deleted upload writes nothing, and touches names no other
		// pending upload does: it need not wait.
		if q.jobs[0] == j || j.m.Deleted {
			return nil
		}
		j.wait(time.Minute)
	}
}

// write writes j to the board, again if the board spoilt the write,
// and after the board comes back if it left.
func (j *Job) write() error {
	q := j.q
	attempts := 0
	silent := false // the board stopped answering, and it was said
	for {
		fsys, err := j.boardFS()
		if err != nil {
			return err
		}
		err = j.writeOnce(fsys)
		if err == nil || errors.Is(err, errDropped) || errors.Is(err, errLeft) {
			return err
		}
		q.mu.Lock()
		attached := j.attached
		q.mu.Unlock()
		if attached {
			return err // its client is told, and still has the file
		}
		if _, ferr := q.board.FS(); ferr != nil {
			q.log.Warn("the board left during the write of an upload: it is written again once the board is back",
				"path", j.target(), "err", err)
			continue
		}
		if errors.Is(err, boardfs.ErrSilent) {
			// As good as away, though its port is open: a hung board
			// someone will reset, a stalled adapter that may move again.
			if !silent {
				q.log.Warn("the board stopped answering during the write of an upload: it is written again once the board answers",
					"path", j.target(), "err", err)
				silent = true
			}
			q.mu.Lock()
			j.silentBoard = true
			j.wait(silentRetry)
			q.mu.Unlock()
			continue
		}
		silent = false
		q.mu.Lock()
		j.silentBoard = false
		q.mu.Unlock()
		if refused(err) || attempts >= maxAttempts {
			return err
		}
		attempts++
		q.log.Warn("writing an upload to the board failed: starting it again", "path", j.target(), "attempt", attempts, "err", err)
		q.mu.Lock()
		j.wait(retryAfter)
		q.mu.Unlock()
	}
}

// refused reports whether the board refused the write for a reason a
// second try would meet again: no space, a name it cannot hold, an
// exception its Python raised (a directory where the file goes, a
// read-only filesystem), a file that changed under an append, a line
// that loses what is sent without waiting (ErrLineNotHeld). What the line
// spoils (a reset, a damaged or lost segment, a busy or silent board) is
// worth another try.
func refused(err error) bool {
	if errors.Is(err, boardfs.ErrBoardReset) || errors.Is(err, boardfs.ErrDisconnected) {
		return false
	}
	var pe *boardfs.PyError
	return errors.As(err, &pe) || errors.Is(err, boardfs.ErrNoSpace) || errors.Is(err, boardfs.ErrBadName) ||
		errors.Is(err, boardfs.ErrNotSupported) || errors.Is(err, fs.ErrNotExist) ||
		errors.Is(err, fs.ErrExist) || errors.Is(err, fs.ErrPermission) || errors.Is(err, boardfs.ErrLineNotHeld)
}

// errMoved: the file an earlier run committed is no longer where it was
// put, and the data must be written again.
var errMoved = errors.New("spool: the written file is no longer where it was put")

func (j *Job) target() string {
	j.q.mu.Lock()
	defer j.q.mu.Unlock()
	return j.m.Target
}

// boardFS returns the board to write to. A write its client waits for
// fails at once when the board is away; one in the background waits for
// the board to come back.
func (j *Job) boardFS() (*boardfs.FS, error) {
	q := j.q
	said := false
	for {
		q.mu.Lock()
		if err := j.stopped(); err != nil {
			q.mu.Unlock()
			return nil, err
		}
		attached := j.attached
		q.mu.Unlock()
		fsys, err := q.board.FS()
		if err == nil {
			q.mu.Lock()
			j.waitingBoard = false
			q.mu.Unlock()
			if said {
				q.log.Info("the board is back: writing a pending upload", "path", j.target())
			}
			return fsys, nil
		}
		if attached {
			return nil, err
		}
		if !said {
			q.log.Info("waiting for the board to write a pending upload", "path", j.target(), "err", err)
			said = true
		}
		q.mu.Lock()
		j.waitingBoard = true
		j.wait(q.s.opts.BoardPoll)
		q.mu.Unlock()
	}
}

// writeOnce writes the upload to its first name on the board, then puts
// it where it lands.
func (j *Job) writeOnce(fsys *boardfs.FS) error {
	q := j.q
	q.mu.Lock()
	m := j.m
	q.mu.Unlock()
	// A console that gives the board up says to whom.
	ctx := boardfs.WithOp(q.s.ctx, "the upload of "+m.Target)
	if !m.Committed && !m.Deleted {
		up, off, err := j.open(ctx, fsys, m)
		if err != nil {
			return err
		}
		if err := j.feed(up, off); err != nil {
			if aerr := up.Abort(ctx); aerr != nil {
				q.log.Debug("removing the temporary file of an upload", "path", m.Origin, "err", aerr)
			}
			q.changed()
			if errors.Is(err, errDeleted) {
				return j.place(ctx, fsys)
			}
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, q.s.opts.CommitTimeout)
		err = up.Commit(cctx)
		cancel()
		q.changed()
		if err != nil {
			return err
		}
		q.mu.Lock()
		j.m.Committed = true
		more := j.m.Origin != j.m.Target || len(j.m.Gone) > 0
		q.mu.Unlock()
		if more {
			if err := j.save(); err != nil {
				q.log.Warn("saving the state of a pending upload", "path", m.Origin, "err", err)
			}
		}
	}
	return j.place(ctx, fsys)
}

// open starts the board's upload: the caller's on the first attempt, else
// a new one. An append that starts over continues where the board's file
// ends (the earlier attempt wrote in place); off is where in the spool.
func (j *Job) open(ctx context.Context, fsys *boardfs.FS, m meta) (*boardfs.Upload, int64, error) {
	if j.first != nil {
		up := j.first
		j.first = nil
		return up, 0, nil
	}
	if !m.Append {
		up, err := fsys.Create(ctx, m.Origin)
		return up, 0, err
	}
	var size int64
	e, err := fsys.Stat(ctx, m.Origin)
	switch {
	case err == nil:
		size = e.Size
	case errors.Is(err, fs.ErrNotExist):
	default:
		return nil, 0, err
	}
	if size < m.Base || size > m.Base+m.Size {
		return nil, 0, fmt.Errorf("spool: append to %q: the board's file has %d bytes, the append began at %d with %d: %w",
			m.Origin, size, m.Base, m.Size, fs.ErrExist)
	}
	up, err := fsys.Append(ctx, m.Origin)
	return up, size - m.Base, err
}

// feed hands the spool to the board's upload from off, as the bytes
// arrive, until the client is done and all are sent. The upload may also
// take bytes already in the spool itself (SetSource), to go on with them
// in the exec it has the board for.
func (j *Job) feed(up *boardfs.Upload, off int64) error {
	up.SetSource(func(p []byte) int {
		n := j.ready(off, p)
		off += int64(n)
		return n
	})
	buf := make([]byte, piece)
	for {
		n, err := j.next(off, buf)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		off += int64(n)
		if _, err := up.Write(buf[:n]); err != nil {
			return err
		}
		j.q.mu.Lock()
		j.fed = off
		j.q.mu.Unlock()
	}
}

// ready reads what the spool holds at off into buf without waiting: 0
// when nothing is there yet, or it cannot be read (next says why).
func (j *Job) ready(off int64, buf []byte) int {
	q := j.q
	q.mu.Lock()
	n := 0
	if j.stopped() == nil && !j.m.Deleted && off < j.received {
		n = int(min(int64(len(buf)), j.received-off))
	}
	q.mu.Unlock()
	if n == 0 {
		return 0
	}
	if _, err := j.file.ReadAt(buf[:n], off); err != nil {
		return 0
	}
	return n
}

// next reads the spool at off into buf, waiting for bytes to arrive; 0
// when the client is done and off is the end.
func (j *Job) next(off int64, buf []byte) (int, error) {
	q := j.q
	q.mu.Lock()
	for {
		if err := j.stopped(); err != nil {
			q.mu.Unlock()
			return 0, err
		}
		if j.m.Deleted {
			q.mu.Unlock()
			return 0, errDeleted
		}
		if off < j.received {
			n := int(min(int64(len(buf)), j.received-off))
			q.mu.Unlock()
			if _, err := j.file.ReadAt(buf[:n], off); err != nil {
				return 0, fmt.Errorf("spool: reading %s back: %w", j.file.Name(), err)
			}
			return n, nil
		}
		if j.complete {
			q.mu.Unlock()
			return 0, nil
		}
		j.wait(time.Minute)
	}
}

// place moves the written file where it lands and removes the names
// folded renames took, until no rename is left to do; folds may come in
// meanwhile.
func (j *Job) place(ctx context.Context, fsys *boardfs.FS) error {
	q := j.q
	for {
		q.mu.Lock()
		if j.dropped {
			q.mu.Unlock()
			return errDropped
		}
		m := j.m
		m.Gone = slices.Clone(j.m.Gone)
		q.mu.Unlock()
		if m.Deleted {
			for _, n := range slices.Compact(slices.Sorted(slices.Values(append(m.Gone, m.Origin, m.Target)))) {
				if err := fsys.Remove(ctx, n); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
				q.changed()
			}
			return nil
		}
		if m.Origin == m.Target && len(m.Gone) == 0 {
			return nil
		}
		if m.Origin != m.Target {
			err := fsys.Rename(ctx, m.Origin, m.Target)
			q.changed()
			if errors.Is(err, fs.ErrNotExist) {
				// A run that stopped right after this rename.
				if e, serr := fsys.Stat(ctx, m.Target); serr != nil || e.Size != m.Size {
					q.mu.Lock()
					j.m.Committed = false
					q.mu.Unlock()
					return fmt.Errorf("%w: %q", errMoved, m.Origin)
				}
			} else if err != nil {
				return err
			}
			q.mu.Lock()
			j.m.Origin = m.Target
			q.broadcast()
			q.mu.Unlock()
		}
		for _, g := range m.Gone {
			if err := fsys.Remove(ctx, g); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			q.changed()
			q.mu.Lock()
			j.m.Gone = slices.DeleteFunc(j.m.Gone, func(n string) bool { return n == g })
			q.broadcast()
			q.mu.Unlock()
		}
		if err := j.save(); err != nil {
			q.log.Warn("saving the state of a pending upload", "path", m.Target, "err", err)
		}
	}
}

// end settles the writer's outcome: landed, given up, left for the next
// start, told to the waiting client, or failed in the background (kept
// on the host, and told to the next operation on the path).
func (j *Job) end(err error) {
	q := j.q
	q.mu.Lock()
	m := j.m
	attached := j.attached
	q.mu.Unlock()
	var failed *Failed
	if err != nil && !errors.Is(err, errDropped) && !errors.Is(err, errLeft) && !attached {
		// Kept before its meta goes: a crash in between leaves it to be
		// written again, never lost. And before the job leaves the queue,
		// so that no one sees it neither pending nor failed (its file may
		// move while open: a reader of the spooled version keeps it).
		failed = &Failed{Path: m.Target, Size: m.Size, Received: m.Received, Err: err}
		failed.Kept = j.keep(failed)
	}
	q.mu.Lock()
	j.finished = true
	j.waitingBoard = false
	q.jobs = slices.DeleteFunc(q.jobs, func(k *Job) bool { return k == j })
	m = j.m
	attached, complete := j.attached, j.complete
	switch {
	case err == nil:
		j.landed, j.remove = true, true
	case errors.Is(err, errDropped):
		j.remove = true
	case errors.Is(err, errLeft):
		// Kept for the next start, if its client was done; an upload cut
		// off by the stop was never answered with success.
		j.remove = !complete
	case attached:
		j.err = err
		j.remove = true
	}
	if failed != nil {
		j.remove = true
		for _, n := range []string{m.Origin, m.Target} {
			q.failures[n] = failed
		}
	}
	q.broadcast()
	q.mu.Unlock()

	if j.remove {
		_ = os.Remove(j.metaFile())
	}
	switch {
	case err == nil && m.Deleted:
		q.log.Info("deleted as asked: the board has neither the upload nor the file it replaced", "path", m.Target)
	case err == nil && !attached:
		q.log.Info("pending upload written to the board", "path", m.Target, "bytes", m.Size,
			"waited", time.Since(m.Received).Round(time.Millisecond))
	case failed != nil:
		q.log.Error("an upload its client was told had succeeded could not be written to the board",
			"path", m.Target, "bytes", m.Size, "kept", failed.Kept, "err", err)
	}
	j.release()
}
