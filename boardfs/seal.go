package boardfs

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ftpbridge/ftpbridge/repl"
)

// call runs one helper call, holding the board, and maps its exceptions.
func (f *FS) call(ctx context.Context, op, p, code string) ([]byte, error) {
	if err := f.acquire(ctx); err != nil {
		return nil, fmt.Errorf("boardfs: %s %q: %w", op, p, err)
	}
	defer f.release()
	out, err := f.conn.Exec(ctx, code)
	if err != nil {
		return out, f.wrap(op, p, err)
	}
	return out, nil
}

// callSealed runs a helper call whose one line of output ends with "~"
// and its CRC-32 (the _p helper), so that a size or a hash damaged on the
// line is read again rather than believed. It returns the line without
// its seal.
func (f *FS) callSealed(ctx context.Context, op, p, code string) (string, error) {
	return again(f, op, p, func() (string, error) {
		out, err := f.call(ctx, op, p, code)
		if err != nil {
			return "", err
		}
		return f.unseal(string(out))
	})
}

// again asks the board once more when its answer arrived damaged
// (ErrCorrupt): a bit flipped on the line is no reason to fail, a second
// damaged answer is.
func again[T any](f *FS, op, p string, ask func() (T, error)) (T, error) {
	v, err := ask()
	if errors.Is(err, ErrCorrupt) {
		f.log.Warn("answer damaged on the line, asking again", "op", op, "path", p, "err", err)
		v, err = ask()
	}
	if errors.Is(err, ErrCorrupt) {
		err = fmt.Errorf("boardfs: %s %q: %w", op, p, err)
	}
	return v, err
}

func (f *FS) unseal(out string) (string, error) {
	line, seal, ok := strings.Cut(strings.TrimSpace(out), "~")
	if !ok || strings.Contains(seal, "~") {
		return "", fmt.Errorf("%w: reply %q without its checksum", ErrCorrupt, out)
	}
	if want, ok := f.d.seal(line); ok && seal != want {
		return "", fmt.Errorf("%w: reply %q, its checksum should be %s", ErrCorrupt, out, want)
	}
	return line, nil
}

// enotemptyHost is ENOTEMPTY on ports built with their host's errno
// numbers instead of MicroPython's (the unix port on macOS and the BSDs).
const enotemptyHost = 66

// wrap says which operation on which path failed, and adds boardfs's
// errors to the board's exceptions that mean them.
func (f *FS) wrap(op, p string, err error) error {
	var pe *repl.PyError
	if errors.As(err, &pe) {
		switch pe.Errno {
		case repl.ENOTEMPTY, enotemptyHost:
			err = fmt.Errorf("%w: %w", ErrNotEmpty, err)
		case repl.ENODEV, repl.EINVAL, repl.ENAMETOOLONG: // ENODEV: no such mount
			err = fmt.Errorf("%w: %w", ErrBadName, err)
		case repl.ENOSPC:
			err = fmt.Errorf("%w: %w", ErrNoSpace, err)
		}
	}
	return fmt.Errorf("boardfs: %s %q: %w", op, p, err)
}

// finish reads the rest of a run's reply; a Python exception wins over the
// local error that made us stop, since it says why.
func (f *FS) finish(ctx context.Context, run *repl.Run, op, p string, local error) error {
	_, err := run.Wait(ctx)
	if err != nil {
		return f.wrap(op, p, err)
	}
	if local != nil {
		return f.wrap(op, p, local)
	}
	return nil
}
