package boardfs

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/ftpbridge/ftpbridge/repl"
)

// List returns the entries of directory dir, in one exec.
func (f *FS) List(ctx context.Context, dir string) ([]Entry, error) {
	if err := checkPath(dir); err != nil {
		return nil, err
	}
	if f.flat {
		return f.flatList(ctx, dir)
	}
	return again(f, "list", dir, func() ([]Entry, error) {
		out, err := f.call(ctx, "list", dir, pyCall("_l", dir))
		if err != nil {
			return nil, err
		}
		return f.parseList(out)
	})
}

// parseList reads the helpers' listing: hex name, is-dir, size, mtime.
// parseList reads _l's lines, which end with the CRC-32 of all of them:
// a name or size damaged on the line is ErrCorrupt, not a wrong entry. The
// checksum is checked before any line is parsed.
func (f *FS) parseList(out []byte) ([]Entry, error) {
	var lines []string
	sealed := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case line == "":
		case sealed:
			return nil, fmt.Errorf("%w: listing goes on after its checksum", ErrCorrupt)
		case strings.HasPrefix(line, "~"):
			if want, ok := f.seal(lines...); ok && line != "~"+want {
				return nil, fmt.Errorf("%w: listing checksum %q, its lines sum to %q", ErrCorrupt, line, want)
			}
			sealed = true
		default:
			lines = append(lines, line)
		}
	}
	if !sealed {
		return nil, fmt.Errorf("%w: listing without its checksum", ErrCorrupt)
	}
	var entries []Entry
	for _, line := range lines {
		hexName, fields, ok := strings.Cut(line, " ")
		if !ok {
			return nil, fmt.Errorf("%w: listing line %q", ErrProtocol, line)
		}
		name, err := unhex(hexName)
		if err != nil {
			return nil, err
		}
		if isUploadTemp(name) {
			continue // an upload in flight: not a file yet
		}
		e, err := f.entry(name, fields)
		if err != nil {
			return nil, err
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// Stat describes one path; fs.ErrNotExist when it is absent.
func (f *FS) Stat(ctx context.Context, p string) (Entry, error) {
	if err := checkPath(p); err != nil {
		return Entry{}, err
	}
	if f.flat {
		return f.flatStat(ctx, p)
	}
	out, err := f.callSealed(ctx, "stat", p, pyCall("_p", pyExpr(pyCall("_t", p))))
	if err != nil {
		return Entry{}, err
	}
	return f.entry(path.Base(p), out)
}

// Mkdir makes a directory.
func (f *FS) Mkdir(ctx context.Context, p string) error {
	if err := checkPath(p); err != nil {
		return err
	}
	if f.flat {
		return fmt.Errorf("boardfs: mkdir %q: %w (no directories)", p, ErrNotSupported)
	}
	_, err := f.call(ctx, "mkdir", p, pyCall("os.mkdir", p))
	return err
}

// Remove removes a file.
func (f *FS) Remove(ctx context.Context, p string) error {
	if err := checkPath(p); err != nil {
		return err
	}
	f.forget(p)
	target := p
	if f.flat {
		name, err := flatName(p)
		if err != nil {
			return err
		}
		target = name
	}
	_, err := f.call(ctx, "remove", p, pyCall("os.remove", target))
	if f.flat && err != nil {
		// The micro:bit says "file not found" without an errno.
		if _, serr := f.flatStat(ctx, p); errors.Is(serr, fs.ErrNotExist) {
			return fmt.Errorf("boardfs: remove %q: %w", p, fs.ErrNotExist)
		}
	}
	return err
}

// RemoveDir removes an empty directory; ErrNotEmpty when it is not.
func (f *FS) RemoveDir(ctx context.Context, p string) error {
	if err := checkPath(p); err != nil {
		return err
	}
	if f.flat {
		return fmt.Errorf("boardfs: rmdir %q: %w (no directories)", p, ErrNotSupported)
	}
	_, err := f.call(ctx, "rmdir", p, pyCall("os.rmdir", p))
	return err
}

// Rename moves from to to, replacing an existing file at to. A file moved
// between two mounts (a Pyboard's /flash and /sd), which the board refuses
// to rename, is copied, checked and then deleted.
func (f *FS) Rename(ctx context.Context, from, to string) error {
	if err := checkPath(from); err != nil {
		return err
	}
	if err := checkPath(to); err != nil {
		return err
	}
	f.forget(from, to)
	if f.flat {
		return f.flatRename(ctx, from, to)
	}
	_, err := f.call(ctx, "rename", from, pyCall("_mv", from, to))
	var pe *repl.PyError
	if err != nil && errors.As(err, &pe) && (pe.Errno == 1 || pe.Errno == 18) && topDir(from) != topDir(to) {
		return f.moveAcross(ctx, from, to)
	}
	return err
}

func topDir(p string) string {
	first, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	return first
}

func (f *FS) moveAcross(ctx context.Context, from, to string) error {
	src, err := f.Stat(ctx, from)
	if err != nil {
		return err
	}
	if src.IsDir {
		return fmt.Errorf("boardfs: rename %q: %w (a directory across mounts)", from, ErrNotSupported)
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	tmp := path.Join(path.Dir(to), "."+path.Base(to)+"."+hex.EncodeToString(rnd[:])+".ftpbridge")
	if _, err := f.call(ctx, "copy", from, pyCall("_cp", from, tmp)); err != nil {
		f.Remove(context.WithoutCancel(ctx), tmp)
		return err
	}
	var want []byte
	if f.info.SHA256 {
		if want, err = f.Hash(ctx, from); err != nil {
			return err
		}
	}
	if err := f.verify(ctx, tmp, src.Size, want); err != nil {
		f.Remove(context.WithoutCancel(ctx), tmp)
		return err
	}
	if err := f.Rename(ctx, tmp, to); err != nil {
		return err
	}
	return f.Remove(ctx, from)
}

// Hash returns the SHA-256 of a file, computed on the board.
func (f *FS) Hash(ctx context.Context, p string) ([]byte, error) {
	if err := checkPath(p); err != nil {
		return nil, err
	}
	if !f.info.SHA256 {
		return nil, fmt.Errorf("boardfs: hash %q: %w (no hashlib.sha256)", p, ErrNotSupported)
	}
	out, err := f.callSealed(ctx, "hash", p, pyCall("_sha", p))
	if err != nil {
		return nil, err
	}
	sum, err := hex.DecodeString(out)
	if err != nil || len(sum) != sha256.Size {
		return nil, fmt.Errorf("%w: hash %q", ErrProtocol, out)
	}
	return sum, nil
}

// Space returns the free and total bytes of the filesystem the board works
// in (its current directory: / on most boards, /flash on a Pyboard).
func (f *FS) Space(ctx context.Context) (free, total int64, err error) {
	if f.flat {
		return 0, 0, fmt.Errorf("boardfs: free space: %w (no statvfs)", ErrNotSupported)
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
