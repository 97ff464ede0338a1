// Package spool holds uploads on the host until the board has them: each
// upload streams into a file on disk while a writer sends it to the board
// through boardfs, segment by segment, as it arrives. The uploader may go
// once the spool is safely on disk; until the board has the file, its
// pending version answers for it (size, time, bytes), later changes to the
// same path keep their order, and a write that fails is kept on the host
// and told to whoever next asks about the path. What a stop or a crash
// leaves pending is written the next time the same board is served.
//
// The package knows boards and files, not FTP.
package spool

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ftpbridge/ftpbridge/boardfs"
)

// Errors of the package.
var (
	// ErrPending: an operation waited for an earlier upload of the same
	// path to reach the board, and gave up while it was still being written.
	ErrPending = errors.New("spool: an earlier upload to this path is still being written to the board")
	// ErrStopping: the store is stopping; no new upload is taken.
	ErrStopping = errors.New("spool: stopping")
	// ErrClientGone: the upload's client went away before its reply (it
	// closed the control connection, or died, with the data connection):
	// a data connection that ends so may have been cut off anywhere, so the
	// upload is given up and the board's old file stays.
	ErrClientGone = errors.New("spool: the client went away before the upload's reply")
	// errDropped ends a writer whose upload was given up (the transfer
	// failed, or the file was deleted before it reached the board).
	errDropped = errors.New("spool: upload given up")
	// errLeft ends a writer when the store stops before its write is done:
	// the spool stays on disk for the next start.
	errLeft = errors.New("spool: left for the next start")
)

// Failed is an upload that was taken (its client heard success) but could
// not be written to the board. Its data is kept on the host at Kept.
type Failed struct {
	Path     string    // where it was to land on the board
	Size     int64     // bytes
	Received time.Time // when its client finished sending it
	Kept     string    // the data, on the host; "" if it could not be kept
	Err      error     // why the board write failed
}

func (f *Failed) Error() string {
	kept := "its data could not be kept"
	if f.Kept != "" {
		kept = "its data is kept in " + f.Kept
	}
	return fmt.Sprintf("spool: the upload of %s (%d bytes, received %s) was not written to the board: %v; %s",
		f.Path, f.Size, f.Received.Format("15:04:05"), f.Err, kept)
}

func (f *Failed) Unwrap() error { return f.Err }

// Board is where a queue's uploads go: it hands out the board's FS while
// the board is connected, and an error (boardfs.ErrNotConnected) while it
// is away or another board is in its place.
type Board interface {
	FS() (*boardfs.FS, error)
}

// Key names a board's pending uploads as boardfs names its copies in the
// file cache: by machine.unique_id where the board has one, else by name
// (the port it is on), else by its platform.
func Key(info boardfs.Info, name string) string {
	switch {
	case info.UniqueID != "":
		return "id:" + info.UniqueID
	case name != "":
		return "name:" + name
	}
	return "platform:" + info.Platform
}

// Options configure a Store.
type Options struct {
	// Dir holds the spool: one folder per board, and failed/ for the
	// uploads the board would not take. Made if missing.
	Dir string
	// Logger gets a line per upload written in the background, every
	// failure, and what Drain waits for; nil discards.
	Logger *slog.Logger
	// CommitTimeout bounds the end of one board write: the last segment,
	// the board's check of the whole file and the rename into place.
	// Default 60 s.
	CommitTimeout time.Duration
	// BoardPoll is how often a write waiting for its board looks for it.
	// Default 500 ms.
	BoardPoll time.Duration
	// Hold leaves what earlier runs left pending where it is, unwritten,
	// for a store that must not change the boards (a read-only server).
	Hold bool
}

// Store is the spool directory and the writers of every board's queue. It
// is safe for concurrent use.
type Store struct {
	opts Options
	log  *slog.Logger

	closed  atomic.Bool // Drain began: no new uploads
	leaving atomic.Bool // writers stop between segments, leaving their spool

	mu      sync.Mutex
	queues  map[string]*Queue
	writers sync.WaitGroup
	ctx     context.Context // the writers' board calls: cancelled if they outstay Drain
	cancel  context.CancelFunc
}

