package boardfs

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strings"
)

// List returns the entries of directory dir, in one exec.
func (f *FS) List(ctx context.Context, dir string) ([]Entry, error) {
	if err := checkPath(dir); err != nil {
		return nil, err
	}
	call, err := f.d.listCall(dir)
	if err != nil {
		return nil, err
	}
	return again(f, "list", dir, func() ([]Entry, error) {
		out, err := f.call(ctx, "list", dir, call)
		if err != nil {
			return nil, err
		}
		return f.parseList(out)
	})
}

// parseList reads _l's listing: one line per entry (hex name, is-dir,
// size, mtime), then the lines' seal (the dialect's: CRC-32 or byte sum),
// checked before any line is parsed, so a name or size damaged on the line
// is ErrCorrupt, not a wrong entry.
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
			if want, ok := f.d.seal(lines...); ok && line != "~"+want {
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
		e, err := f.entry(name, fields)
		if err != nil {
			return nil, err
		}
		if !e.IsDir && isTempName(name) {
			continue // an upload in flight: not a file yet
		}
		entries = append(entries, e)
	}
	return entries, nil
}
