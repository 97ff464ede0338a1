package boardfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/ftpbridge/ftpbridge/repl"
)

// A dialect is how boardfs speaks to one family of boards: the helpers it
// installs, how a path becomes the board's name, the calls operations send,
// how replies are checked, and what the board cannot do. It is chosen once,
// when the board is detected (newDialect), so the operations in ops.go,
// read.go and write.go read straight through; a new family of boards
// (CircuitPython, say) is a new dialect.
type dialect interface {
	// helpers returns the helpers prepare installs, in the parts it sends
	// them in; deflate says the board has the deflate module.
	helpers(deflate bool) []string
	// lacks says why the board cannot do what f names, or "" when it can.
	lacks(f feature) string
	// seal returns the check the board puts after lines of a reply
	// (unseal, parseList); ok is false where it sends none worth checking.
	seal(lines ...string) (seal string, ok bool)
	// listCall returns the call that sends a page of dir's listing, as
	// decodeListPage reads it, of about budget bytes: the first page of
	// the listing under key when first, else the next. check is what the
	// page carries.
	listCall(dir string, key, budget int, first bool) (call string, check frameCheck, err error)
	// stat describes p; fs.ErrNotExist when it is absent.
	stat(ctx context.Context, f *FS, p string) (Entry, error)
	// remove removes the file p.
	remove(ctx context.Context, f *FS, p string) error
	// rename moves from to to, replacing a file at to.
	rename(ctx context.Context, f *FS, from, to string) error
	// digest describes p's bytes from offset as they are now, for a
	// download that ends to compare with what it read.
	digest(ctx context.Context, f *FS, p string, offset int64) (digest, error)
	// readCall returns the call that sends up to n bytes of p from offset
	// in frames (frames.go), and the check its frames carry.
	readCall(p string, offset, n int64) (call string, check frameCheck, err error)
	// tempName returns a new name to write an upload to p under: one
	// newTempName makes in p's directory, which listings skip and the
	// sweep removes. An error says p cannot be a file on this board.
	tempName(p string) (string, error)
	// sweepCode returns code that removes every upload temporary on the
	// board and prints each one's path in hex.
	sweepCode() string
	// openUpload readies the board to take an upload into the new file
	// tmp, before its first segment.
	openUpload(ctx context.Context, f *FS, tmp string) error
	// writeCall returns the call that reads size bytes from the host into
	// the file p (after what it holds when started, else in its place),
	// as send in write.go speaks to it, and how it takes the bytes.
	writeCall(p string, size int, started bool) (call string, flow uploadFlow)
	// closeUpload ends what openUpload began, whatever state the upload
	// is in.
	closeUpload(ctx context.Context, f *FS, tmp string) error
	// checkUpload checks, beyond its size and SHA-256, that the file tmp
	// holds the bytes sent, whose sum is byteSum.
	checkUpload(ctx context.Context, f *FS, tmp string, byteSum int64) error
	// placeUpload checks that tmp holds size bytes whose SHA-256 is sum
	// and puts it in place of p, in one exec where the board can, and
	// says whether it did; false leaves both steps to Commit.
	placeUpload(ctx context.Context, f *FS, tmp, p string, size int64, sum []byte) (bool, error)
}

// feature names what some boards cannot do.
type feature int

const (
	featDirs    feature = iota // directories: mkdir, rmdir, listing below /
	featAppend                 // appending to a file
	featSpace                  // free space (statvfs)
	featDeflate                // the deflate helpers (_z, _wz; deflate.go)
	featDelta                  // the block-sum helpers (_bs, _ca; delta.go)
)

// newDialect returns the dialect of a board: one without binary stdin and
// stdout (the micro:bit) cannot take the os helpers, whose data moves
// through them. binascii says it has a C CRC-32, for checks.
func newDialect(binaryIO, binascii bool) dialect {
	if !binaryIO {
		return microbitDialect{}
	}
	return osDialect{binascii: binascii}
}

