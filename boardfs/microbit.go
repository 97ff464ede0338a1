package boardfs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// microbitDialect speaks to the micro:bit (MicroPython 1.9.2): a flat
// filesystem and no binary stdin, so data moves through microbit.uart and
// every check is a sum of bytes. Its helpers, and what its firmware lacks,
// are in py/microbit.py.
type microbitDialect struct{}

// flatChunk is an upload piece, as _wu reads them: two in flight fit the
// micro:bit's 63-byte receive buffer.
const flatChunk = 30

// helpers come a few functions at a time: the micro:bit compiles in a few
// KB of heap.
func (microbitDialect) helpers(bool) []string { return splitDefs(flatHelpers, 400) }

func (microbitDialect) lacks(f feature) string {
	switch f {
	case featDirs:
		return "no directories"
	case featAppend:
		return "files open only for writing anew"
	case featSpace:
		return "no statvfs"
	case featDeflate, featDelta:
		return "no binary stdin for their helpers"
	}
	return ""
}

// seal is the sum of the lines' bytes, in decimal: the micro:bit has no
// binascii, and a CRC in its Python would be slow.
func (microbitDialect) seal(lines ...string) (string, bool) {
	var sum int
	for _, l := range lines {
		for i := range len(l) {
			sum += int(l[i])
		}
	}
	return strconv.Itoa(sum), true
}

// flatName returns the file name a path names on a flat filesystem.
func flatName(p string) (string, error) {
	name := strings.TrimPrefix(p, "/")
	if name == "" || strings.Contains(name, "/") {
		return "", fmt.Errorf("boardfs: %q: %w (the board has no directories)", p, fs.ErrNotExist)
	}
	return name, nil
}

// listCall lists the one directory in one page: its filesystem holds few
// files.
func (microbitDialect) listCall(dir string, _, _ int, _ bool) (string, frameCheck, error) {
	if dir != "/" {
		return "", checkNone, fmt.Errorf("boardfs: list %q: %w (the board has no directories)", dir, fs.ErrNotExist)
	}
	return pyCall("_l"), checkSum, nil
}

func (microbitDialect) stat(ctx context.Context, f *FS, p string) (Entry, error) {
	if p == "/" {
		return Entry{Name: "/", IsDir: true}, nil
	}
	name, err := flatName(p)
	if err != nil {
		return Entry{}, err
	}
	out, err := f.callSealed(ctx, "stat", p, pyCall("_t", name))
	if err != nil {
		return Entry{}, err
	}
	if out == "-" {
		return Entry{}, fmt.Errorf("boardfs: stat %q: %w", p, fs.ErrNotExist)
	}
	e, err := f.entry(name, out)
	e.ModTime = f.epoch // the micro:bit has no clock
	return e, err
}

func (d microbitDialect) remove(ctx context.Context, f *FS, p string) error {
	name, err := flatName(p)
	if err != nil {
		return err
	}
	_, err = f.call(ctx, "remove", p, pyCall("os.remove", name))
	if err != nil {
		// The micro:bit says "file not found" without an errno.
		if _, serr := d.stat(ctx, f, p); errors.Is(serr, fs.ErrNotExist) {
			return fmt.Errorf("boardfs: remove %q: %w", p, fs.ErrNotExist)
		}
	}
	return err
}

// rename copies and deletes: the board has no rename. The target is
// replaced in place, so this is not atomic on the micro:bit.
func (microbitDialect) rename(ctx context.Context, f *FS, from, to string) error {
	a, err := flatName(from)
	if err != nil {
		return err
	}
	b, err := flatName(to)
	if err != nil {
		return err
	}
	if _, err := f.call(ctx, "rename", from, pyCall("_cp", a, b)); err != nil {
		return err
	}
	_, err = f.call(ctx, "rename", from, pyCall("os.remove", a))
	return err
}

func (microbitDialect) readCall(p string, offset, n int64) (string, frameCheck, error) {
	name, err := flatName(p)
	if err != nil {
		return "", checkNone, err
	}
	return pyCall("_x", name, offset, n), checkSum, nil
}

func (microbitDialect) tempName(p string) (string, error) {
	if _, err := flatName(p); err != nil {
		return "", err
	}
	return newTempName("/"), nil
}

func (microbitDialect) sweepCode() string { return pyOnce("microbit_sweep", "_sw") }

// flatVar is the board-side name of the file object an upload keeps open
// across execs: the board cannot append, so the file stays open until
// Commit or Abort.
func flatVar(p string) string {
	sum := sha256.Sum256([]byte(p))
	return "_u" + hex.EncodeToString(sum[:4])
}

// openUpload opens the upload's file on the board, where it stays open for
// _wu until closeUpload.
func (microbitDialect) openUpload(ctx context.Context, f *FS, tmp string) error {
	name, err := flatName(tmp)
	if err != nil {
		return err
	}
	_, err = f.call(ctx, "upload", tmp, flatVar(tmp)+"="+pyCall("open", name, "wb"))
	return err
}

// writeCall ignores started: the file openUpload opened takes each
// segment after the last.
func (microbitDialect) writeCall(p string, size int, _ bool) (string, uploadFlow) {
	return pyCall("_wu", pyExpr(flatVar(p)), size), uploadFlow{piece: flatChunk, window: 2 * flatChunk}
}

// closeUpload closes the upload's file on the board, whatever state it is
// in.
func (microbitDialect) closeUpload(ctx context.Context, f *FS, tmp string) error {
	v := flatVar(tmp)
	_, err := f.call(ctx, "upload", tmp, "try:\n "+v+".close()\n del "+v+"\nexcept NameError:\n pass")
	return err
}

// checkUpload checks an upload on the micro:bit, which has no hashlib: the
// sum of the file's bytes on the board must be the sum of those sent, so a
// byte changed on the way fails the upload instead of landing in the file.
// placeUpload leaves Commit its steps: the micro:bit has no hashlib.
func (microbitDialect) placeUpload(context.Context, *FS, string, string, int64, []byte) (bool, error) {
	return false, nil
}

func (microbitDialect) checkUpload(ctx context.Context, f *FS, tmp string, byteSum int64) error {
	name, err := flatName(tmp)
	if err != nil {
		return err
	}
	out, err := f.call(ctx, "check", tmp, pyOnce("microbit_check", "_ck", name, 0))
	if err != nil {
		return err
	}
	if _, got, _ := strings.Cut(strings.TrimSpace(string(out)), " "); got != strconv.FormatInt(byteSum, 10) {
		return fmt.Errorf("%w: the bytes on the board sum to %s, those sent to %d", ErrCorrupt, got, byteSum)
	}
	return nil
}

// digest is the count and the sum of the bytes (_ck): the micro:bit has
// no hashlib, and a CRC in its Python would be slow.
func (microbitDialect) digest(ctx context.Context, f *FS, p string, offset int64) (digest, error) {
	name, err := flatName(p)
	if err != nil {
		return digest{}, err
	}
	out, err := f.call(ctx, "check", p, pyOnce("microbit_check", "_ck", name, offset))
	if err != nil {
		return digest{}, err
	}
	dg := digest{check: digestSum}
	if _, err := fmt.Sscan(string(out), &dg.size, &dg.value); err != nil {
		return digest{}, fmt.Errorf("%w: digest %q", ErrProtocol, out)
	}
	return dg, nil
}
