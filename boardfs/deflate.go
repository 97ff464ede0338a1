package boardfs

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"math/bits"
)

// Compressed transfers. MicroPython 1.21+ has a deflate module that
// inflates on every port; deflating needs a full-feature build (the unix
// port, the WebAssembly VM; not the usual ESP32 firmware). Each segment is
// one raw deflate stream of its own, so the board's window never has to
// reach back beyond the segment: its size sets the window (wbits), and the
// board's heap holds a segment, its compressed form and the window.

// zSegment is how much of a file one compressed download exec reads: the
// board deflates it with an 8 KB window (wbits 13 in _z).
const zSegment = 8 * 1024

// zProbe is the first segment of a download that may come deflated.
const zProbe = 1024

// Board memory the deflated transfers need, with room to spare: _z holds
// an 8 KB segment, its deflated form and an 8 KB window; _wz a 4 KB
// deflated segment, a 4 KB window and 512 bytes of output. An ESP8266 has
// about 30 KB free.
const (
	zDownloadHeap = 64 << 10
	zUploadHeap   = 16 << 10
	// zSpanHeap lets a whole span (execSpan) go up as one deflated
	// stream: _wz then holds up to 16 KB of it and a 16 KB window.
	zSpanHeap = 64 << 10
	// zWideHeap lets a plain span's worth (plainSpan) go up as one
	// deflated stream: _wz then holds its deflated bytes (about 9 KB of
	// Python source) and the 32 KB window a 32 KB stream may refer back.
	zWideHeap = 80 << 10
)

// zSpan is the most one exec of a deflated upload moves.
func (f *FS) zSpan() int {
	if f.info.MemFree >= zWideHeap {
		return plainSpan
	}
	return execSpan
}

// compressDownloads reports whether segments come down deflated.
func (f *FS) compressDownloads() bool {
	return f.info.Compress && f.info.Binascii && f.d.lacks(featDeflate) == "" && f.info.MemFree >= zDownloadHeap
}

// segment is how much the reader's next exec reads.
func (r *reader) segment() int64 {
	switch {
	case r.deflate && !r.tried:
		// A first small segment tells whether the file deflates before
		// the board spends its time deflating 8 KB of, say, a JPEG.
		return zProbe
	case r.deflate:
		return zSegment
	case r.wide:
		return execSpan
	}
	return segment
}

// deflated returns data as a raw deflate stream and the window it needs,
// or nil when the board cannot inflate or deflating saves too little to
// pay for itself: random data must not get slower.
func (f *FS) deflated(data []byte) ([]byte, int) {
	heap := zUploadHeap
	switch {
	case len(data) > execSpan:
		heap = zWideHeap
	case len(data) > segment:
		heap = zSpanHeap
	}
	if !f.info.Deflate || f.d.lacks(featDeflate) != "" || f.info.MemFree < heap || f.noInflate.Load() || len(data) < 256 {
		return nil, 0
	}
	var buf bytes.Buffer
	zw, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		return nil, 0
	}
	if _, err := zw.Write(data); err != nil {
		return nil, 0
	}
	if err := zw.Close(); err != nil {
		return nil, 0
	}
	// 2 % and a little: the exec's few more bytes of code.
	if buf.Len() > len(data)*98/100-16 {
		return nil, 0
	}
	// A stream of one segment never refers further back than its length.
	wbits := max(9, min(15, bits.Len(uint(len(data)-1))))
	return buf.Bytes(), wbits
}

// decodeDeflated reads _z's reply: a mode byte, then frames of the
// deflated segment ('Z') or of the plain one ('P'). It writes at most n
// plain bytes to w, and says whether they came deflated.
func decodeDeflated(r io.Reader, w io.Writer, at, n int64) (int64, bool, error) {
	var mode [1]byte
	if _, err := io.ReadFull(r, mode[:]); err != nil {
		return 0, true, err
	}
	switch mode[0] {
	case ctrlD:
		return 0, true, errNoFrames
	case 'P':
		got, err := decodeFrames(r, w, checkCRC32, at)
		return got, false, err
	case 'Z':
	default:
		return 0, true, fmt.Errorf("%w: mode %q before a segment", errLostFraming, mode[0])
	}
	got, err := inflateFrames(r, w, at, n)
	return got, true, err
}

func inflateFrames(r io.Reader, w io.Writer, at, n int64) (int64, error) {
	var z bytes.Buffer
	if _, err := decodeFrames(r, &z, checkCRC32, at); err != nil {
		return 0, err
	}
	zr := flate.NewReader(&z)
	defer zr.Close()
	got, err := io.Copy(w, io.LimitReader(zr, n+1))
	if err != nil {
		return 0, fmt.Errorf("%w: inflating the segment at %d: %v", ErrCorrupt, at, err)
	}
	if got > n {
		return 0, fmt.Errorf("%w: the segment at %d inflates past %d bytes", ErrCorrupt, at, n)
	}
	return got, nil
}