// osDialect speaks to boards with a modern os module (ilistdir, stat,
// statvfs, rename) and binary stdin and stdout: the ESP32, ESP8266,
// Pyboard, RP2040 and most MicroPython ports since 1.9.
type osDialect struct {
	binascii bool // replies and frames carry a CRC-32; else nothing to check
}

func (osDialect) helpers(deflate bool) []string {
	code := helpers + deltaHelpers
	if deflate {
		code += zHelpers
	}
	// In parts: the compiler's parse of all of them at once needs more
	// than an ESP8266 has free (30 KB) on top of what they keep.
	return splitDefs(code, helperPart)
}

// helperPart is about how much helper source one exec defines.
const helperPart = 1536

func (osDialect) lacks(feature) string { return "" }

func (d osDialect) seal(lines ...string) (string, bool) {
	if !d.binascii {
		return "", false
	}
	var c uint32
	for _, l := range lines {
		c = crc32.Update(c, crc32.IEEETable, []byte(l))
	}
	return fmt.Sprintf("%08x", c), true
}

func (d osDialect) listCall(dir string, key, budget int, first bool) (string, frameCheck, error) {
	check := checkNone
	if d.binascii {
		check = checkCRC32
	}
	return pyCall("_l", dir, key, budget, first), check, nil
}

func (osDialect) stat(ctx context.Context, f *FS, p string) (Entry, error) {
	out, err := f.callSealed(ctx, "stat", p, pyCall("_p", pyExpr(pyCall("_t", p))))
	if err != nil {
		return Entry{}, err
	}
	return f.entry(path.Base(p), out)
}

func (osDialect) remove(ctx context.Context, f *FS, p string) error {
	_, err := f.call(ctx, "remove", p, pyCall("os.remove", p))
	return err
}

// rename renames in place; a file moved between two mounts (a Pyboard's
// /flash and /sd), which the board refuses with EPERM or EXDEV, is
// copied, checked and then deleted.
func (osDialect) rename(ctx context.Context, f *FS, from, to string) error {
	_, err := f.call(ctx, "rename", from, pyCall("_mv", from, to))
	var pe *repl.PyError
	if err != nil && errors.As(err, &pe) && (pe.Errno == repl.EPERM || pe.Errno == repl.EXDEV) && topDir(from) != topDir(to) {
		return f.moveAcross(ctx, from, to)
	}
	return err
}

// moveAcross moves a file between two mounts: a copy beside the target,
// checked (size, and SHA-256 where the board has hashlib), renamed over
// it, then the source deleted. The copy and the target share a directory,
// so their rename is the board's own (_mv), never Rename again: a rename
// that fails here fails the move, once, and the copy is removed.
func (f *FS) moveAcross(ctx context.Context, from, to string) error {
	src, err := f.Stat(ctx, from)
	if err != nil {
		return err
	}
	if src.IsDir {
		return fmt.Errorf("boardfs: rename %q to %q: %w", from, to, ErrDirAcrossMounts)
	}
	tmp, err := f.d.tempName(to)
	if err != nil {
		return err
	}
	// _ca (py/delta.py) copies the file's bytes: the size is checked after.
	if _, err := f.call(ctx, "copy", from, pyCall("_ca", from, tmp, 0, src.Size, false)); err != nil {
		f.dropCopy(ctx, tmp)
		return err
	}
	var want []byte
	if f.info.SHA256 {
		if want, err = f.Hash(ctx, from); err != nil {
			f.dropCopy(ctx, tmp)
			return err
		}
	}
	if err := f.verify(ctx, tmp, src.Size, want); err != nil {
		f.dropCopy(ctx, tmp)
		return err
	}
	if _, err := f.call(ctx, "rename", tmp, pyCall("_mv", tmp, to)); err != nil {
		f.dropCopy(ctx, tmp)
		return err
	}
	return f.Remove(ctx, from)
}

// dropCopy removes moveAcross's copy tmp, which will not be used, even
// once ctx is done, within a bound of its own.
func (f *FS) dropCopy(ctx context.Context, tmp string) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := f.Remove(dctx, tmp); err != nil {
		f.log.Warn("removing the copy of a failed move", "path", tmp, "err", err)
	}
}

