package boardfs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"strconv"
	"strings"

	"github.com/ftpbridge/ftpbridge/repl"
)

// Cache keeps copies of the files an FS has moved, so that a download of a
// file that has not changed, or changed in part, moves only what changed.
// A copy is a hint: it is served only once the board's SHA-256 of the file
// matches it. Implementations are safe for concurrent use
// (filecache.Cache is one).
type Cache interface {
	Get(key string) ([]byte, bool)
	Put(key string, data []byte)
	Delete(key string)
}

// deltaBlock is the span of one CRC-32 in a file's block list: 8 hex
// digits a KB, so a 96 KB file's list is under 800 bytes on the wire.
const deltaBlock = 1024

// maxDeltaRanges is the most changed ranges a cached download fetches one
// exec each; more, and it reads the file whole.
const maxDeltaRanges = 16

// maxCached is the largest file kept: a copy is assembled in memory.
const maxCached = 4 << 20

// canDelta reports whether downloads may use the cache: the board must
// hash (SHA-256) and checksum (CRC-32) in C.
func (f *FS) canDelta() bool {
	return f.opts.Cache != nil && f.info.SHA256 && f.info.Binascii && f.d.lacks(featDelta) == ""
}

// cacheKey names p on this board in the cache: by the board's unique id,
// else by Options.Name, else by its platform. Boards that share a key cost
// each other only speed, since copies are checked.
func (f *FS) cacheKey(p string) string {
	id := f.info.UniqueID
	if id == "" {
		id = f.opts.Name
	}
	if id == "" {
		id = f.info.Platform
	}
	return id + "\x00" + p
}

// forget drops the cached copies of paths that changed.
func (f *FS) forget(paths ...string) {
	if f.opts.Cache == nil {
		return
	}
	for _, p := range paths {
		f.opts.Cache.Delete(f.cacheKey(p))
	}
}

// keep stores what the board now holds at p.
func (f *FS) keep(p string, data []byte) {
	if f.opts.Cache != nil && len(data) <= maxCached {
		f.opts.Cache.Put(f.cacheKey(p), data)
	}
}

// blockSums is the board's account of a file: its size, SHA-256 and the
// CRC-32 of each deltaBlock.
type blockSums struct {
	size int64
	sha  []byte // nil when not asked for
	crcs []uint32
}

// blockSums asks the board for p's block sums, with its SHA-256 when
// withSHA (a download must prove what it assembles; an upload's Commit
// hashes the new file anyway).
func (f *FS) blockSums(ctx context.Context, p string, withSHA bool) (blockSums, error) {
	out, err := f.call(ctx, "sums", p, pyCall("_bs", p, deltaBlock, withSHA))
	if err != nil {
		return blockSums{}, err
	}
	return parseBlockSums(out)
}

func parseBlockSums(out []byte) (blockSums, error) {
	var s blockSums
	fields := strings.Fields(string(out))
	if len(fields) == 2 {
		fields = append([]string{""}, fields...) // an empty file: no blocks
	}
	if len(fields) != 3 {
		return s, fmt.Errorf("%w: block sums of %d fields", ErrProtocol, len(fields))
	}
	size, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		return s, fmt.Errorf("%w: block sums: size %q", ErrProtocol, fields[1])
	}
	var sha []byte
	if fields[2] != "-" {
		sha, err = hex.DecodeString(fields[2])
		if err != nil || len(sha) != sha256.Size {
			return s, fmt.Errorf("%w: block sums: SHA-256 %q", ErrProtocol, fields[2])
		}
	}
	blocks := (size + deltaBlock - 1) / deltaBlock
	if int64(len(fields[0])) != 8*blocks {
		return s, fmt.Errorf("%w: block sums: %d hex digits for %d blocks", ErrProtocol, len(fields[0]), blocks)
	}
	s = blockSums{size: size, sha: sha, crcs: make([]uint32, blocks)}
	for i := range s.crcs {
		v, err := strconv.ParseUint(fields[0][8*i:8*i+8], 16, 32)
		if err != nil {
			return s, fmt.Errorf("%w: block sums: %q", ErrProtocol, fields[0][8*i:8*i+8])
		}
		s.crcs[i] = uint32(v)
	}
	return s, nil
}

