package boardfs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/ftpbridge/ftpbridge/repl"
)

// listPage is about how many bytes of entries one exec of a listing sends
// before it gives the board up, as a download's segment does: 4 KB, 0.36 s
// at 115200 baud.
const listPage = segment

// listSilence bounds how long a listing waits for the board's next byte.
// A listing moves bytes all the while, however long the directory: only
// silence means the board stopped, and no deadline cuts the whole.
const listSilence = 10 * time.Second

// maxListName bounds the length of a name in a listing's entry: under
// 1024, so the first byte of an entry is never 0x04, which ends a
// program's output in the raw REPL (names are at most 255 characters).
const maxListName = 1023

// errListLost: the board no longer holds a listing under way (it reset
// between two pages).
var errListLost = errors.New("boardfs: the board lost the listing under way")

// List returns the entries of directory dir, a page at a time: each page
// is one exec holding the board, and other operations get the board
// between pages, so a big directory neither locks others out nor runs
// into a deadline. Only ctx bounds the whole; each page is bounded by the
// wait for the board (Options.BusyWait) and by the silence on the line
// (listSilence). Upload temporaries are left out.
func (f *FS) List(ctx context.Context, dir string) ([]Entry, error) {
	if err := checkPath(dir); err != nil {
		return nil, err
	}
	key, err := rand.Int(rand.Reader, big.NewInt(1<<30))
	if err != nil {
		return nil, fmt.Errorf("boardfs: list %q: %w", dir, err)
	}
	entries, err := f.list(ctx, dir, int(key.Int64()))
	for errors.Is(err, errNoMemory) && f.smallerPages() {
		// The entries read are dropped with the board's iterator: the
		// listing starts over, in pages that leave less garbage.
		f.log.Info("a listing page ran the board out of memory: listing again in smaller pages", "path", dir, "page_bytes", f.listBudget.Load())
		entries, err = f.list(ctx, dir, int(key.Int64()))
	}
	if errors.Is(err, ErrCorrupt) || errors.Is(err, errListLost) || errors.Is(err, ErrBoardReset) {
		// A page cannot be asked for again: its entries are gone from
		// the board's iterator. The listing starts over, once, under the
		// same key, which drops the old iterator.
		f.log.Warn("listing damaged or lost on the way, listing again", "path", dir, "err", err)
		entries, err = f.list(ctx, dir, int(key.Int64()))
	}
	if err != nil {
		return nil, f.wrap("list", dir, err)
	}
	return entries, nil
}

func (f *FS) list(ctx context.Context, dir string, key int) ([]Entry, error) {
	var entries []Entry
	for first := true; ; first = false {
		page, more, err := f.listPage(ctx, dir, key, first)
		if err != nil {
			return nil, err
		}
		for _, e := range page {
			if !e.IsDir && isTempName(e.Name) {
				continue // an upload in flight: not a file yet
			}
			entries = append(entries, e)
		}
		if !more {
			return entries, nil
		}
	}
}

// errNoMemory marks a listing page the board had no memory for.
var errNoMemory = errors.New("boardfs: the board ran out of memory in a listing page")

// minListBudget is the smallest page a listing shrinks to: a few entries.
const minListBudget = 256

// smallerPages quarters the listing page, and reports false when it is
// already the smallest. Each page's garbage is the board's to collect
// before the next one, where a whole 4 KB page of stat results did not
// fit a small heap (the rig's ESP32 at 100 KB: 150 entries failed).
func (f *FS) smallerPages() bool {
	b := f.pageBudget()
	if b <= minListBudget {
		return false
	}
	f.listBudget.Store(max(minListBudget, b/4))
	return true
}

func (f *FS) pageBudget() int64 {
	if b := f.listBudget.Load(); b > 0 {
		return b
	}
	return listPage
}

// listPage asks the board for the next page of the listing under key (the
// first when first) and reads it, holding the board.
func (f *FS) listPage(ctx context.Context, dir string, key int, first bool) ([]Entry, bool, error) {
	call, check, err := f.d.listCall(dir, key, int(f.pageBudget()), first)
	if err != nil {
		return nil, false, err
	}
	if err := f.acquire(ctx); err != nil {
		return nil, false, err
	}
	defer f.release()
	// Starting may take raw mode and the helpers anew: bounded as a
	// segment is.
	sctx, cancel := context.WithTimeout(ctx, segmentTimeout)
	run, err := f.conn.Start(sctx, call)
	cancel()
	if err != nil {
		return nil, false, err
	}
	page, more, err := f.decodeListPage(runReader{run: run, ctx: ctx}, check)
	switch {
	case errors.Is(err, errListEnded):
		// The helper raised (the directory is missing, the board lost
		// the listing): the byte read was the end of its output.
		run.Unread([]byte{ctrlD})
		err = f.finishList(ctx, run, fmt.Errorf("%w: the listing ended early", ErrProtocol))
		var pe *repl.PyError
		if errors.As(err, &pe) && pe.Type == "KeyError" {
			err = fmt.Errorf("%w: %w", errListLost, err)
		}
		if errors.As(err, &pe) && pe.Type == "MemoryError" {
			err = fmt.Errorf("%w: %w", errNoMemory, err)
		}
		return nil, false, err
	case errors.Is(err, errLostFraming):
		// Parsing on could take names for the REPL's markers.
		run.Abandon(ctx)
		return nil, false, err
	case err != nil:
		return nil, false, f.finishList(ctx, run, err)
	}
	// Output after the end means a length was damaged into an early end.
	wctx, cancel := context.WithTimeout(ctx, listSilence)
	defer cancel()
	out, err := run.Wait(wctx)
	if err != nil {
		return nil, false, err
	}
	if len(out) > 0 {
		return nil, false, fmt.Errorf("%w: %d bytes after the listing's end", ErrCorrupt, len(out))
	}
	return page, more, nil
}