func topDir(p string) string {
	first, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	return first
}

func (d osDialect) readCall(p string, offset, n int64) (string, frameCheck, error) {
	check := checkNone
	if d.binascii {
		check = checkCRC32
	}
	return pyCall("_r", p, offset, n), check, nil
}

// digest is a CRC-32 where the board has binascii: C, faster than a
// SHA-256 on boards without its hardware, and a mix of two versions
// passes it by a chance of 2^-32. Else a SHA-256 where it has hashlib,
// else the size alone.
func (d osDialect) digest(ctx context.Context, f *FS, p string, offset int64) (digest, error) {
	check := digestSize
	switch {
	case d.binascii:
		check = digestCRC32
	case f.info.SHA256:
		check = digestSHA256
	}
	out, err := f.callSealed(ctx, "check", p, pyCall("_fp", p, offset, check == digestSHA256))
	if err != nil {
		return digest{}, err
	}
	dg := digest{check: check}
	if _, err := fmt.Sscan(out, &dg.size, &dg.value); err != nil {
		return digest{}, fmt.Errorf("%w: digest %q", ErrProtocol, out)
	}
	return dg, nil
}

func (osDialect) tempName(p string) (string, error) { return newTempName(path.Dir(p)), nil }

func (osDialect) sweepCode() string { return pyOnce("sweep", "_sw", "/") }

// openUpload has nothing to do: each _w opens and closes the file.
func (osDialect) openUpload(context.Context, *FS, string) error { return nil }

func (osDialect) writeCall(p string, _ int, started bool) (string, uploadFlow) {
	return pyCall("_w", p, started), uploadFlow{piece: wirePiece, window: window, blocks: true}
}

func (osDialect) closeUpload(context.Context, *FS, string) error { return nil }

// checkUpload has nothing to add: Commit's size and SHA-256 (where the
// board has hashlib) are the check.
func (osDialect) checkUpload(context.Context, *FS, string, int64) error { return nil }

// placeUpload checks and renames in one exec (_vr) where the board has
// hashlib: the helper renames only a file whose size and SHA-256 are the
// host's, and answers with what it found.
func (osDialect) placeUpload(ctx context.Context, f *FS, tmp, p string, size int64, sum []byte) (bool, error) {
	if !f.info.SHA256 {
		return false, nil
	}
	// The board compares its size and 16 hex digits of its SHA-256 (64
	// bits: an accident never matches them) so that the call fits in one
	// pipelined raw-paste write (repl's 128 bytes) for most paths; the
	// host compares the whole answer.
	want := fmt.Sprintf("%d %x", size, sum)
	f.forget(tmp, p)
	out, err := f.call(ctx, "upload", p, pyCall("_vr", tmp, p, pyExpr("'"+want[:len(want)-48]+"'")))
	if err != nil {
		return true, err
	}
	got, err := f.unseal(string(out))
	if err != nil {
		// Damaged on its way back: whether the board renamed depends on
		// what it found, so ask the target. Not the same exec again: a
		// file it did rename is gone from tmp.
		n, s, ferr := f.fingerprint(ctx, p)
		if ferr != nil || n != size || !bytes.Equal(s, sum) {
			return true, fmt.Errorf("boardfs: upload %q: %w", p, err)
		}
		// In place. A tmp still there held the same bytes as an old p
		// that already had them: it goes.
		if rerr := f.d.remove(ctx, f, tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			f.litter.leave(tmp)
		}
		return true, nil
	}
	if got != want {
		count, hexSum, _ := strings.Cut(got, " ")
		if count != strconv.FormatInt(size, 10) {
			return true, fmt.Errorf("%w: %s bytes on the board, %d sent", ErrCorrupt, count, size)
		}
		return true, fmt.Errorf("%w: SHA-256 on the board %s, sent %x", ErrCorrupt, hexSum, sum)
	}
	return true, nil
}
