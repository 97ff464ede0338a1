package ftpdriver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"

	"github.com/ftpbridge/ftpbridge/boardfs"
)

// probeName is a name no board holds at its top level, asked for to learn
// what kind of "/" a board has.
const probeName = "/.ftpbridge-probe"

// rootMounts returns the board's mounts ("/flash", "/sd") when its "/" is
// MicroPython's VFS root, which holds nothing but them (a Pyboard's), and
// nil when "/" is an ordinary folder (an ESP32's). The board tells by its
// answer to a stat of a name that is not there: the VFS root raises ENODEV
// (no mount there, extmod/vfs.c), a filesystem ENOENT. The answer is kept
// for as long as the board keeps its connection: a replugged board is asked
// again.
func (m *mount) rootMounts(ctx context.Context, fsys *boardfs.FS) ([]string, error) {
	m.mu.Lock()
	if m.layoutOf == fsys {
		defer m.mu.Unlock()
		return m.mounts, nil
	}
	m.mu.Unlock()

	var mounts []string
	_, err := fsys.Stat(ctx, probeName)
	var pe *boardfs.PyError
	switch {
	case err == nil, errors.Is(err, fs.ErrNotExist):
		// An ordinary folder.
	case errors.As(err, &pe) && pe.Errno == errnoENODEV:
		entries, err := fsys.List(ctx, "/")
		if err != nil {
			return nil, fmt.Errorf("ftpdriver: listing the mounts in /: %w", err)
		}
		mounts = []string{}
		for _, e := range entries {
			if e.IsDir {
				mounts = append(mounts, path.Join("/", e.Name))
			}
		}
	default:
		return nil, fmt.Errorf("ftpdriver: asking what / holds: %w", err)
	}
	m.mu.Lock()
	m.layoutOf, m.mounts = fsys, mounts
	m.mu.Unlock()
	return mounts, nil
}
