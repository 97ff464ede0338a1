package boardfs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// The micro:bit (MicroPython 1.9.2) has a flat filesystem and no binary
// stdin: its helpers, and what its firmware lacks, are in py/microbit.py.

// flatChunk is an upload piece, as _wu reads them: two in flight fit the
// micro:bit's 63-byte receive buffer.
const flatChunk = 30

// flatName returns the file name a path names on a flat filesystem.
func flatName(p string) (string, error) {
	name := strings.TrimPrefix(p, "/")
	if name == "" || strings.Contains(name, "/") {
		return "", fmt.Errorf("boardfs: %q: %w (the board has no directories)", p, fs.ErrNotExist)
	}
	return name, nil
}

func (f *FS) flatList(ctx context.Context, dir string) ([]Entry, error) {
	if dir != "/" {
		return nil, fmt.Errorf("boardfs: list %q: %w (the board has no directories)", dir, fs.ErrNotExist)
	}
	return again(f, "list", dir, func() ([]Entry, error) {
		out, err := f.call(ctx, "list", dir, pyCall("_l"))
		if err != nil {
			return nil, err
		}
		return f.parseList(out)
	})
}

func (f *FS) flatStat(ctx context.Context, p string) (Entry, error) {
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

// flatVar is the board-side name of the file object an upload keeps open
// across execs: the board cannot append, so the file stays open until
// Commit or Abort.
func flatVar(p string) string {
	sum := sha256.Sum256([]byte(p))
	return "_u" + hex.EncodeToString(sum[:4])
}

// flatOpen opens an upload's file on the board, where it stays open
// for _wu until flatClose.
func (f *FS) flatOpen(ctx context.Context, p string) error {
	name, err := flatName(p)
	if err != nil {
		return err
	}
	_, err = f.call(ctx, "upload", p, flatVar(p)+"="+pyCall("open", name, "wb"))
	return err
}

// flatClose closes an upload's file on the board, whatever state it is in.
func (f *FS) flatClose(ctx context.Context, p string) error {
	v := flatVar(p)
	_, err := f.call(ctx, "upload", p, "try:\n "+v+".close()\n del "+v+"\nexcept NameError:\n pass")
	return err
}

// flatVerify checks an upload on the micro:bit, which has no hashlib: the
// sum of the file's bytes on the board must be the sum of those sent, so a
// byte changed on the way fails the upload instead of landing in the file.
// The code is sent once, not kept among the helpers: the board's heap is
// small.
func (f *FS) flatVerify(ctx context.Context, p string, want int64) error {
	name, err := flatName(p)
	if err != nil {
		return err
	}
	out, err := f.call(ctx, "check", p, pyOnce("microbit_check", "_ck", name))
	if err != nil {
		return err
	}
	if got := strings.TrimSpace(string(out)); got != strconv.FormatInt(want, 10) {
		return fmt.Errorf("%w: the bytes on the board sum to %s, those sent to %d", ErrCorrupt, got, want)
	}
	return nil
}

// flatRename copies and deletes: the board has no rename. The target is
// replaced in place, so this is not atomic on the micro:bit.
func (f *FS) flatRename(ctx context.Context, from, to string) error {
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
