package boardfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// ctrlD ends a program's output in the raw REPL.
const ctrlD = 0x04

// Download frames, as the board's _f helper (py/frames.py) writes them:
// each is a 2-byte big-endian length n (1 to maxFrame), n bytes of file
// data and their check: a CRC-32, the sum of the bytes on the micro:bit
// (whose Python is too slow for a CRC and has no binascii), or 0 from
// other boards without binascii. The end is a zero length and the 4-byte
// count of data bytes in all frames, so a length damaged into an early
// end, or a lost frame, cannot pass for a short read.
var (
	// errNoFrames: the output ended (0x04) before the first frame; the
	// helper raised instead of sending.
	errNoFrames = errors.New("boardfs: no frames")
	// errLostFraming: a length no frame can have; the bytes after it
	// cannot be told apart from the REPL's own.
	errLostFraming = fmt.Errorf("%w: lost the frame boundaries", ErrCorrupt)
)

// frameCheck is what follows each frame's data.
type frameCheck int

const (
	checkNone  frameCheck = iota // 0, not checked
	checkCRC32                   // CRC-32 (IEEE)
	checkSum                     // the sum of the bytes: one flipped bit changes it too
)

// of returns the check of data.
func (c frameCheck) of(data []byte) uint32 {
	switch c {
	case checkCRC32:
		return crc32.ChecksumIEEE(data)
	case checkSum:
		var s uint32
		for _, b := range data {
			s += uint32(b)
		}
		return s
	}
	return 0
}

// decodeFrames copies the data of the frames in r to w and returns how
// many bytes it wrote. After a frame whose check is wrong it reads on to
// the end without writing, and returns ErrCorrupt. at is the file offset
// of the first frame, for messages.
func decodeFrames(r io.Reader, w io.Writer, check frameCheck, at int64) (int64, error) {
	var (
		total, sent int64
		hdr         [2]byte
		count       [4]byte
		buf         = make([]byte, maxFrame+4)
		damaged     error
	)
	for first := true; ; first = false {
		if _, err := io.ReadFull(r, hdr[:1]); err != nil {
			return total, err
		}
		if first && hdr[0] == ctrlD {
			return 0, errNoFrames
		}
		if _, err := io.ReadFull(r, hdr[1:]); err != nil {
			return total, err
		}
		n := int(binary.BigEndian.Uint16(hdr[:]))
		if n == 0 {
			break
		}
		if n > maxFrame {
			return total, fmt.Errorf("%w: a frame of %d bytes at %d", errLostFraming, n, at+sent)
		}
		if _, err := io.ReadFull(r, buf[:n+4]); err != nil {
			return total, err
		}
		if want := binary.BigEndian.Uint32(buf[n : n+4]); check != checkNone && damaged == nil && check.of(buf[:n]) != want {
			damaged = fmt.Errorf("%w: the check (CRC-32 or sum) of a %d-byte frame at %d", ErrCorrupt, n, at+sent)
		}
		sent += int64(n)
		if damaged != nil {
			continue
		}
		if _, err := w.Write(buf[:n]); err != nil {
			return total, err
		}
		total += int64(n)
	}
	if _, err := io.ReadFull(r, count[:]); err != nil {
		return total, err
	}
	if damaged != nil {
		return total, damaged
	}
	if c := int64(binary.BigEndian.Uint32(count[:])); c != sent {
		return total, fmt.Errorf("%w: %d bytes in frames at %d, the board sent %d", ErrCorrupt, sent, at, c)
	}
	return total, nil
}
