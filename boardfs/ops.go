package boardfs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Stat describes one path; fs.ErrNotExist when it is absent.
func (f *FS) Stat(ctx context.Context, p string) (Entry, error) {
	if err := checkPath(p); err != nil {
		return Entry{}, err
	}
	return f.d.stat(ctx, f, p)
}

// Mkdir makes a directory.
func (f *FS) Mkdir(ctx context.Context, p string) error {
	if err := checkNew(p); err != nil {
		return err
	}
	if why := f.d.lacks(featDirs); why != "" {
		return fmt.Errorf("boardfs: mkdir %q: %w (%s)", p, ErrNotSupported, why)
	}
	_, err := f.call(ctx, "mkdir", p, pyCall("os.mkdir", p))
	return err
}

// Remove removes a file.
func (f *FS) Remove(ctx context.Context, p string) error {
	if err := checkTarget(p); err != nil {
		return err
	}
	f.forget(p)
	return f.d.remove(ctx, f, p)
}

// RemoveDir removes an empty directory; ErrNotEmpty when it is not.
func (f *FS) RemoveDir(ctx context.Context, p string) error {
	if err := checkTarget(p); err != nil {
		return err
	}
	if why := f.d.lacks(featDirs); why != "" {
		return fmt.Errorf("boardfs: rmdir %q: %w (%s)", p, ErrNotSupported, why)
	}
	_, err := f.call(ctx, "rmdir", p, pyCall("os.rmdir", p))
	return err
}

// Rename moves from to to, replacing an existing file at to. A file moved
// between two mounts (a Pyboard's /flash and /sd), which the board refuses
// to rename, is copied, checked and then deleted. On the micro:bit, which
// has no rename, it is a copy and a delete, not atomic.
func (f *FS) Rename(ctx context.Context, from, to string) error {
	if err := checkTarget(from); err != nil {
		return err
	}
	if err := checkNew(to); err != nil {
		return err
	}
	f.forget(from, to)
	return f.d.rename(ctx, f, from, to)
}

// Hash returns the SHA-256 of a file, computed on the board.
func (f *FS) Hash(ctx context.Context, p string) ([]byte, error) {
	if err := checkPath(p); err != nil {
		return nil, err
	}
	if !f.info.SHA256 {
		return nil, fmt.Errorf("boardfs: hash %q: %w (no hashlib.sha256)", p, ErrNotSupported)
	}
	_, sum, err := f.fingerprint(ctx, p)
	return sum, err
}

// fingerprint returns the size of the file at p and its SHA-256, read in
// one pass of one exec; only for boards with hashlib.sha256.
func (f *FS) fingerprint(ctx context.Context, p string) (int64, []byte, error) {
	out, err := f.callSealed(ctx, "hash", p, pyCall("_fp", p, 0, true))
	if err != nil {
		return 0, nil, err
	}
	count, hexSum, _ := strings.Cut(out, " ")
	size, err := strconv.ParseInt(count, 10, 64)
	sum, herr := hex.DecodeString(hexSum)
	if err != nil || herr != nil || len(sum) != sha256.Size {
		return 0, nil, fmt.Errorf("%w: hash %q", ErrProtocol, out)
	}
	return size, sum, nil
}

// Space returns the free and total bytes of the filesystem the board works
// in (its current directory: / on most boards, /flash on a Pyboard).
func (f *FS) Space(ctx context.Context) (free, total int64, err error) {
	if why := f.d.lacks(featSpace); why != "" {
		return 0, 0, fmt.Errorf("boardfs: free space: %w (%s)", ErrNotSupported, why)
	}
	out, err := f.callSealed(ctx, "statvfs", ".", pyOnce("space", "_sv"))
	if err != nil {
		return 0, 0, err
	}
	if _, err := fmt.Sscan(out, &free, &total); err != nil {
		return 0, 0, fmt.Errorf("%w: statvfs %q", ErrProtocol, out)
	}
	return free, total, nil
}
