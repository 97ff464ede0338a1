package ftpdriver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"

	"github.com/ftpbridge/ftpbridge/boardfs"
	"github.com/ftpbridge/ftpbridge/spool"
)

// errWrongDirection: a download handle was written to, or an upload read.
var errWrongDirection = errors.New("ftpdriver: transfer used in the wrong direction")

// GetHandle serves RETR (flags O_RDONLY, offset from REST), STOR (O_WRONLY
// |O_CREATE|O_TRUNC; without O_TRUNC after a REST) and APPE (O_APPEND). The
// library calls it before the data connection exists, and the client hears
// nothing until it returns: it only opens, and the bytes move after.
func (d *clientDriver) GetHandle(name string, flags int, offset int64) (ftpserver.FileTransfer, error) {
	if flags&(os.O_WRONLY|os.O_RDWR) != 0 {
		return d.openUpload(name, flags, offset)
	}
	return d.openDownload(name, offset)
}

// transfer is what downloads and uploads share: the bookkeeping for the
// transfer's log line. Board deadlines are boardfs's: Open and Create take
// the operation's context, and each later segment of a transfer runs under
// boardfs's own per-segment deadline, so no board call outlives its bound.
type transfer struct {
	d      *clientDriver
	log    *slog.Logger // the session's, naming the board on a server over several
	cache  *metaCache   // the board's
	op     string       // "RETR", "STOR", "APPE"
	path   string       // on the board
	start  time.Time
	bytes  int64
	failed error // from TransferError, or the first board error
	// idle, on an active-mode transfer, ends the session once the data
	// connection has moved nothing for IdleTimeout (see dataconn.go).
	idle *time.Timer
}

func (d *clientDriver) newTransfer(op string, t target) *transfer {
	tr := &transfer{d: d, log: t.log, cache: t.cache, op: op, path: t.path, start: time.Now()}
	if limit := d.srv.opts.IdleTimeout; limit > 0 && d.cc.GetLastDataChannel() == ftpserver.DataChannelActive {
		tr.idle = time.AfterFunc(limit, func() {
			tr.log.Warn("an active-mode data connection moved nothing: closing the session, as vsftpd's data_connection_timeout does",
				"op", op, "path", tr.path, "idle", limit)
			_ = d.cc.Close()
		})
	}
	return tr
}

// pause stops the active-mode idle clock while the transfer waits on the
// board or the spool: that time is the bridge's, not the client's.
func (t *transfer) pause() {
	if t.idle != nil {
		t.idle.Stop()
	}
}

// resume starts the idle clock again: the data connection has its turn.
func (t *transfer) resume() {
	if t.idle != nil {
		t.idle.Reset(t.d.srv.opts.IdleTimeout)
	}
}

// TransferError is ftpserverlib telling that the data connection failed or
// was aborted (ABOR, a dropped connection): an upload must not be
// committed. It is called before Close.
func (t *transfer) TransferError(err error) {
	if t.failed == nil {
		t.failed = fmt.Errorf("transfer interrupted: %w", err)
	}
}

// logDone writes the one line each transfer gets.
func (t *transfer) logDone(err error) { t.logOutcome("done", err) }

// logOutcome is logDone saying how a successful transfer ended.
func (t *transfer) logOutcome(outcome string, err error) {
	took := time.Since(t.start)
	rate := int64(0)
	if took > 0 {
		rate = int64(float64(t.bytes) / took.Seconds())
	}
	level := slog.LevelInfo
	if err != nil {
		level, outcome = slog.LevelWarn, "failed"
	}
	attrs := []any{"path", t.path, "bytes", t.bytes, "took", took.Round(time.Millisecond), "bytes_per_s", rate}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	t.log.Log(context.Background(), level, t.op+" "+outcome, attrs...)
}

// download streams a board file, or the pending version of one (from the
// spool), to the data connection.
type download struct {
	*transfer
	fsys    *boardfs.FS  // the board the download started on: a replugged one is a new FS
	q       *spool.Queue // the board's pending uploads
	spooled bool         // the bytes come from the spool: a seek reads it again
	rc      io.ReadCloser
	pos     int64
}

