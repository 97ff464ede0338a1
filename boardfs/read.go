package boardfs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"strconv"
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

// execSpan is the most one exec of a plain transfer moves, segments one
// after another: 1.4 s at 115200 baud. Each exec costs round trips (the
// raw REPL's, the helper's ready answer), which a USB-serial adapter's
// latency timer and an ESP32's 10 ms input tick make 30-60 ms, and an
// upload's exec opens and closes its file (on an ESP8266's FAT, a sector
// rewrite of 51 ms); a span pays them once for four segments. A transfer
// goes by spans only while no other operation wants the board, else a
// segment an exec: a listing that comes during a span waits 1.4 s at
// most, one behind three transfers about a second.
const execSpan = 4 * segment

// segmentTimeout bounds one segment's exec (0.4 s at 115200 baud, 4 s at
// 9600); a transfer's own context (from Open or Create) may be short-lived,
// the transfer is not.
const segmentTimeout = 30 * time.Second

// Open returns a reader of p from offset (for REST). It reads the file a
// span (execSpan) per exec, or a segment while other operations want the
// board, giving the board up between them. ctx bounds the
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
	r := &reader{f: f, p: p, off: offset, start: offset, got: newTally(), deflate: f.compressDownloads()}
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

// reader reads a file a span per exec. Each exec opens the file
// anew, and other sessions may replace, remove or append to it between
// two segments: at the end the reader checks that what it read is what
// the board holds now (digest), so a client gets one version of the file
// whole, or ErrChanged, never a mix reported complete.
type reader struct {
	f       *FS
	deflate bool          // segments come down deflated, until one does not shrink
	wide    bool          // no other operation wants the board: read a span
	tried   bool          // a segment has come: deflate says whether it shrank
	copy    *bytes.Buffer // the whole file so far, for the cache; nil: not kept
	p       string
	start   int64  // the offset the reader started at
	off     int64  // the offset of the next segment
	got     *tally // what the reader has read
	buf     bytes.Buffer
	eof     bool
	ended   error // once the end was checked: io.EOF, or why it failed
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
	r.wide = !r.f.share.contended()
	want := r.segment() // before a segment turns deflate off
	for attempt := 0; attempt < 2; attempt++ {
		seg.Reset()
		sctx, cancel := context.WithTimeout(ctx, segmentTimeout*time.Duration(max(1, (want+segment-1)/segment)))
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
	r.got.Write(seg.Bytes())
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

// end checks, once, that the file on the board is still the one whose
// bytes the reader read, and then keeps it in the cache and says io.EOF;
// ErrChanged when it changed. A change that lands after this check is
// after the download: the client has had one version whole.
func (r *reader) end() error {
	if r.ended != nil {
		return r.ended
	}
	ctx, cancel := context.WithTimeout(r.ctx, segmentTimeout)
	defer cancel()
	d, err := r.f.d.digest(ctx, r.f, r.p, r.start)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		err = fmt.Errorf("boardfs: read %q: %w: it was removed", r.p, ErrChanged)
	case err != nil:
	case !r.got.matches(d):
		err = fmt.Errorf("boardfs: read %q: %w: %d bytes read, the board holds %d from %d that differ", r.p, ErrChanged, r.got.n, d.size, r.start)
	default:
		err = io.EOF
		if r.copy != nil {
			r.f.keep(r.p, r.copy.Bytes())
		}
	}
	r.copy = nil
	r.ended = err
	return err
}

// A digest is the board's account of a file's bytes from an offset, as
// they are now: how many, and a check of them (digestCheck says which).
// A download that ends compares it with the tally of what it read.
type digest struct {
	size  int64
	check digestCheck
	value string // as the board printed it: hex, or the sum in decimal
}

type digestCheck int

const (
	digestSize   digestCheck = iota // the size alone: the board can compute no check
	digestCRC32                     // CRC-32 (IEEE), 8 hex digits
	digestSHA256                    // SHA-256, 64 hex digits
	digestSum                       // the sum of the bytes (the micro:bit)
)

// tally follows the bytes a download read, as every kind of digest
// checks them.
type tally struct {
	n   int64
	crc uint32
	sha hash.Hash
	sum uint64
}

func newTally() *tally { return &tally{sha: sha256.New()} }

func (t *tally) Write(p []byte) (int, error) {
	t.n += int64(len(p))
	t.crc = crc32.Update(t.crc, crc32.IEEETable, p)
	t.sha.Write(p)
	for _, c := range p {
		t.sum += uint64(c)
	}
	return len(p), nil
}

// matches reports whether the bytes read are the ones d describes.
func (t *tally) matches(d digest) bool {
	if d.size != t.n {
		return false
	}
	switch d.check {
	case digestCRC32:
		return d.value == fmt.Sprintf("%08x", t.crc)
	case digestSHA256:
		return d.value == hex.EncodeToString(t.sha.Sum(nil))
	case digestSum:
		return d.value == strconv.FormatUint(t.sum, 10)
	}
	return true
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