// finishList is finish for a listing: the rest of the reply within
// listSilence.
func (f *FS) finishList(ctx context.Context, run *repl.Run, local error) error {
	wctx, cancel := context.WithTimeout(ctx, listSilence)
	defer cancel()
	if _, err := run.Wait(wctx); err != nil {
		return err
	}
	return local
}

// errListEnded: the output ended (0x04) where an entry should start; the
// helper raised instead of going on.
var errListEnded = errors.New("boardfs: the listing ended before its end record")

// decodeListPage reads one page of a listing as _l writes it (py/meta.py,
// py/microbit.py): entries of a 2-byte name length (1 to maxListName), the
// name, a byte that is 1 for a directory, a 4-byte size and a 4-byte
// mtime, all big endian; then two zero bytes, a byte that is 1 when more
// pages follow, and the check (check: CRC-32, the sum of the bytes, or
// nothing) of the page's entries in 4 bytes. The check is compared before
// an entry is returned, so a name or size damaged on the line is
// ErrCorrupt, never a wrong entry.
func (f *FS) decodeListPage(r io.Reader, check frameCheck) ([]Entry, bool, error) {
	var (
		page    bytes.Buffer
		entries []Entry
		hdr     [2]byte
		fields  [9]byte
	)
	for {
		if _, err := io.ReadFull(r, hdr[:1]); err != nil {
			return nil, false, err
		}
		if hdr[0] == ctrlD {
			return nil, false, errListEnded
		}
		if _, err := io.ReadFull(r, hdr[1:]); err != nil {
			return nil, false, err
		}
		n := int(binary.BigEndian.Uint16(hdr[:]))
		if n == 0 {
			break
		}
		if n > maxListName {
			return nil, false, fmt.Errorf("%w: a name of %d bytes in a listing", errLostFraming, n)
		}
		name := make([]byte, n)
		if _, err := io.ReadFull(r, name); err != nil {
			return nil, false, err
		}
		if _, err := io.ReadFull(r, fields[:]); err != nil {
			return nil, false, err
		}
		page.Write(hdr[:])
		page.Write(name)
		page.Write(fields[:])
		entries = append(entries, Entry{
			Name:    string(name),
			IsDir:   fields[0] == 1,
			Size:    int64(binary.BigEndian.Uint32(fields[1:5])),
			ModTime: f.mtime(binary.BigEndian.Uint32(fields[5:9])),
		})
	}
	var end [5]byte
	if _, err := io.ReadFull(r, end[:]); err != nil {
		return nil, false, err
	}
	if want := binary.BigEndian.Uint32(end[1:]); check != checkNone && check.of(page.Bytes()) != want {
		return nil, false, fmt.Errorf("%w: a listing page of %d entries does not match its check", ErrCorrupt, len(entries))
	}
	if end[0] > 1 {
		return nil, false, fmt.Errorf("%w: a listing page ends with %d", ErrProtocol, end[0])
	}
	return entries, end[0] == 1, nil
}

// mtime reads an entry's 4-byte mtime: seconds from the board's epoch,
// signed on boards whose epoch is 2000 (a FAT date before it is
// negative), unsigned on those whose epoch is 1970 (dates up to 2106).
func (f *FS) mtime(v uint32) time.Time {
	if f.epoch.Year() >= 2000 {
		return f.epoch.Add(time.Duration(int32(v)) * time.Second)
	}
	return f.epoch.Add(time.Duration(v) * time.Second)
}

// runReader reads a run's output under ctx rather than the one the run
// started with (a page's start is bounded, the listing is not); repl
// bounds each read by the silence on the line, not the whole.
type runReader struct {
	run *repl.Run
	ctx context.Context
}

func (r runReader) Read(p []byte) (int, error) { return r.run.ReadContext(r.ctx, p) }