func (d *clientDriver) openDownload(name string, offset int64) (ftpserver.FileTransfer, error) {
	var h *download
	err := d.run("open", name, d.srv.opts.OpTimeout, func(ctx context.Context, t target) error {
		p := t.path
		// The stat is usually cached from the listing the client just
		// read, and makes RETR of a directory fail before the 150.
		e, err := d.stat(ctx, t)
		if err != nil {
			return err
		}
		if e.IsDir {
			return fmt.Errorf("%w: %q", ErrIsDir, p)
		}
		if offset < 0 || offset > e.Size {
			return fmt.Errorf("%w: restart at %d, outside the file (%d bytes)", ErrRestart, offset, e.Size)
		}
		if !d.srv.enter() {
			return ErrStopping
		}
		h = &download{transfer: d.newTransfer("RETR", t), fsys: t.fsys, q: t.q, pos: offset}
		rc, ok, err := openPending(ctx, t.fsys, t.q, p, offset)
		if err != nil {
			d.srv.leave()
			return err
		}
		if ok {
			h.rc, h.spooled = rc, true
			return nil
		}
		rc, err = t.fsys.Open(ctx, p, offset)
		if err != nil {
			d.srv.leave()
			return err
		}
		h.rc = rc
		return nil
	})
	if err != nil {
		return nil, err
	}
	return h, nil
}

func (h *download) Read(p []byte) (int, error) {
	h.pause()
	n, err := h.rc.Read(p)
	h.resume()
	h.pos += int64(n)
	h.bytes += int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		if h.failed == nil {
			h.failed = err
		}
		return n, ftpError(h.log, "read", h.path, err)
	}
	return n, err
}

// Seek is called by the library after a REST with the offset GetHandle
// already opened at; any other position reopens the file there.
func (h *download) Seek(offset int64, whence int) (int64, error) {
	if whence != io.SeekStart || offset < 0 {
		return h.pos, ftpError(h.log, "seek", h.path, fmt.Errorf("%w: seek(%d, %d)", ErrRestart, offset, whence))
	}
	if offset == h.pos {
		return h.pos, nil
	}
	if err := h.rc.Close(); err != nil {
		h.log.Debug("closing a download to seek", "path", h.path, "err", err)
	}
	ctx, cancel := context.WithTimeoutCause(h.d.ctx, h.d.srv.opts.OpTimeout, ErrTimeout)
	defer cancel()
	if h.spooled {
		// The pending version, or, once it landed, the same bytes on
		// the board.
		rc, ok, err := openPending(ctx, h.fsys, h.q, h.path, offset)
		if err != nil {
			h.rc = io.NopCloser(eofReader{})
			return h.pos, ftpError(h.log, "seek", h.path, err)
		}
		if ok {
			h.rc, h.pos = rc, offset
			return offset, nil
		}
	}
	rc, err := h.fsys.Open(ctx, h.path, offset)
	if err != nil {
		h.rc = io.NopCloser(eofReader{})
		return h.pos, ftpError(h.log, "seek", h.path, err)
	}
	h.rc, h.pos = rc, offset
	return offset, nil
}

func (h *download) Write([]byte) (int, error) {
	return 0, ftpError(h.log, "write", h.path, errWrongDirection)
}