// openCached serves p from the cached copy, moving only the blocks whose
// CRC-32 on the board differs from the copy's, and returns the file once
// its SHA-256 is the board's. ok is false when the cache cannot serve it
// (no copy, too many changes to win, a mismatch): the caller then reads
// the whole file. An error is the board saying the file cannot be read.
func (f *FS) openCached(ctx context.Context, p string) (data []byte, ok bool, err error) {
	old, found := f.opts.Cache.Get(f.cacheKey(p))
	if !found {
		return nil, false, nil
	}
	sums, err := f.blockSums(ctx, p, true)
	switch {
	case err != nil && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) || ctx.Err() != nil || errors.Is(err, repl.ErrDisconnected)):
		return nil, false, err
	case err != nil:
		f.log.Debug("block sums failed: reading the whole file", "path", p, "err", err)
		return nil, false, nil
	case sums.size > maxCached:
		return nil, false, nil
	}
	if sum := sha256.Sum256(old); bytes.Equal(sum[:], sums.sha) && int64(len(old)) == sums.size {
		return old, true, nil
	}
	data = make([]byte, sums.size)
	var missing [][2]int64 // ranges to fetch: offset, length
	for i, crc := range sums.crcs {
		lo := int64(i) * deltaBlock
		hi := min(lo+deltaBlock, sums.size)
		if hi <= int64(len(old)) && crc32.ChecksumIEEE(old[lo:hi]) == crc {
			copy(data[lo:hi], old[lo:hi])
			continue
		}
		if n := len(missing); n > 0 && missing[n-1][0]+missing[n-1][1] == lo {
			missing[n-1][1] += hi - lo
		} else {
			missing = append(missing, [2]int64{lo, hi - lo})
		}
	}
	var changed int64
	for _, m := range missing {
		changed += m[1]
	}
	if len(missing) > maxDeltaRanges || changed > sums.size/2 {
		// An exec a range: scattered changes cost more than the whole
		// file, and would spend the time the whole read needs (Open's
		// context bounds both): 150 changed blocks of a 300 KB file
		// ran a 12 s open out, and every try after it.
		return nil, false, nil
	}
	z := f.compressDownloads()
	for _, m := range missing {
		var buf bytes.Buffer
		var got int64
		got, z, err = f.readRange(ctx, p, m[0], m[1], &buf, z)
		if err != nil || got != m[1] {
			f.log.Debug("fetching changed blocks failed: reading the whole file", "path", p, "err", err)
			return nil, false, nil
		}
		copy(data[m[0]:], buf.Bytes())
	}
	if sum := sha256.Sum256(data); !bytes.Equal(sum[:], sums.sha) {
		f.log.Debug("the cached copy and the changed blocks do not make the board's file: reading it whole", "path", p)
		return nil, false, nil
	}
	f.keep(p, data)
	return data, true, nil
}

// oldSums asks the board for the sums of the file an upload replaces; nil
// when there is none, or the board cannot tell (then every segment is
// sent).
func (f *FS) oldSums(ctx context.Context, u *Upload) *blockSums {
	// Without SHA-256 at Commit, a CRC that matches by chance would stand
	// unchecked.
	if u.appending || !f.info.SHA256 || !f.info.Binascii || f.d.lacks(featDelta) != "" {
		return nil
	}
	sums, err := f.blockSums(ctx, u.p, false)
	if err != nil {
		return nil
	}
	return &sums
}

// matches reports whether data, at offset at of the new file, is what the
// old file holds there: every block's length and CRC-32 the same. The
// upload's SHA-256 check at Commit stands behind a CRC that matches by
// chance, or an old file changed meanwhile.
func (s *blockSums) matches(at int64, data []byte) bool {
	if at%deltaBlock != 0 || at+int64(len(data)) > s.size {
		return false
	}
	for off := 0; off < len(data); off += deltaBlock {
		i := (at + int64(off)) / deltaBlock
		end := min(off+deltaBlock, len(data))
		blockEnd := min((i+1)*deltaBlock, s.size)
		if int64(end-off) != blockEnd-i*deltaBlock || crc32.ChecksumIEEE(data[off:end]) != s.crcs[i] {
			return false
		}
	}
	return true
}

// copyOld appends the old file's next n bytes to the upload's temporary
// file on the board, instead of sending them.
func (f *FS) copyOld(ctx context.Context, u *Upload, n int) error {
	_, err := f.call(ctx, "upload", u.p, pyCall("_ca", u.p, u.tmp, u.written, n, u.started))
	return err
}
