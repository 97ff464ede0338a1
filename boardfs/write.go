package boardfs

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/ftpbridge/ftpbridge/repl"
)

// An upload's bytes go in pieces of wirePiece, each acknowledged by the
// board as soon as it took the piece off the line into its RAM buffer (it
// writes the buffer to flash a 256-byte page at a time, reading nothing
// meanwhile).
// The host keeps at most window bytes unacknowledged, so all it has on
// its way fits in the board's UART input ring whenever the board stops
// reading, for a flash write or anything else. The smallest ring is the
// ESP8266's, 256 bytes of which 255 hold data (ports/esp8266/esp_mphal.c;
// py/ringbuf.h keeps a slot free); window leaves a few of those spare.
const (
	wirePiece = 32
	window    = 248
)

// ack is what the upload helper sends when ready and for each piece it
// took; nak, from the micro:bit's, says a write failed (the helper then
// reads and drops the rest of the data, so none of it reaches the REPL as
// code).
const (
	ack = 0x06
	nak = 0x15
)

// After a write that stalled it (a flash erase) _w follows the
// acknowledgements of what its input ring held with syncPad bytes of syn,
// which the host skips: with them a USB-serial adapter's 62-byte packet
// fills and goes at once, where acknowledgements alone wait for its
// latency timer (16 ms on FTDI's Windows and macOS drivers; AN232B-04).
// The host hears sooner that the board reads again.
const (
	syn     = 0x16
	syncPad = 61
)

// An upload goes to a temporary file in its target's directory, named
// tempPrefix and tempDigits random lowercase hex digits. The directory
// keeps it on the target's filesystem, so the rename that puts it in
// place works on every mount; its fixed length (19 bytes) lets every
// name the board can hold be uploaded. Such names are reserved: Create,
// Append, Rename and Mkdir refuse them (ErrReserved), listings hide them
// and the sweep (py/sweep.py, py/microbit_sweep.py) removes them, so a
// user's file is never lost for its name.
const (
	tempPrefix = ".ftpbridge-"
	tempDigits = 8
)

// newTempName returns a new temporary name in dir.
func newTempName(dir string) string {
	var rnd [tempDigits / 2]byte
	rand.Read(rnd[:])
	return path.Join(dir, tempPrefix+hex.EncodeToString(rnd[:]))
}

