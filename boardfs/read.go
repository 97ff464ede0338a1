package boardfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ftpbridge/ftpbridge/repl"
)

// readRange copies up to n bytes of p from offset to w, as frames
// (frames.go) from one exec, holding the board, and returns how many it
// copied. With deflate the board is asked to deflate the segment (_z), and
// deflated says whether that saved anything (else the segment came
// plain), so a reader stops asking once a file proves incompressible;
// without, deflated is false.
func (f *FS) readRange(ctx context.Context, p string, offset, n int64, w io.Writer, deflate bool) (copied int64, deflated bool, err error) {
	deflated = deflate
	call, check, err := f.d.readCall(p, offset, n)
	if err != nil {
		return 0, deflated, err
	}
	if deflate {
		// Only a board whose dialect has the deflate helpers is asked
		// (compressDownloads).
		call = pyCall("_z", p, offset, n)
	}
	if err := f.acquire(ctx); err != nil {
		return 0, deflated, fmt.Errorf("boardfs: read %q: %w", p, err)
	}
	defer f.release()
	run, err := f.conn.Start(ctx, call)
	if err != nil {
		return 0, deflated, f.wrap("read", p, err)
	}
	if deflate {
		copied, deflated, err = decodeDeflated(run, w, offset, n)
	} else {
		copied, err = decodeFrames(run, w, check, offset)
	}
	switch {
	case errors.Is(err, errNoFrames):
		// The helper failed before its first frame (the file is missing,
		// say): the byte read was the end of its output.
		run.Unread([]byte{ctrlD})
		return 0, deflated, f.finish(ctx, run, "read", p, fmt.Errorf("%w: no data", ErrProtocol))
	case errors.Is(err, errLostFraming):
		// Parsing on could take file bytes for the REPL's markers.
		run.Abandon(ctx)
		return copied, deflated, fmt.Errorf("boardfs: read %q: %w", p, err)
	case err != nil:
		return copied, deflated, f.finish(ctx, run, "read", p, err)
	}
	// Output after the end frame means a frame's length was damaged into
	// an early end: what was read is not the segment.
	out, err := run.Wait(ctx)
	if err != nil {
		return copied, deflated, f.wrap("read", p, err)
	}
	if len(out) > 0 {
		return copied, deflated, fmt.Errorf("boardfs: read %q: %w: %d bytes after the end frame", p, ErrCorrupt, len(out))
	}
	return copied, deflated, nil
}

// maxFrame is the most data one download frame carries (the helper's
// buffer on the board). Under 1024, a frame's length never starts with
// 0x04, the byte that ends the helper's output.
const maxFrame = 1000

// segment is how much one exec of a transfer moves before the board is
// given up for other operations: 4 KB is 0.36 s at 115200 baud, so a listing
// behind three downloads waits about a second, while the exec overhead (a
// few ms a segment) keeps transfers above 0.95 of the line rate.
const segment = 4 * 1024

// segmentTimeout bounds one segment's exec (0.4 s at 115200 baud, 4 s at
// 9600); a transfer's own context (from Open or Create) may be short-lived,
// the transfer is not.
const segmentTimeout = 30 * time.Second

// Open returns a reader of p from offset (for REST). It reads the file one
// segment per exec, giving the board up between segments. ctx bounds the
// first segment only; Close ends the transfer.
func (f *FS) Open(ctx context.Context, p string, offset int64) (io.ReadCloser, error) {
	if err := checkPath(p); err != nil {
		return nil, err
	}
	if offset == 0 && f.canDelta() {
		data, ok, err := f.openCached(ctx, p)
		if err != nil {
			return nil, err
		}
		if ok {
			return io.NopCloser(bytes.NewReader(data)), nil
		}
	}
	r := &reader{f: f, p: p, off: offset, deflate: f.compressDownloads()}
	if offset == 0 && f.canDelta() {
		r.copy = new(bytes.Buffer)
	}
	r.ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	// Fetch the first segment now, so a missing file fails here.
	if err := r.fetch(ctx); err != nil {
		r.cancel()
		return nil, err
	}
	return r, nil
}

type reader struct {
	f       *FS
	deflate bool          // segments come down deflated, until one does not shrink
	tried   bool          // a segment has come: deflate says whether it shrank
	copy    *bytes.Buffer // the whole file so far, for the cache; nil: not kept
	p       string
	off     int64
	buf     bytes.Buffer
	eof     bool
	ctx     context.Context
	cancel  context.CancelFunc
}

// fetch reads the next segment. A segment that arrives damaged (a flipped
// bit, a lost byte) or is cut short by a board reset is read once more; a
// second failure ends the transfer, so a client never gets a wrong file
// reported complete.
func (r *reader) fetch(ctx context.Context) error {
	var seg bytes.Buffer
	var n int64
	var err error
	want := r.segment() // before a segment turns deflate off
	for attempt := 0; attempt < 2; attempt++ {
		seg.Reset()
		sctx, cancel := context.WithTimeout(ctx, segmentTimeout)
		n, r.deflate, err = r.f.readRange(sctx, r.p, r.off, r.segment(), &seg, r.deflate)
		cancel()
		if err == nil || !(errors.Is(err, ErrCorrupt) || errors.Is(err, repl.ErrBoardReset)) {
			break
		}
		// A reset board comes back with its files: the next exec re-enters
		// raw mode and installs the helpers again, and the segment is read
		// from the same offset.
		r.f.log.Warn("segment lost on the line, reading it again", "path", r.p, "offset", r.off, "err", err)
	}
	if err != nil {
		return err
	}
	r.tried = true
	r.buf.Write(seg.Bytes())
	if r.copy != nil {
		r.copy.Write(seg.Bytes())
		if r.copy.Len() > maxCached {
			r.copy = nil
		}
	}
	r.off += n
	r.eof = n < want
	return nil
}

func (r *reader) Read(p []byte) (int, error) {
	if r.buf.Len() == 0 {
		if r.eof {
			return 0, r.end()
		}
		if err := r.fetch(r.ctx); err != nil {
			return 0, err
		}
		if r.buf.Len() == 0 {
			return 0, r.end()
		}
	}
	return r.buf.Read(p)
}

// end keeps the whole file in the cache, once, and says EOF.
func (r *reader) end() error {
	if r.copy != nil {
		r.f.keep(r.p, r.copy.Bytes())
		r.copy = nil
	}
	return io.EOF
}

func (r *reader) Close() error {
	r.cancel()
	return nil
}

// ReadFile copies p from offset to w.
func (f *FS) ReadFile(ctx context.Context, p string, offset int64, w io.Writer) (int64, error) {
	r, err := f.Open(ctx, p, offset)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	return io.Copy(w, r)
}
