package spool

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ftpbridge/ftpbridge/boardfs"
)

// Queue is one board's pending uploads, in the order they arrived. Its
// methods are safe for concurrent use. Paths are the board's: absolute
// and clean.
//
// An upload is pending from Begin until the board has it (or it is given
// up or fails). It answers for its path from the moment its client
// finished sending it (Job.Finish); before that, the board's old file
// answers, as it would for an upload still going.
type Queue struct {
	s       *Store
	key     string
	dir     string
	board   Board
	changed func()
	log     *slog.Logger

	mu       sync.Mutex
	jobs     []*Job             // pending, oldest first; the first one writes
	failures map[string]*Failed // told once, to the next operation on the path
	wake     chan struct{}      // closed and replaced on every change
}

// broadcast wakes everyone waiting on the queue; q.mu is held.
func (q *Queue) broadcast() {
	close(q.wake)
	q.wake = make(chan struct{})
}

// Begin starts an upload to p: its bytes go to a new spool file, and a
// writer sends them to the board as they arrive, through first (the board
// upload the caller opened with Create or Append, which says early what
// the board refuses) and, should the write have to start over, through a
// new one. appending says first adds to the file, which had base bytes.
// The caller has made sure (Settle) that nothing pending touches p.
func (q *Queue) Begin(p string, first *boardfs.Upload, appending bool, base int64) (*Job, error) {
	if q.s.closed.Load() {
		return nil, ErrStopping
	}
	if err := os.MkdirAll(q.dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	id := fmt.Sprintf("%016x-%s", time.Now().UnixNano(), hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(filepath.Join(q.dir, id+dataExt), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	j := newJob(q, id, f, meta{Board: q.key, Origin: p, Target: p, Append: appending, Base: base})
	j.first = first
	j.attached = true
	j.refs = 2 // the writer's and the transfer's
	q.mu.Lock()
	q.jobs = append(q.jobs, j)
	q.broadcast()
	q.mu.Unlock()
	q.start(j)
	return j, nil
}

func (q *Queue) start(j *Job) {
	q.s.writers.Add(1)
	go j.run()
}

// visible reports whether j answers for its path; q.mu is held.
func (j *Job) visible() bool { return j.complete && !j.finished && !j.dropped }

// names are the paths a pending upload touches: where it is written
// first, where it lands, and the names a folded rename took from the
// board; q.mu is held.
func (j *Job) names() []string {
	return append([]string{j.m.Origin, j.m.Target}, j.m.Gone...)
}

// touches reports whether j touches p or anything under it; q.mu is held.
func (j *Job) touches(p string) bool {
	if j.finished || j.dropped {
		return false
	}
	for _, n := range j.names() {
		if n == p || p == "/" || strings.HasPrefix(n, p+"/") {
			return true
		}
	}
	return false
}

// Stat answers for p while an upload to it is pending: ok is false when
// no pending upload says anything about p. gone is true when p does not
// exist for now although the board may still hold it (a pending rename
// took it away); otherwise e is the pending file: its size, and the time
// its client finished sending it.
func (q *Queue) Stat(p string) (e boardfs.Entry, gone, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, j := range slices.Backward(q.jobs) {
		if !j.visible() {
			continue
		}
		if j.m.Target == p && !j.m.Deleted {
			return j.entry(), false, true
		}
		if slices.Contains(j.names(), p) {
			return boardfs.Entry{}, true, true
		}
	}
	return boardfs.Entry{}, false, false
}

// entry is the pending file: an append's size counts the board's bytes
// it adds to.
func (j *Job) entry() boardfs.Entry {
	size := j.m.Size
	if j.m.Append {
		size += j.m.Base
	}
	return boardfs.Entry{Name: path.Base(j.m.Target), Size: size, ModTime: j.m.Received}
}

// Overlay is what the pending uploads change in one directory's listing.
type Overlay struct {
	files  []boardfs.Entry
	hidden map[string]bool
}

// Dir returns what pending uploads change in dir's listing now. Take it
// before reading the listing: an upload that lands in between is then in
// both, never in neither.
func (q *Queue) Dir(dir string) Overlay {
	q.mu.Lock()
	defer q.mu.Unlock()
	o := Overlay{hidden: map[string]bool{}}
	for _, j := range q.jobs {
		if !j.visible() {
			continue
		}
		for _, n := range j.names() {
			if path.Dir(n) == dir {
				o.hidden[path.Base(n)] = true
			}
		}
		if path.Dir(j.m.Target) == dir && !j.m.Deleted {
			o.files = append(o.files, j.entry())
		}
	}
	return o
}

// Apply returns entries (a listing read after the Overlay was taken) with
// the pending files in place of the board's.
func (o Overlay) Apply(entries []boardfs.Entry) []boardfs.Entry {
	if len(o.hidden) == 0 {
		return entries
	}
	out := make([]boardfs.Entry, 0, len(entries)+len(o.files))
	for _, e := range entries {
		if !o.hidden[e.Name] {
			out = append(out, e)
		}
	}
	return append(out, o.files...)
}

// Open returns the pending version of p from offset; false when no
// upload to p is pending. The bytes come from the spool, and stay
// readable after the upload lands. An append's spool holds only what it
// adds: base is how many bytes of the board's file come first (appending
// never changes them), and rc starts at offset-base into the spool when
// offset is past them, else at its start.
func (q *Queue) Open(p string, offset int64) (rc io.ReadCloser, base int64, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	j := q.pendingFile(p)
	if j == nil {
		return nil, 0, false
	}
	if j.m.Append {
		base = j.m.Base
	}
	j.refs++
	size := j.m.Size
	from := min(max(offset-base, 0), size)
	return &spoolReader{SectionReader: io.NewSectionReader(j.file, from, size-from), j: j}, base, true
}

type spoolReader struct {
	*io.SectionReader
	j    *Job
	done bool
}

func (r *spoolReader) Close() error {
	if !r.done {
		r.done = true
		r.j.release()
	}
	return nil
}

// Hash returns the SHA-256 of the pending version of p; false when no
// upload to p is pending. A pending append's whole file is not at hand:
// ErrPending.
func (q *Queue) Hash(p string) ([]byte, bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	j := q.pendingFile(p)
	if j == nil {
		return nil, false, nil
	}
	if j.m.Append {
		return nil, true, fmt.Errorf("%w: %q", ErrPending, p)
	}
	sum, err := hex.DecodeString(j.m.SHA256)
	if err != nil {
		return nil, true, fmt.Errorf("spool: the SHA-256 kept for %q: %w", p, err)
	}
	return sum, true, nil
}

// Settle waits until no pending upload touches p or anything under it,
// so that an operation on p comes after them, as it was asked. After
// wait it gives up with ErrPending.
func (q *Queue) Settle(ctx context.Context, p string, wait time.Duration) error {
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		q.mu.Lock()
		busy := slices.ContainsFunc(q.jobs, func(j *Job) bool { return j.touches(p) })
		ch := q.wake
		q.mu.Unlock()
		if !busy {
			return nil
		}
		select {
		case <-ch:
		case <-t.C:
			return fmt.Errorf("%w: %q", ErrPending, p)
		case <-ctx.Done():
			return fmt.Errorf("spool: waiting for the pending upload of %q: %w", p, context.Cause(ctx))
		}
	}
}

// SettleMoving is Settle for an operation that should wait as long as
// the uploads before it are landing (SITE RESET runs what was uploaded):
// it gives up with ErrPending only once stall passes with no byte of
// them taken by the board and none of them ended.
func (q *Queue) SettleMoving(ctx context.Context, p string, stall time.Duration) error {
	last := int64(-1)
	for {
		err := q.Settle(ctx, p, stall)
		if !errors.Is(err, ErrPending) {
			return err
		}
		q.mu.Lock()
		var moved int64
		for _, j := range q.jobs {
			if j.touches(p) {
				moved += j.fed + j.received
			}
		}
		q.mu.Unlock()
		if moved == last {
			return err
		}
		last = moved
	}
}

// Rename folds a rename of a pending file into its upload, so that it
// lands at to, and nothing is left at from: the rename is done at once,
// and the board is renamed when the upload is written. It returns false
// when from is no pending file or another pending upload touches from or
// to; the caller then settles both and renames on the board. The caller
// checks first that the board could take the rename (to is no directory,
// and its directory exists).
func (q *Queue) Rename(from, to string) (bool, error) {
	q.mu.Lock()
	j := q.pendingFile(from)
	if j == nil {
		q.mu.Unlock()
		return false, nil
	}
	for _, k := range q.jobs {
		if k != j && (k.touches(from) || k.touches(to)) {
			q.mu.Unlock()
			return false, nil
		}
	}
	if to == from {
		q.mu.Unlock()
		return true, nil
	}
	before := j.m
	before.Gone = slices.Clone(j.m.Gone)
	if from != j.m.Origin {
		// The board's own file at from (if any) was replaced by the
		// upload, which now moves on: it must go too.
		j.m.Gone = append(j.m.Gone, from)
	}
	j.m.Gone = slices.DeleteFunc(j.m.Gone, func(n string) bool { return n == to })
	j.m.Target = to
	q.broadcast()
	q.mu.Unlock()
	if err := j.save(); err != nil {
		q.mu.Lock()
		j.m = before
		q.broadcast()
		q.mu.Unlock()
		return false, err
	}
	q.log.Info("rename folded into the pending upload", "from", from, "to", to)
	return true, nil
}

// Remove folds a delete of a pending file into its upload: the upload
// stops between two segments (or is never written), and the board loses
// p, where the upload was written first, and what folded renames took
// away; p is gone for the client at once. It returns false when no upload
// to p is pending: the caller then settles p and removes it on the board.
// Giving the upload up rather than waiting for it to land spares the line
// the rest of a file nobody wants, and the client its wait.
func (q *Queue) Remove(p string) (bool, error) {
	q.mu.Lock()
	j := q.pendingFile(p)
	if j == nil {
		q.mu.Unlock()
		return false, nil
	}
	before := j.m.Deleted
	j.m.Deleted = true
	q.broadcast()
	q.mu.Unlock()
	if err := j.save(); err != nil {
		q.mu.Lock()
		j.m.Deleted = before
		q.broadcast()
		q.mu.Unlock()
		return false, err
	}
	q.log.Info("deleted before it reached the board: the pending upload is given up", "path", p)
	return true, nil
}

// pendingFile returns the pending upload that is the file at p now; q.mu
// is held.
func (q *Queue) pendingFile(p string) *Job {
	for _, j := range slices.Backward(q.jobs) {
		if j.visible() && !j.m.Deleted && j.m.Target == p {
			return j
		}
	}
	return nil
}

// Failure returns, once, why the last upload to p could not be written
// to the board (a *Failed); nil when none failed.
func (q *Queue) Failure(p string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	f := q.failures[p]
	if f == nil {
		return nil
	}
	for k, v := range q.failures {
		if v == f {
			delete(q.failures, k)
		}
	}
	return f
}

// count returns how many uploads are pending and their bytes, and how
// many of them wait for a board that is away: all of them, when one
// writer waits for the board they share; silent says the same of a board
// that stopped answering with its port open.
func (q *Queue) count() (n int, bytes int64, stuck, silent int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	away, mute := false, false
	for _, j := range q.jobs {
		if j.finished || j.dropped {
			continue
		}
		n++
		bytes += max(j.m.Size, j.received)
		away = away || j.waitingBoard
		mute = mute || j.silentBoard
	}
	switch {
	case away:
		stuck = n
	case mute:
		stuck, silent = n, n
	}
	return n, bytes, stuck, silent
}