// Close ends the download; reads never fail a transfer at close.
func (h *download) Close() error {
	h.pause()
	err := h.rc.Close()
	h.d.srv.leave()
	if h.failed != nil {
		h.logDone(h.failed)
	} else {
		h.logDone(nil)
	}
	if err != nil {
		h.log.Debug("closing a download", "path", h.path, "err", err)
	}
	return nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// upload takes the client's bytes into the spool, whose writer sends them
// on to boardfs's temporary file as they arrive; the target is replaced
// only once the transfer is complete: STOR truncates before the data
// connection exists, and a failed transfer must leave the old file whole.
type upload struct {
	*transfer
	job *spool.Job
	pos int64 // where the client's bytes land in the file
}

func (d *clientDriver) openUpload(name string, flags int, offset int64) (ftpserver.FileTransfer, error) {
	if d.readOnly {
		return nil, ftpError(d.log, "upload", name, ErrReadOnly)
	}
	if d.srv.isTop(name) {
		return nil, ftpError(d.log, "upload", name, fmt.Errorf("%w: %q", ErrBoardFolder, name))
	}
	var h *upload
	err := d.run("upload", name, d.srv.opts.OpTimeout, func(ctx context.Context, t target) error {
		p := t.path
		if err := d.checkChange(ctx, t, p); err != nil {
			return err
		}
		if err := checkNewName(p); err != nil {
			return err
		}
		op := "STOR"
		if flags&os.O_APPEND != 0 {
			op = "APPE"
		}
		// After the pending uploads of p: a second upload of a file lands
		// after the first, and an append adds to what the board will hold.
		if err := d.settle(ctx, t, p); err != nil {
			return err
		}
		if err := d.inDirectory(ctx, t); err != nil {
			return err
		}
		var (
			start    int64
			appendTo bool
		)
		if op == "APPE" || (flags&os.O_TRUNC == 0 && offset > 0) {
			// APPE, or REST n + STOR: the board can only add at the end,
			// so a restart point must be the file's size.
			e, err := d.stat(ctx, t)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				// Nothing to add to: a new file.
			case err != nil:
				return err
			case e.IsDir:
				return fmt.Errorf("%w: %q", ErrIsDir, p)
			default:
				start, appendTo = e.Size, true
			}
			if offset > 0 && offset != start {
				return fmt.Errorf("%w: upload restart at %d, but the file has %d bytes", ErrRestart, offset, start)
			}
		}
		if !d.srv.enter() {
			return ErrStopping
		}
		var (
			up  *boardfs.Upload
			err error
		)
		if appendTo {
			up, err = t.fsys.Append(ctx, p)
		} else {
			up, err = t.fsys.Create(ctx, p)
		}
		if err != nil {
			d.srv.leave()
			return err
		}
		job, err := t.q.Begin(p, up, appendTo, start)
		if err != nil {
			d.srv.leave()
			if errors.Is(err, spool.ErrStopping) {
				return fmt.Errorf("%w: %w", ErrStopping, err)
			}
			return err
		}
		h = &upload{transfer: d.newTransfer(op, t), job: job, pos: start}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return h, nil
}

func (h *upload) Write(p []byte) (int, error) {
	if h.failed != nil {
		return 0, ftpError(h.log, "write", h.path, h.failed)
	}
	h.pause()
	n, err := h.job.Write(p)
	h.resume()
	h.pos += int64(n)
	h.bytes += int64(n)
	if err != nil {
		h.failed = err
		// Mapped, so that no space on the board answers 552.
		return n, ftpError(h.log, "write", h.path, err)
	}
	return n, nil
}

// Seek is called by the library after REST with the restart point, which
// openUpload already checked is where the upload appends.
func (h *upload) Seek(offset int64, whence int) (int64, error) {
	if whence == io.SeekStart && offset == h.pos {
		return h.pos, nil
	}
	return h.pos, ftpError(h.log, "seek", h.path, fmt.Errorf("%w: upload seek to %d (whence %d) at %d", ErrRestart, offset, whence, h.pos))
}

func (h *upload) Read([]byte) (int, error) {
	return 0, ftpError(h.log, "read", h.path, errWrongDirection)
}

// Close ends the upload. A complete one is made durable in the spool,
// and Close waits up to UploadWait for the board to have it: a small
// upload answers 226 once it is on the board, as a failure answers with
// the board's error; a big one answers 226 then, and is written on in the
// background (a failure after that is told to the path's next
// operation). An interrupted upload is given up: the board's old file
// stays whole. The library sends its 226 or error reply after Close, with
// Close's error.
func (h *upload) Close() error {
	h.pause()
	defer h.d.srv.leave()
	defer h.cache.invalidate()
	if h.failed != nil {
		h.job.Drop()
		h.logDone(h.failed)
		// The transfer's own error is already what the reply says.
		return nil
	}
	onBoard, err := h.job.Finish(h.d.srv.opts.UploadWait, h.d.ss.lost)
	if errors.Is(err, spool.ErrClientGone) {
		// In stream mode a client that dies closes its data connection
		// as one that finished does: without it waiting for the reply,
		// the bytes may be any part of the file.
		h.log.Warn("the client went away before the upload's reply: it is given up, the board's file stays as it was",
			"path", h.path, "bytes", h.bytes)
		return nil
	}
	if err != nil {
		h.logDone(err)
		return ftpError(h.log, "commit", h.path, err)
	}
	if !onBoard {
		h.logOutcome("taken into the spool: writing it to the board in the background", nil)
		return nil
	}
	h.logDone(nil)
	return nil
}

var (
	_ ftpserver.FileTransferError = (*upload)(nil)
	_ ftpserver.FileTransferError = (*download)(nil)
)