// isTempName reports whether name, without its directory, is one
// newTempName makes: exactly what the board's sweep removes.
func isTempName(name string) bool {
	digits, ok := strings.CutPrefix(name, tempPrefix)
	if !ok || len(digits) != tempDigits {
		return false
	}
	for _, c := range []byte(digits) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// checkNew is checkTarget for a name a change creates: not one reserved
// for upload temporaries.
func checkNew(p string) error {
	if err := checkTarget(p); err != nil {
		return err
	}
	if isTempName(path.Base(p)) {
		return fmt.Errorf("boardfs: %q: %w", p, ErrReserved)
	}
	return nil
}

// Upload is a file being written. Create's uploads go to a temporary file
// beside the target and replace it only on Commit, so the old file stays
// whole until the new one is complete and checked.
type Upload struct {
	f         *FS
	p, tmp    string
	appending bool
	base      int64 // the target's size before an append
	buf       []byte
	written   int64 // bytes sent to the board
	hash      hash.Hash
	started   bool // the board has the temporary file
	done      bool
	err       error            // a failed segment: the upload cannot be committed
	copy      []byte           // what was sent, for the cache; nil: not kept
	byteSum   int64            // the sum of the bytes sent (checkUpload)
	probed    bool             // the board was asked for the old file's sums
	old       *blockSums       // the target's sums before the upload; nil: none
	head      int              // whether buf's first execSpan deflates: 0 not known, 1 yes, -1 no
	pull      func([]byte) int // SetSource's; nil: none
	final     bool             // Commit runs: what is buffered is all there is
	// op carries the name of the operation (WithOp) that started the
	// upload to its later segments, which Write sends with no context.
	op context.Context
}

// Create starts an upload that replaces p when committed.
func (f *FS) Create(ctx context.Context, p string) (*Upload, error) {
	if err := checkNew(p); err != nil {
		return nil, err
	}
	tmp, err := f.d.tempName(p)
	if err != nil {
		return nil, err
	}
	u := &Upload{f: f, p: p, tmp: tmp, hash: sha256.New(), op: WithOp(context.Background(), opName(ctx))}
	if f.canDelta() {
		u.copy = []byte{}
	}
	return u, nil
}

// Append starts an upload that adds to p (creating it if absent). Appends
// are written in place, so a failed one leaves part of its data.
func (f *FS) Append(ctx context.Context, p string) (*Upload, error) {
	if err := checkNew(p); err != nil {
		return nil, err
	}
	if why := f.d.lacks(featAppend); why != "" {
		return nil, fmt.Errorf("boardfs: append %q: %w (%s)", p, ErrNotSupported, why)
	}
	u := &Upload{f: f, p: p, tmp: p, appending: true, started: true, hash: sha256.New(), op: WithOp(context.Background(), opName(ctx))}
	e, err := f.Stat(ctx, p)
	switch {
	case err == nil:
		u.base = e.Size
	case errors.Is(err, fs.ErrNotExist):
	default:
		return nil, err
	}
	return u, nil
}

// SetSource gives the upload a way to take bytes already at hand without
// waiting: pull copies up to len(p) of them into p and returns how many, 0
// when none are. A plain exec then goes on with them, a 4 KB block at a
// time, rather than end and pay another exec's round trips, until they
// run out or another operation wants the board. The bytes pull gives
// count as written (the caller does not Write them too).
func (u *Upload) SetSource(pull func(p []byte) int) { u.pull = pull }

// Write buffers data and sends it to the board a span at a time.
func (u *Upload) Write(p []byte) (int, error) {
	if u.done {
		return 0, errors.New("boardfs: write to a finished upload")
	}
	if u.err != nil {
		return 0, u.err
	}
	u.buf = append(u.buf, p...)
	u.probe()
	for len(u.buf) >= u.fill() || len(u.buf) >= segment && u.alone() {
		if err := u.flush(u.op, u.span()); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// probe asks the board for the old file's sums once a segment is
// buffered: a file of a segment or more may be one the board holds in
// part already (an edited script uploaded again). It goes before the
// first span is chosen, so a new file's first span is a whole one.
func (u *Upload) probe() {
	if u.probed || len(u.buf) < segment {
		return
	}
	u.probed = true
	ctx, cancel := context.WithTimeout(u.op, segmentTimeout)
	defer cancel()
	u.old = u.f.oldSums(ctx, u)
}

// plainSpan is the most one exec of an upload moves when its bytes go
// plain: 2.9 s at 115200 baud with flash pauses, inside BusyWait for an
// operation that comes during it. Each exec costs three round trips
// (the request, the helper's ready answer, the last acknowledgement and
// the end), which a 16 ms latency timer makes about 50 ms.
const plainSpan = 2 * execSpan

// fill is how much Write gathers before it sends a span: a plain span,
// or execSpan where the board inflates whole spans and the next span's
// bytes deflate.
func (u *Upload) fill() int {
	if len(u.buf) < execSpan {
		return execSpan
	}
	if u.f.info.MemFree >= zSpanHeap && u.headDeflates() {
		return u.f.zSpan()
	}
	return plainSpan
}

// headDeflates reports whether the buffer's first execSpan deflates,
// remembered until a flush moves the buffer on.
func (u *Upload) headDeflates() bool {
	if u.head == 0 {
		u.head = -1
		if z, _ := u.f.deflated(u.buf[:min(execSpan, len(u.buf))]); z != nil {
			u.head = 1
		}
	}
	return u.head > 0
}

// alone reports whether the next segment goes in an exec of its own: each
// while the old file's sums may match (delta.go), each while another
// operation wants the board, and, on a board with too little memory to
// inflate a span, one that deflates (deflate.go).
func (u *Upload) alone() bool {
	if u.old != nil || u.f.share.contended() {
		return true
	}
	if u.f.info.MemFree >= zSpanHeap {
		return false
	}
	z, _ := u.f.deflated(u.buf[:min(segment, len(u.buf))])
	return z != nil
}

// span is how much of the buffer the next exec sends: a segment that goes
// alone, else a span, so the exec's own cost and the file's opening and
// closing are paid once for many segments: execSpan where it deflates
// whole, else plainSpan of plain segments. Where the board cannot inflate
// a span, the span stops before a segment that deflates.
func (u *Upload) span() int {
	if u.alone() {
		return min(segment, len(u.buf))
	}
	if u.f.info.MemFree >= zSpanHeap {
		if u.headDeflates() {
			return min(u.f.zSpan(), len(u.buf))
		}
		return min(plainSpan, len(u.buf))
	}
	n := 0
	for n < plainSpan && n < len(u.buf) {
		end := min(n+segment, len(u.buf))
		if z, _ := u.f.deflated(u.buf[n:end]); z != nil {
			break
		}
		n = end
	}
	return n
}

func (u *Upload) flush(ctx context.Context, n int) error {
	// The bound is the span's, and restarts at segmentTimeout with each
	// block a stream sends (blocks): a stream is as long as the bytes at
	// hand, not the span, and a fixed bound would cut a long one at a low
	// baud rate (240 s is 230 KB at 9600).
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bound := time.AfterFunc(segmentTimeout*time.Duration(max(1, (n+segment-1)/segment)), cancel)
	defer bound.Stop()
	u.head = 0
	var err error
	if u.old != nil && u.old.matches(u.written, u.buf[:n]) {
		err = u.f.copyOld(sctx, u, n)
	} else {
		next := u.blocks(n)
		n, err = u.f.send(sctx, u.tmp, u.buf[:n], u.started, func() []byte {
			b := next()
			if len(b) > 0 && !bound.Reset(segmentTimeout) {
				return nil // the bound ran out already: end here
			}
			return b
		})
	}
	if err != nil {
		// A segment that failed part-way may have left the temporary
		// file on the board, the first segment's too: Abort removes it.
		u.started = true
		u.err = err
		return err
	}
	u.hash.Write(u.buf[:n])
	for _, c := range u.buf[:n] {
		u.byteSum += int64(c)
	}
	if u.copy != nil {
		u.copy = append(u.copy, u.buf[:n]...)
		if len(u.copy) > maxCached {
			u.copy = nil
		}
	}
	u.written += int64(n)
	u.started = true
	u.buf = u.buf[n:]
	return nil
}

// blocks returns what a plain exec sends, a block (at most blockSize) at
// a time, nil for its end: the span's n bytes, then more while nothing
// else wants the board and whole blocks are at hand, in the buffer or
// from the source (SetSource); at Commit, the rest of the buffer too.
// Delta uploads (u.old) stop at the span: the next segment may match.
func (u *Upload) blocks(n int) func() []byte {
	off := 0
	return func() []byte {
		if off >= n {
			if u.old != nil || u.f.share.others() {
				return nil
			}
			u.fetch(off + blockSize)
			if len(u.buf)-off < blockSize && !(u.final && len(u.buf) > off) {
				return nil
			}
		}
		end := min(off+blockSize, len(u.buf))
		if off < n {
			end = min(end, n)
		}
		b := u.buf[off:end]
		off = end
		return b
	}
}

// fetch takes from the source what is at hand until the buffer holds
// want bytes, or none is.
func (u *Upload) fetch(want int) {
	if u.pull == nil {
		return
	}
	for len(u.buf) < want {
		have := len(u.buf)
		u.buf = slices.Grow(u.buf, plainSpan)
		k := u.pull(u.buf[have:cap(u.buf)])
		u.buf = u.buf[:have+k]
		if k == 0 {
			return
		}
	}
}

// Commit sends what is left, checks the file on the board (size, and
// SHA-256 where the board has hashlib) and puts it in place.
func (u *Upload) Commit(ctx context.Context) error {
	if u.done {
		return errors.New("boardfs: upload already finished")
	}
	u.final = true
	u.probe()
	for u.err == nil && (len(u.buf) > 0 || !u.started) {
		u.flush(ctx, u.span())
	}
	err := u.err
	if err == nil {
		err = u.f.d.closeUpload(ctx, u.f, u.tmp)
	}
	if err == nil && !u.appending {
		var placed bool
		placed, err = u.f.d.placeUpload(ctx, u.f, u.tmp, u.p, u.written, u.hash.Sum(nil))
		if err == nil && !placed {
			err = u.f.verify(ctx, u.tmp, u.written, u.hash.Sum(nil))
			if err == nil {
				err = u.f.d.checkUpload(ctx, u.f, u.tmp, u.byteSum)
			}
			if err == nil {
				err = u.f.Rename(ctx, u.tmp, u.p)
			}
		}
	} else if err == nil {
		var e Entry
		if e, err = u.f.Stat(ctx, u.p); err == nil && e.Size != u.base+u.written {
			err = fmt.Errorf("%w: %d bytes on the board, want %d", ErrCorrupt, e.Size, u.base+u.written)
		}
	}
	if err != nil {
		u.Abort(ctx)
		return fmt.Errorf("boardfs: write %q: %w", u.p, err)
	}
	u.done = true
	u.f.clearLitter(ctx)
	if u.copy != nil {
		u.f.keep(u.p, u.copy)
	}
	if u.appending {
		u.f.forget(u.p)
	}
	return nil
}

// Abort gives up the upload and removes its temporary file; the target
// stays as it was.
func (u *Upload) Abort(ctx context.Context) error {
	if u.done {
		return nil
	}
	u.done = true
	if u.appending || !u.started {
		return nil
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	u.f.d.closeUpload(actx, u.f, u.tmp)
	if err := u.f.Remove(actx, u.tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		u.f.litter.leave(u.tmp)
		return err
	}
	return nil
}

// Close aborts the upload unless it was committed.
func (u *Upload) Close() error { return u.Abort(context.Background()) }

// WriteFile stores size bytes from r as p, atomically.
func (f *FS) WriteFile(ctx context.Context, p string, r io.Reader, size int64) error {
	u, err := f.Create(ctx, p)
	if err != nil {
		return err
	}
	defer u.Close()
	lr := io.LimitReader(r, size)
	var pulled int64
	if at, ok := r.(interface{ Len() int }); ok {
		// A reader that says how much it holds unread (bytes.Reader,
		// strings.Reader) gives it without waiting.
		u.SetSource(func(p []byte) int {
			k, _ := lr.Read(p[:min(len(p), at.Len())])
			pulled += int64(k)
			return k
		})
	}
	if n, err := io.Copy(u, lr); err != nil || n+pulled != size {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("boardfs: write %q: reading the data: %w", p, err)
	}
	return u.Commit(ctx)
}

// send writes data to the file at p in one exec, holding the board: after
// what p holds once started (an append, or an upload past its first
// segment), else in its place. Where the board can inflate it, it may go
// deflated. A helper that takes blocks (uploadFlow.blocks) gets data's
// bytes from next instead, which may give more; sent says how many went.
func (f *FS) send(ctx context.Context, p string, data []byte, started bool, next func() []byte) (sent int, err error) {
	if !started {
		if err := f.d.openUpload(ctx, f, p); err != nil {
			return 0, err
		}
	}
	sent, inflated, err := f.sendOnce(ctx, p, data, started, next)
	var pe *repl.PyError
	if inflated && errors.As(err, &pe) && pe.Type == "MemoryError" {
		// _wz takes its buffer and the inflater's window before it writes
		// a byte to the file: the segment can go again, plain. A board
		// whose heap cannot spare them (an ESP8266 with the helpers in,
		// its free memory in pieces) gets every later segment plain.
		f.noInflate.Store(true)
		f.log.Warn("the board has no memory to inflate uploads: they go plain from now on", "path", p, "err", err)
		sent, _, err = f.sendOnce(ctx, p, data, started, next)
	}
	return sent, err
}

// sendOnce is one exec of send; inflated says whether the data went
// deflated.
func (f *FS) sendOnce(ctx context.Context, p string, data []byte, started bool, next func() []byte) (sent int, inflated bool, err error) {
	if err := f.acquire(ctx); err != nil {
		return 0, false, fmt.Errorf("boardfs: upload %q: %w", p, err)
	}
	defer f.release()
	call, flow := f.d.writeCall(p, len(data), started)
	if z, wbits := f.deflated(data); z != nil {
		// The board inflates into the file: fewer bytes on the wire. Only
		// a board whose dialect has the deflate helpers gets here.
		call = pyCall("_wz", p, len(z), started, wbits)
		return len(data), true, f.sendRun(ctx, p, call, z, uploadFlow{piece: wirePiece, window: window})
	}
	if flow.blocks {
		return f.sendBlocks(ctx, p, call, next, flow)
	}
	return len(data), false, f.sendRun(ctx, p, call, data, flow)
}

// sendRun runs call, which takes data under flow, holding the board.
func (f *FS) sendRun(ctx context.Context, p, call string, data []byte, flow uploadFlow) error {
	run, err := f.conn.Start(ctx, call)
	if err != nil {
		return f.wrap("upload", p, err)
	}
	// Not a byte of data goes out before the helper says it has the file
	// open and interrupts off: if open fails, data sent after the traceback
	// would reach the raw REPL as code.
	reply := make([]byte, 1)
	if _, err := io.ReadFull(run, reply); err != nil {
		return f.finish(ctx, run, "upload", p, err)
	}
	if reply[0] != ack {
		run.Unread(reply)
		return f.finish(ctx, run, "upload", p, fmt.Errorf("%w: %q instead of ready", ErrProtocol, reply))
	}
	size := len(data)
	if f.opts.HeldBack {
		flow.window = max(flow.window, size)
	}
	pieces := (size + flow.piece - 1) / flow.piece
	sent, acked := 0, 0
	replies := make([]byte, 64)
	for acked < pieces {
		// Send what the window allows, then wait for acknowledgements:
		// the bytes written wait in the line's buffers, so the line keeps
		// busy while the acknowledgements come back.
		if limit := min(acked*flow.piece+flow.window, size); sent < limit {
			n := limit - sent
			if _, err := run.Write(data[sent : sent+n]); err != nil {
				return f.finish(ctx, run, "upload", p, err)
			}
			sent += n
		}
		k, err := run.ReadContext(ctx, replies[:min(len(replies), pieces-acked)])
		if err != nil {
			return f.notHeld(p, f.finish(ctx, run, "upload", p, err))
		}
		for i, c := range replies[:k] {
			if c != ack && c != nak {
				run.Unread(replies[i:k])
				return f.finish(ctx, run, "upload", p, fmt.Errorf("%w: %q instead of an acknowledgement", ErrProtocol, replies[i:k]))
			}
		}
		acked += k
	}
	return f.finish(ctx, run, "upload", p, nil)
}

// notHeld turns an upload to p that found the board silent, on a line
// taken to hold the host back (Options.HeldBack), into ErrLineNotHeld:
// sent without waiting over a line that dropped what the board could not
// take, the board waits for bytes that will never come, and every try
// would meet it again. Other errors it returns as they are.
func (f *FS) notHeld(p string, err error) error {
	if f.opts.HeldBack && errors.Is(err, ErrSilent) {
		return fmt.Errorf("boardfs: upload %q: %w (%v)", p, ErrLineNotHeld, err)
	}
	return err
}

// sendBlocks runs call, a helper that takes blocks (_w), with the blocks
// next gives until it gives nil, holding the board, and returns how many
// bytes they held. The window counts the bytes on the wire, the blocks'
// heads and the end included; each piece's acknowledgement frees the
// wire up to the piece's end.
func (f *FS) sendBlocks(ctx context.Context, p, call string, next func() []byte, flow uploadFlow) (int, bool, error) {
	run, err := f.conn.Start(ctx, call)
	if err != nil {
		return 0, false, f.wrap("upload", p, err)
	}
	fail := func(err error) (int, bool, error) {
		return 0, false, f.notHeld(p, f.finish(ctx, run, "upload", p, err))
	}
	// Not a byte of data goes out before the helper says it has the file
	// open and interrupts off: if open fails, data sent after the traceback
	// would reach the raw REPL as code.
	reply := make([]byte, 1)
	if _, err := io.ReadFull(run, reply); err != nil {
		return fail(err)
	}
	if reply[0] != ack {
		run.Unread(reply)
		return fail(fmt.Errorf("%w: %q instead of ready", ErrProtocol, reply))
	}
	var (
		wire    []byte  // bytes due on the line, not yet written
		written int64   // bytes written to the line
		planned int64   // bytes written or due
		ends    []int64 // the wire end of each piece not yet acknowledged
		freed   int64   // the wire end of the last acknowledged piece
		sent    int
		ended   bool
		replies = make([]byte, 64)
	)
	for {
		if len(wire) == 0 && !ended {
			b := next()
			if len(b) > blockSize {
				return fail(fmt.Errorf("boardfs: a block of %d bytes", len(b)))
			}
			if len(b) == 0 {
				wire = append(wire[:0], 'E')
				planned++
				ended = true
			} else {
				wire = append(wire[:0], 'B', byte(len(b)>>8), byte(len(b)))
				planned += 3
				wire = append(wire, b...)
				for at := flow.piece; ; at += flow.piece {
					ends = append(ends, planned+int64(min(at, len(b))))
					if at >= len(b) {
						break
					}
				}
				planned += int64(len(b))
				sent += len(b)
			}
		}
		limit := freed + int64(flow.window)
		if f.opts.HeldBack {
			// The line holds back what the board cannot take; the bound
			// only keeps the board's acknowledgements read as they come.
			limit = freed + heldBackWindow
		}
		if n := min(int64(len(wire)), limit-written); n > 0 {
			// The bytes written wait in the line's buffers, so the line
			// keeps busy while the acknowledgements come back.
			if _, err := run.Write(wire[:n]); err != nil {
				return fail(err)
			}
			wire = wire[n:]
			written += n
			if len(wire) == 0 && !ended {
				continue
			}
		}
		if len(ends) == 0 {
			if ended && len(wire) == 0 {
				break
			}
			continue
		}
		k, err := run.ReadContext(ctx, replies[:min(len(replies), len(ends)+syncPad)])
		if err != nil {
			return fail(err)
		}
		acks := 0
	scan:
		for i, c := range replies[:k] {
			switch {
			case c == syn:
			case (c == ack || c == nak) && acks < len(ends):
				acks++
			case acks == len(ends):
				// The program's end, read with the last filler: Wait's.
				run.Unread(replies[i:k])
				break scan
			default:
				run.Unread(replies[i:k])
				return fail(fmt.Errorf("%w: %q instead of an acknowledgement", ErrProtocol, replies[i:k]))
			}
		}
		if acks > 0 {
			freed = ends[acks-1]
			ends = ends[acks:]
		}
	}
	return sent, false, f.finish(ctx, run, "upload", p, nil)
}

// uploadFlow is how an upload helper takes its bytes: an ack per piece,
// and at most window bytes unacknowledged; with blocks, in blocks after
// their lengths (py/write.py), pieces counted from each block's start.
type uploadFlow struct {
	piece, window int
	blocks        bool
}

// blockSize is the most one block of _w holds: a flash erase block.
const blockSize = 4096

// heldBackWindow bounds what a stream of blocks keeps unacknowledged on a
// line that holds the host back (Options.HeldBack): many USB frames, and
// few enough acknowledgements that they never wait long to be read.
const heldBackWindow = 2 * blockSize

// verify checks the uploaded temporary file: its size, and its SHA-256
// where the board has hashlib, both from one exec then.
func (f *FS) verify(ctx context.Context, tmp string, size int64, sum []byte) error {
	if !f.info.SHA256 {
		e, err := f.Stat(ctx, tmp)
		if err != nil {
			return err
		}
		if e.Size != size {
			return fmt.Errorf("%w: %d bytes on the board, %d sent", ErrCorrupt, e.Size, size)
		}
		return nil
	}
	n, got, err := f.fingerprint(ctx, tmp)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%w: %d bytes on the board, %d sent", ErrCorrupt, n, size)
	}
	if !bytes.Equal(got, sum) {
		return fmt.Errorf("%w: SHA-256 on the board %x, sent %x", ErrCorrupt, got, sum)
	}
	return nil
}
