// Package boardfs is a MicroPython board's filesystem, reached through the
// raw REPL: list, stat, read, write, mkdir, remove, rename, hash and free
// space. It sends short calls to helper functions it defines on the board,
// and moves file contents as framed raw bytes. It knows nothing of FTP.
//
// Boards with a modern os module (ilistdir, stat, statvfs) and binary
// stdin/stdout move raw bytes through them; the micro:bit's flat
// filesystem is handled in flat.go, its bytes moving through microbit.uart.
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
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ftpbridge/ftpbridge/repl"
)

// Errors beyond io/fs's ErrNotExist, ErrExist and ErrPermission.
var (
	ErrBadName      = errors.New("boardfs: name the board cannot hold")
	ErrNotEmpty     = errors.New("boardfs: directory not empty")
	ErrNotSupported = errors.New("boardfs: not supported by this board")
	ErrProtocol     = errors.New("boardfs: unexpected reply from the board")
	ErrCorrupt      = errors.New("boardfs: data changed on the way")
	ErrBusy         = errors.New("boardfs: board busy")
	ErrNoSpace      = errors.New("boardfs: no space left on the board")
	// ErrNotConnected: the board is unplugged; a Link is waiting for it
	// to come back.
	ErrNotConnected = errors.New("boardfs: board not connected")
)

// chunk is the most file data a helper holds in board memory at once. Writes
// also keep two chunks in flight at most: 256 bytes, the ESP8266's UART
// receive buffer, so nothing is lost while the board writes to flash.
const chunk = 128

// ack is what the upload helper sends for each chunk it stored; nak says a
// write failed (the helper then reads and drops the rest of the data, so
// none of it reaches the REPL as code).
const (
	ack = 0x06
	nak = 0x15
)

// helpers are defined on the board once per interpreter (repl's Prepare).
// No f-strings and nothing newer than MicroPython 1.9 in the syntax.
// _mv removes an existing target only when the rename failed with EEXIST
// (FAT refuses to rename over a file; littlefs and POSIX replace it), so a
// rename that fails for another reason never costs the target.
const helpers = `import os,sys
def _h(s):
 return ''.join(['%02x'%c for c in s.encode()])
def _j(d,n):
 return d+n if d[-1:]=='/' else d+'/'+n
def _t(p):
 s=os.stat(p)
 return '%d %d %d'%(1 if s[0]&0x4000 else 0,s[6],s[8])
def _l(d):
 c=0
 for e in os.ilistdir(d):
  try:
   s=_h(e[0])+' '+_t(_j(d,e[0]))
  except OSError:
   s=_h(e[0])+' %d 0 0'%(1 if e[1]==0x4000 else 0)
  print(s);c=_c(s.encode(),c)
 print('~%08x'%(c&0xffffffff))
try:
 from binascii import crc32 as _c
except ImportError:
 try:
  from ubinascii import crc32 as _c
 except ImportError:
  _c=lambda b,c=0:0
def _r(p,o,n):
 f=open(p,'rb')
 try:
  f.seek(o);m=memoryview(bytearray(1000));w=sys.stdout.buffer.write;t=0
  while n:
   k=f.readinto(m[:min(n,1000)])
   if not k:
    break
   w(bytes((k>>8,k&255)));w(m[:k]);w(_c(m[:k]).to_bytes(4,'big'));n-=k;t+=k
  w(b'\0\0');w(t.to_bytes(4,'big'))
 finally:
  f.close()
def _w(p,n,a):
 import micropython
 f=open(p,'ab' if a else 'wb');e=None
 m=memoryview(bytearray(128));r=sys.stdin.buffer.readinto;w=sys.stdout.buffer.write
 micropython.kbd_intr(-1)
 try:
  w(b'\x06')
  while n:
   k=min(n,128);g=0
   while g<k:
    g+=r(m[g:k])
   n-=k
   if e is None:
    try:
     f.write(m[:k])
    except OSError as x:
     e=x
   w(b'\x06' if e is None else b'\x15')
 finally:
  micropython.kbd_intr(3);f.close()
 if e:
  raise e
def _mv(a,b):
 try:
  os.rename(a,b)
 except OSError as e:
  if e.args[0]!=17:
   raise
  os.remove(b);os.rename(a,b)
def _cp(a,b):
 m=memoryview(bytearray(512))
 f=open(a,'rb');g=open(b,'wb')
 try:
  while 1:
   k=f.readinto(m)
   if not k:
    break
   g.write(m[:k])
 finally:
  f.close();g.close()
def _sha(p):
 import hashlib
 h=hashlib.sha256();m=memoryview(bytearray(512))
 f=open(p,'rb')
 try:
  while 1:
   k=f.readinto(m)
   if not k:
    break
   h.update(m[:k])
 finally:
  f.close()
 _p(''.join(['%02x'%c for c in h.digest()]))
def _p(s):
 print(s+'~%08x'%(_c(s.encode())&0xffffffff))
`