// Open returns the store in opts.Dir, making the directory if needed.
func Open(opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("spool: no directory given")
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.CommitTimeout <= 0 {
		opts.CommitTimeout = 60 * time.Second
	}
	if opts.BoardPoll <= 0 {
		opts.BoardPoll = 500 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Store{opts: opts, log: opts.Logger, queues: map[string]*Queue{}, ctx: ctx, cancel: cancel}, nil
}

// Dir is where the spool lives.
func (s *Store) Dir() string { return s.opts.Dir }

// boardDir is the folder of one board's queue: a hash of its key, which
// may hold any character.
func (s *Store) boardDir(key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(s.opts.Dir, hex.EncodeToString(sum[:8]))
}

// Queue returns the pending uploads of the board key names (see Key),
// written through b; changed is called after a write changed the board,
// for caches of its listings. The first call for a key also takes up what
// an earlier run left pending for that board, and starts writing it. log
// gets the queue's lines.
func (s *Store) Queue(key string, b Board, changed func(), log *slog.Logger) *Queue {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.queues[key]; q != nil {
		return q
	}
	if log == nil {
		log = s.log
	}
	if changed == nil {
		changed = func() {}
	}
	q := &Queue{
		s: s, key: key, dir: s.boardDir(key), board: b, changed: changed, log: log,
		failures: map[string]*Failed{}, wake: make(chan struct{}),
	}
	s.queues[key] = q
	if !s.closed.Load() {
		q.resume()
	}
	return q
}

// Pending counts the uploads not yet on their board and their bytes.
func (s *Store) Pending() (n int, bytes int64) {
	n, bytes, _, _ = s.count()
	return n, bytes
}

// count also says how many of the pending uploads wait for a board that
// is away, and how many of those for one that stopped answering.
func (s *Store) count() (n int, bytes int64, stuck, silent int) {
	s.mu.Lock()
	queues := make([]*Queue, 0, len(s.queues))
	for _, q := range s.queues {
		queues = append(queues, q)
	}
	s.mu.Unlock()
	for _, q := range queues {
		qn, qb, qs, qm := q.count()
		n, bytes, stuck, silent = n+qn, bytes+qb, stuck+qs, silent+qm
	}
	return n, bytes, stuck, silent
}

// Drain waits for the pending uploads to reach their boards, saying what
// it waits for, until ctx is done or every upload left waits for a board
// that is away. It then stops the writers between two segments (each
// removes its temporary file from the board) and returns once they have
// stopped: what is left stays in the spool for the next start. No upload
// is taken after Drain began.
func (s *Store) Drain(ctx context.Context) {
	s.closed.Store(true)
	said := false
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		n, bytes, stuck, silent := s.count()
		if n == 0 {
			if said {
				s.log.Info("every upload is on its board")
			}
			break
		}
		if !said {
			s.log.Info(fmt.Sprintf("waiting for %d upload(s), %d bytes, to be written to the board; press Ctrl-C again to leave them for the next start", n, bytes),
				"uploads", n, "bytes", bytes, "spool", s.opts.Dir)
			said = true
		}
		if stuck == n && silent > 0 {
			// As an unplugged one: nothing says when a hung board or a
			// stalled adapter moves again, and a stop must not wait on it.
			s.log.Warn(fmt.Sprintf("the board stopped answering: %d upload(s), %d bytes, stay in the spool and are written the next time this board is served", n, bytes),
				"uploads", n, "bytes", bytes, "spool", s.opts.Dir)
			break
		}
		if stuck == n {
			s.log.Warn(fmt.Sprintf("the board is not connected: %d upload(s), %d bytes, stay in the spool and are written the next time this board is served", n, bytes),
				"uploads", n, "bytes", bytes, "spool", s.opts.Dir)
			break
		}
		select {
		case <-ctx.Done():
			s.log.Warn(fmt.Sprintf("leaving %d upload(s), %d bytes, in the spool: they are written the next time this board is served", n, bytes),
				"uploads", n, "bytes", bytes, "spool", s.opts.Dir)
			s.stop()
			return
		case <-tick.C:
		}
	}
	s.stop()
}

// stop ends the writers between segments and waits for them; a writer
// that outstays a commit's bound has its board call cancelled.
func (s *Store) stop() {
	s.leaving.Store(true)
	s.mu.Lock()
	queues := make([]*Queue, 0, len(s.queues))
	for _, q := range s.queues {
		queues = append(queues, q)
	}
	s.mu.Unlock()
	for _, q := range queues {
		q.mu.Lock()
		q.broadcast()
		q.mu.Unlock()
	}
	done := make(chan struct{})
	go func() { s.writers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.opts.CommitTimeout):
		s.log.Warn("a board write did not stop in time: cancelling it", "waited", s.opts.CommitTimeout)
		s.cancel()
		<-done
	}
	s.cancel()
}
