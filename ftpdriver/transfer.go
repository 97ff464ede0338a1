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
}

func (d *clientDriver) newTransfer(op string, t target) *transfer {
	return &transfer{d: d, log: t.log, cache: t.cache, op: op, path: t.path, start: time.Now()}
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
func (t *transfer) logDone(err error) {
	took := time.Since(t.start)
	rate := int64(0)
	if took > 0 {
		rate = int64(float64(t.bytes) / took.Seconds())
	}
	level, outcome := slog.LevelInfo, "done"
	if err != nil {
		level, outcome = slog.LevelWarn, "failed"
	}
	attrs := []any{"path", t.path, "bytes", t.bytes, "took", took.Round(time.Millisecond), "bytes_per_s", rate}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	t.log.Log(context.Background(), level, t.op+" "+outcome, attrs...)
}

// afterContext is for the work Close does once the bytes have moved, which
// must happen even when the session was cancelled: a complete upload is
// committed, an interrupted one's temporary file removed.
func (t *transfer) afterContext(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(context.WithoutCancel(t.d.ctx), d, ErrTimeout)
}

// download streams a board file to the data connection.
type download struct {
	*transfer
	fsys *boardfs.FS // the board the download started on: a replugged one is a new FS
	rc   io.ReadCloser
	pos  int64
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
		rc, err := t.fsys.Open(ctx, p, offset)
		if err != nil {
			d.srv.leave()
			return err
		}
		h = &download{transfer: d.newTransfer("RETR", t), fsys: t.fsys, rc: rc, pos: offset}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return h, nil
}

func (h *download) Read(p []byte) (int, error) {
	n, err := h.rc.Read(p)
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

// upload writes to boardfs's temporary file and replaces the target only
// when Close finds the transfer complete: STOR truncates before the data
// connection exists, and a failed transfer must leave the old file whole.
type upload struct {
	*transfer
	up  *boardfs.Upload
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
		op := "STOR"
		if flags&os.O_APPEND != 0 {
			op = "APPE"
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
		h = &upload{transfer: d.newTransfer(op, t), up: up, pos: start}
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
	n, err := h.up.Write(p)
	h.pos += int64(n)
	h.bytes += int64(n)
	// Segments reach the board as they fill: listings show the
	// temporary file from the first one on.
	h.cache.invalidate()
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

// Close commits a complete upload (the board checks it and renames it over
// the target) or aborts an interrupted one. The library sends its 226 or
// error reply after Close, with Close's error.
func (h *upload) Close() error {
	defer h.d.srv.leave()
	defer h.cache.invalidate()
	if h.failed != nil {
		ctx, cancel := h.afterContext(h.d.srv.opts.OpTimeout)
		defer cancel()
		if err := h.up.Abort(ctx); err != nil {
			h.log.Warn("removing the temporary file of a failed upload", "path", h.path, "err", err)
		}
		h.logDone(h.failed)
		// The transfer's own error is already what the reply says.
		return nil
	}
	// A cancelled session still deserves a consistent board: commit with a
	// context that outlives the session, bounded by its own deadline.
	ctx, cancel := h.afterContext(h.d.srv.opts.LongOpTimeout)
	defer cancel()
	err := h.up.Commit(ctx)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w: %w", context.Cause(ctx), err)
	}
	if err != nil {
		h.logDone(err)
		actx, acancel := h.afterContext(h.d.srv.opts.OpTimeout)
		defer acancel()
		if aerr := h.up.Abort(actx); aerr != nil {
			h.log.Debug("abort after a failed commit", "path", h.path, "err", aerr)
		}
		return ftpError(h.log, "commit", h.path, err)
	}
	h.logDone(nil)
	return nil
}

var (
	_ ftpserver.FileTransferError = (*upload)(nil)
	_ ftpserver.FileTransferError = (*download)(nil)
)