// Entry is a file or directory on the board.
type Entry struct {
	Name    string
	IsDir   bool
	Size    int64
	ModTime time.Time
}

// Options tune an FS. The zero value works.
type Options struct {
	Logger *slog.Logger
	// Clock, if set, is the time New gives the board when its clock is
	// more than a minute off (unset boards start at 2000-01-01), through
	// machine.RTC, in UTC: files written through the bridge then get true
	// times. Nil leaves the board's clock alone.
	Clock func() time.Time
	// Name tells this board's copies in the Cache from another's when the
	// board has no machine.unique_id (the port it is on, say).
	Name string
	// Cache, if set, keeps copies of the files moved, so that downloads
	// move only what changed since.
	Cache Cache
	// BusyWait is how long an operation waits for the board while other
	// operations hold it before it gives up with ErrBusy (default 5 s).
	BusyWait time.Duration
}

// FS is a board's filesystem. It is safe for concurrent use: operations
// take turns on the board, in the order they asked, and long transfers give
// the board up between segments.
type FS struct {
	conn  *repl.Conn
	info  repl.Info
	epoch time.Time
	opts  Options
	log   *slog.Logger
	board chan struct{} // holds a token while an operation uses the board
	flat  bool          // the micro:bit's filesystem: no directories, text only
}

// New detects what the board can do and installs the helpers. Make conn with
// repl.Options{Prepare: boardfs.Prepare} so a reset board gets them again.
func New(ctx context.Context, conn *repl.Conn, opts Options) (*FS, error) {
	info, err := conn.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("boardfs: %w", err)
	}
	if opts.BusyWait <= 0 {
		opts.BusyWait = 5 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &FS{conn: conn, info: info, epoch: time.Date(info.Epoch, 1, 1, 0, 0, 0, 0, time.UTC),
		opts: opts, log: log, board: make(chan struct{}, 1), flat: !info.StdinBuffer || !info.StdoutBuffer}
	if err := Prepare(ctx, conn); err != nil {
		return nil, err
	}
	if opts.Clock != nil {
		if err := f.setClock(ctx, opts.Clock()); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// acquire waits for the board, at most BusyWait. Waiters queue on the
// channel in arrival order.
func (f *FS) acquire(ctx context.Context) error {
	t := time.NewTimer(f.opts.BusyWait)
	defer t.Stop()
	select {
	case f.board <- struct{}{}:
		return nil
	case <-t.C:
		return fmt.Errorf("%w: another operation held it for %v", ErrBusy, f.opts.BusyWait)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *FS) release() { <-f.board }

// Prepare defines the helpers on the board; give it to repl.Options.Prepare
// so a reset board gets them again. repl asks for it after every entry to
// raw mode, most of them after an interrupted exchange (a client that
// aborts a download) on a board that still holds the helpers: _fb, set
// last, names the helpers' version, and a board that has it is left alone.
func Prepare(ctx context.Context, c *repl.Conn) error {
	// Boards without binary stdin (the micro:bit) get the small flat
	// helpers: the full set would not fit in their heap.
	out, err := c.Exec(ctx, "import sys\nprint(hasattr(sys,'stdin') and hasattr(sys.stdin,'buffer'))\ntry:\n import deflate\n print('deflate')\nexcept ImportError:\n pass\ntry:\n print(_fb)\nexcept NameError:\n pass")
	if err != nil {
		return fmt.Errorf("boardfs: install helpers: %w", err)
	}
	parts := []string{helpers + deltaHelpers}
	fields := strings.Fields(string(out))
	switch {
	case len(fields) == 0 || fields[0] != "True":
		// The micro:bit compiles in a few KB: a few functions at a time.
		parts = splitDefs(flatHelpers, 400)
	case slices.Contains(fields, "deflate"):
		parts[0] += zHelpers
	}
	version := fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(strings.Join(parts, ""))))
	if slices.Contains(fields, version) {
		return nil
	}
	for _, code := range parts {
		if _, err := c.Exec(ctx, code); err != nil {
			return fmt.Errorf("boardfs: install helpers: %w", err)
		}
	}
	if _, err := c.Exec(ctx, "_fb='"+version+"'"); err != nil {
		return fmt.Errorf("boardfs: install helpers: %w", err)
	}
	return nil
}

// splitDefs cuts code before top-level defs into parts of about max
// bytes (a part holds at least one def, however long).
func splitDefs(code string, max int) []string {
	var parts []string
	for len(code) > max {
		cut := strings.LastIndex(code[:max], "\ndef ")
		if cut <= 0 {
			cut = strings.Index(code[1:], "\ndef ") + 1
			if cut <= 0 {
				break
			}
		}
		parts = append(parts, code[:cut+1])
		code = code[cut+1:]
	}
	return append(parts, code)
}

// Stats returns the traffic of the conn underneath.
func (f *FS) Stats() repl.Stats { return f.conn.Stats() }

// Board says what the board is.
func (f *FS) Board() repl.Info { return f.info }

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
	if want, ok := f.seal(line); ok && seal != want {
		return "", fmt.Errorf("%w: reply %q, its checksum should be %s", ErrCorrupt, out, want)
	}
	return line, nil
}

// seal is the checksum a board puts after lines of a reply: the CRC-32 of
// their bytes in hex where it has binascii, their sum in decimal on the
// micro:bit. ok is false where the board sends none worth checking.
func (f *FS) seal(lines ...string) (seal string, ok bool) {
	switch {
	case f.info.Binascii:
		var c uint32
		for _, l := range lines {
			c = crc32.Update(c, crc32.IEEETable, []byte(l))
		}
		return fmt.Sprintf("%08x", c), true
	case f.flat:
		var sum int
		for _, l := range lines {
			for i := range len(l) {
				sum += int(l[i])
			}
		}
		return strconv.Itoa(sum), true
	}
	return "", false
}

func (f *FS) wrap(op, p string, err error) error {
	var pe *repl.PyError
	if errors.As(err, &pe) {
		switch pe.Errno {
		case 39, 66: // ENOTEMPTY (Linux numbering; some ports use 66)
			err = fmt.Errorf("%w: %w", ErrNotEmpty, err)
		case 19, 22, 36: // ENODEV (no such mount), EINVAL, ENAMETOOLONG
			err = fmt.Errorf("%w: %w", ErrBadName, err)
		case 28: // ENOSPC
			err = fmt.Errorf("%w: %w", ErrNoSpace, err)
		}
	}
	return fmt.Errorf("boardfs: %s %q: %w", op, p, err)
}

func (f *FS) entry(name, fields string) (Entry, error) {
	var isDir, size, mtime int64
	if _, err := fmt.Sscan(fields, &isDir, &size, &mtime); err != nil {
		return Entry{}, fmt.Errorf("%w: %q", ErrProtocol, fields)
	}
	return Entry{Name: name, IsDir: isDir == 1, Size: size, ModTime: f.epoch.Add(time.Duration(mtime) * time.Second)}, nil
}

// List returns the entries of directory dir, in one exec.
func (f *FS) List(ctx context.Context, dir string) ([]Entry, error) {
	if err := checkPath(dir); err != nil {
		return nil, err
	}
	if f.flat {
		return f.flatList(ctx, dir)
	}
	return again(f, "list", dir, func() ([]Entry, error) {
		out, err := f.call(ctx, "list", dir, "_l("+pyStr(dir)+")")
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
	out, err := f.callSealed(ctx, "stat", p, "_p(_t("+pyStr(p)+"))")
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
	_, err := f.call(ctx, "mkdir", p, "os.mkdir("+pyStr(p)+")")
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
	_, err := f.call(ctx, "remove", p, "os.remove("+pyStr(target)+")")
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
	_, err := f.call(ctx, "rmdir", p, "os.rmdir("+pyStr(p)+")")
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
	_, err := f.call(ctx, "rename", from, "_mv("+pyStr(from)+","+pyStr(to)+")")
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
	if _, err := f.call(ctx, "copy", from, "_cp("+pyStr(from)+","+pyStr(tmp)+")"); err != nil {
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
	out, err := f.callSealed(ctx, "hash", p, "_sha("+pyStr(p)+")")
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
	out, err := f.callSealed(ctx, "statvfs", ".", "s=os.statvfs(os.getcwd());_p('%d %d'%(s[0]*s[4],s[0]*s[2]))")
	if err != nil {
		return 0, 0, err
	}
	if _, err := fmt.Sscan(out, &free, &total); err != nil {
		return 0, 0, fmt.Errorf("%w: statvfs %q", ErrProtocol, out)
	}
	return free, total, nil
}

// readRange copies up to n bytes of p from offset to w, as framed raw bytes
// from one exec, holding the board. Each frame is a 2-byte length, the data
// and its CRC-32. With *deflate true the board deflates the segment, and
// *deflate is then set to whether that saved anything, so a reader stops
// asking once a file proves incompressible.
func (f *FS) readRange(ctx context.Context, p string, offset, n int64, w io.Writer, deflate *bool) (int64, error) {
	helper, arg, check := "_r(", p, checkNone
	switch {
	case f.flat:
		name, err := flatName(p)
		if err != nil {
			return 0, err
		}
		helper, arg, check, *deflate = "_x(", name, checkSum, false
	case *deflate:
		helper = "_z("
	case f.info.Binascii:
		check = checkCRC32
	}
	if err := f.acquire(ctx); err != nil {
		return 0, fmt.Errorf("boardfs: read %q: %w", p, err)
	}
	defer f.release()
	run, err := f.conn.Start(ctx, helper+pyStr(arg)+","+strconv.FormatInt(offset, 10)+","+strconv.FormatInt(n, 10)+")")
	if err != nil {
		return 0, f.wrap("read", p, err)
	}
	var total int64
	if helper == "_z(" {
		total, *deflate, err = decodeDeflated(run, w, offset, n)
	} else {
		total, err = decodeFrames(run, w, check, offset)
	}
	switch {
	case errors.Is(err, errNoFrames):
		// The helper failed before its first frame (the file is missing,
		// say): the byte read was the end of its output.
		run.Unread([]byte{ctrlD})
		return 0, f.finish(ctx, run, "read", p, fmt.Errorf("%w: no data", ErrProtocol))
	case errors.Is(err, errLostFraming):
		// Parsing on could take file bytes for the REPL's markers.
		run.Abandon(ctx)
		return total, fmt.Errorf("boardfs: read %q: %w", p, err)
	case err != nil:
		return total, f.finish(ctx, run, "read", p, err)
	}
	// Output after the end frame means a frame's length was damaged into
	// an early end: what was read is not the segment.
	out, err := run.Wait(ctx)
	if err != nil {
		return total, f.wrap("read", p, err)
	}
	if len(out) > 0 {
		return total, fmt.Errorf("boardfs: read %q: %w: %d bytes after the end frame", p, ErrCorrupt, len(out))
	}
	return total, nil
}

// maxFrame is the most data one download frame carries (the helper's
// buffer on the board). Under 1024, a frame's length never starts with
// 0x04, the byte that ends the helper's output.
const maxFrame = 1000

// segment is how much one exec of a transfer moves before the board is
// given up for other operations: 4 KB is 0.36 s at 115200 baud, so a listing
// behind three downloads waits about a second, while the exec overhead (a
// few ms a segment) keeps transfers above 0.95 of the line rate.
const segment = 4 * 1024

// segmentTimeout bounds one segment's exec (0.4 s at 115200 baud, 4 s at
// 9600); a transfer's own context (from Open or Create) may be short-lived,
// the transfer is not.
const segmentTimeout = 30 * time.Second

// Open returns a reader of p from offset (for REST). It reads the file one
// segment per exec, giving the board up between segments. ctx bounds the
// first segment only; Close ends the transfer.
func (f *FS) Open(ctx context.Context, p string, offset int64) (io.ReadCloser, error) {
	if err := checkPath(p); err != nil {
		return nil, err
	}
	if offset == 0 && f.canDelta() {
		data, ok, err := f.openCached(ctx, p)
		if err != nil {
			return nil, err
		}
		if ok {
			return io.NopCloser(bytes.NewReader(data)), nil
		}
	}
	r := &reader{f: f, p: p, off: offset, deflate: f.compressDownloads()}
	if offset == 0 && f.canDelta() {
		r.copy = new(bytes.Buffer)
	}
	r.ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	// Fetch the first segment now, so a missing file fails here.
	if err := r.fetch(ctx); err != nil {
		r.cancel()
		return nil, err
	}
	return r, nil
}

type reader struct {
	f       *FS
	deflate bool          // segments come down deflated, until one does not shrink
	tried   bool          // a segment has come: deflate says whether it shrank
	copy    *bytes.Buffer // the whole file so far, for the cache; nil: not kept
	p       string
	off     int64
	buf     bytes.Buffer
	eof     bool
	ctx     context.Context
	cancel  context.CancelFunc
}

// fetch reads the next segment. A segment that arrives damaged (a flipped
// bit, a lost byte) or is cut short by a board reset is read once more; a second failure ends the transfer,
// so a client never gets a wrong file reported complete.
func (r *reader) fetch(ctx context.Context) error {
	var seg bytes.Buffer
	var n int64
	var err error
	want := r.segment() // before a segment turns deflate off
	for attempt := 0; attempt < 2; attempt++ {
		seg.Reset()
		sctx, cancel := context.WithTimeout(ctx, segmentTimeout)
		n, err = r.f.readRange(sctx, r.p, r.off, r.segment(), &seg, &r.deflate)
		cancel()
		if err == nil || !(errors.Is(err, ErrCorrupt) || errors.Is(err, repl.ErrBoardReset)) {
			break
		}
		// A reset board comes back with its files: the next exec re-enters
		// raw mode and installs the helpers again, and the segment is read
		// from the same offset.
		r.f.log.Warn("segment lost on the line, reading it again", "path", r.p, "offset", r.off, "err", err)
	}
	if err != nil {
		return err
	}
	r.tried = true
	r.buf.Write(seg.Bytes())
	if r.copy != nil {
		r.copy.Write(seg.Bytes())
		if r.copy.Len() > maxCached {
			r.copy = nil
		}
	}
	r.off += n
	r.eof = n < want
	return nil
}

func (r *reader) Read(p []byte) (int, error) {
	if r.buf.Len() == 0 {
		if r.eof {
			return 0, r.end()
		}
		if err := r.fetch(r.ctx); err != nil {
			return 0, err
		}
		if r.buf.Len() == 0 {
			return 0, r.end()
		}
	}
	return r.buf.Read(p)
}

// end keeps the whole file in the cache, once, and says EOF.
func (r *reader) end() error {
	if r.copy != nil {
		r.f.keep(r.p, r.copy.Bytes())
		r.copy = nil
	}
	return io.EOF
}

func (r *reader) Close() error {
	r.cancel()
	return nil
}

// ReadFile copies p from offset to w.
func (f *FS) ReadFile(ctx context.Context, p string, offset int64, w io.Writer) (int64, error) {
	r, err := f.Open(ctx, p, offset)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	return io.Copy(w, r)
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

// uploadTemp matches the temporary names Create gives uploads in flight.
var uploadTemp = regexp.MustCompile(`^(\..*\.[0-9a-f]{8}\.ftpbridge|\.ftpbridge-[0-9a-f]{8})$`)

func isUploadTemp(name string) bool { return uploadTemp.MatchString(name) }

// Upload is a file being written. Create's uploads go to a temporary file
// beside the target and replace it only on Commit, so the old file stays
// whole until the new one is complete and checked.
type Upload struct {
	f         *FS
	p, tmp    string
	appending bool
	base      int64 // the target's size before an append
	buf       []byte
	written   int64 // bytes sent to the board
	hash      hash.Hash
	started   bool // the board has the temporary file
	done      bool
	err       error      // a failed segment: the upload cannot be committed
	copy      []byte     // what was sent, for the cache; nil: not kept
	byteSum   int64      // the sum of the bytes sent: the micro:bit's check
	probed    bool       // the board was asked for the old file's sums
	old       *blockSums // the target's sums before the upload; nil: none
}

// Create starts an upload that replaces p when committed.
func (f *FS) Create(ctx context.Context, p string) (*Upload, error) {
	if err := checkPath(p); err != nil {
		return nil, err
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	tmp := path.Join(path.Dir(p), "."+path.Base(p)+"."+hex.EncodeToString(rnd[:])+".ftpbridge")
	if f.flat {
		if _, err := flatName(p); err != nil {
			return nil, err
		}
		tmp = "/.ftpbridge-" + hex.EncodeToString(rnd[:])
	}
	u := &Upload{f: f, p: p, tmp: tmp, hash: sha256.New()}
	if f.canDelta() {
		u.copy = []byte{}
	}
	return u, nil
}

// Append starts an upload that adds to p (creating it if absent). Appends
// are written in place, so a failed one leaves part of its data.
func (f *FS) Append(ctx context.Context, p string) (*Upload, error) {
	if err := checkPath(p); err != nil {
		return nil, err
	}
	if f.flat {
		return nil, fmt.Errorf("boardfs: append %q: %w (files open only for writing anew)", p, ErrNotSupported)
	}
	u := &Upload{f: f, p: p, tmp: p, appending: true, started: true, hash: sha256.New()}
	e, err := f.Stat(ctx, p)
	switch {
	case err == nil:
		u.base = e.Size
	case errors.Is(err, fs.ErrNotExist):
	default:
		return nil, err
	}
	return u, nil
}

// Write buffers data and sends it to the board a segment at a time.
func (u *Upload) Write(p []byte) (int, error) {
	if u.done {
		return 0, errors.New("boardfs: write to a finished upload")
	}
	if u.err != nil {
		return 0, u.err
	}
	u.buf = append(u.buf, p...)
	for len(u.buf) >= segment {
		if err := u.flush(context.Background(), segment); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (u *Upload) flush(ctx context.Context, n int) error {
	sctx, cancel := context.WithTimeout(ctx, segmentTimeout)
	defer cancel()
	if n == segment && !u.probed {
		// A file of a segment or more may be one the board holds in part
		// already (an edited script uploaded again).
		u.probed = true
		u.old = u.f.oldSums(sctx, u)
	}
	var err error
	if u.old != nil && u.old.matches(u.written, u.buf[:n]) {
		err = u.f.copyOld(sctx, u, n)
	} else {
		err = u.f.send(sctx, u.tmp, u.buf[:n], u.started)
	}
	if err != nil {
		u.err = err
		return err
	}
	u.hash.Write(u.buf[:n])
	if u.f.flat {
		for _, c := range u.buf[:n] {
			u.byteSum += int64(c)
		}
	}
	if u.copy != nil {
		u.copy = append(u.copy, u.buf[:n]...)
		if len(u.copy) > maxCached {
			u.copy = nil
		}
	}
	u.written += int64(n)
	u.started = true
	u.buf = u.buf[n:]
	return nil
}

// Commit sends what is left, checks the file on the board (size, and
// SHA-256 where the board has hashlib) and puts it in place.
func (u *Upload) Commit(ctx context.Context) error {
	if u.done {
		return errors.New("boardfs: upload already finished")
	}
	if u.err == nil && (len(u.buf) > 0 || !u.started) {
		u.flush(ctx, len(u.buf))
	}
	err := u.err
	if err == nil && u.f.flat {
		err = u.f.flatClose(ctx, u.tmp)
	}
	if err == nil && !u.appending {
		err = u.f.verify(ctx, u.tmp, u.written, u.hash.Sum(nil))
		if err == nil && u.f.flat {
			err = u.f.flatVerify(ctx, u.tmp, u.byteSum)
		}
		if err == nil {
			err = u.f.Rename(ctx, u.tmp, u.p)
		}
	} else if err == nil {
		var e Entry
		if e, err = u.f.Stat(ctx, u.p); err == nil && e.Size != u.base+u.written {
			err = fmt.Errorf("%w: %d bytes on the board, want %d", ErrCorrupt, e.Size, u.base+u.written)
		}
	}
	if err != nil {
		u.Abort(ctx)
		return fmt.Errorf("boardfs: write %q: %w", u.p, err)
	}
	u.done = true
	if u.copy != nil {
		u.f.keep(u.p, u.copy)
	}
	if u.appending {
		u.f.forget(u.p)
	}
	return nil
}

// Abort gives up the upload and removes its temporary file; the target
// stays as it was.
func (u *Upload) Abort(ctx context.Context) error {
	if u.done {
		return nil
	}
	u.done = true
	if u.appending || !u.started {
		return nil
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if u.f.flat {
		u.f.flatClose(actx, u.tmp)
	}
	if err := u.f.Remove(actx, u.tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Close aborts the upload unless it was committed.
func (u *Upload) Close() error { return u.Abort(context.Background()) }

// WriteFile stores size bytes from r as p, atomically.
func (f *FS) WriteFile(ctx context.Context, p string, r io.Reader, size int64) error {
	u, err := f.Create(ctx, p)
	if err != nil {
		return err
	}
	defer u.Close()
	if n, err := io.Copy(u, io.LimitReader(r, size)); err != nil || n != size {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("boardfs: write %q: reading the data: %w", p, err)
	}
	return u.Commit(ctx)
}

// send appends data to the file at p (creating it unless appending), in
// one exec, holding the board.
func (f *FS) send(ctx context.Context, p string, data []byte, appending bool) error {
	if f.flat && !appending {
		if err := f.flatOpen(ctx, p); err != nil {
			return err
		}
	}
	if err := f.acquire(ctx); err != nil {
		return fmt.Errorf("boardfs: upload %q: %w", p, err)
	}
	defer f.release()
	mode := "0"
	if appending {
		mode = "1"
	}
	call, piece := "_w("+pyStr(p)+","+strconv.Itoa(len(data))+","+mode+")", chunk
	if f.flat {
		call, piece = "_wu("+flatVar(p)+","+strconv.Itoa(len(data))+")", flatChunk
	} else if z, wbits := f.deflated(data); z != nil {
		// The board inflates into the file: fewer bytes on the wire.
		call = "_wz(" + pyStr(p) + "," + strconv.Itoa(len(z)) + "," + mode + "," + strconv.Itoa(wbits) + ")"
		data = z
	}
	run, err := f.conn.Start(ctx, call)
	if err != nil {
		return f.wrap("upload", p, err)
	}
	// Not a byte of data goes out before the helper says it has the file
	// open and interrupts off: if open fails, data sent after the traceback
	// would reach the raw REPL as code.
	reply := make([]byte, 1)
	if _, err := io.ReadFull(run, reply); err != nil {
		return f.finish(ctx, run, "upload", p, err)
	}
	if reply[0] != ack {
		run.Unread(reply)
		return f.finish(ctx, run, "upload", p, fmt.Errorf("%w: %q instead of ready", ErrProtocol, reply))
	}
	size := len(data)
	sent, acked := 0, 0
	for acked*piece < size {
		// Keep at most two pieces in flight.
		for sent < size && sent-acked*piece < 2*piece {
			n := min(piece, size-sent)
			if _, err := run.Write(data[sent : sent+n]); err != nil {
				return f.finish(ctx, run, "upload", p, err)
			}
			sent += n
		}
		if _, err := io.ReadFull(run, reply); err != nil {
			return f.finish(ctx, run, "upload", p, err)
		}
		switch reply[0] {
		case ack, nak:
			acked++
		default:
			run.Unread(reply)
			return f.finish(ctx, run, "upload", p, fmt.Errorf("%w: %q instead of an acknowledgement", ErrProtocol, reply))
		}
	}
	return f.finish(ctx, run, "upload", p, nil)
}

func (f *FS) verify(ctx context.Context, tmp string, size int64, sum []byte) error {
	e, err := f.Stat(ctx, tmp)
	if err != nil {
		return err
	}
	if e.Size != size {
		return fmt.Errorf("%w: %d bytes on the board, %d sent", ErrCorrupt, e.Size, size)
	}
	if !f.info.SHA256 {
		return nil
	}
	got, err := f.Hash(ctx, tmp)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, sum) {
		return fmt.Errorf("%w: SHA-256 on the board %x, sent %x", ErrCorrupt, got, sum)
	}
	return nil
}
