// Package boardfs is a MicroPython board's filesystem, reached through the
// raw REPL: list, stat, read, write, mkdir, remove, rename, hash and free
// space. It sends short calls to helper functions it defines on the board,
// and moves file contents as framed raw bytes. It knows nothing of FTP.
//
// This first version covers boards with a modern os module (ilistdir, stat,
// statvfs) and binary stdin/stdout; the micro:bit's flat filesystem, the
// board lock with segmented transfers, and per-chunk checksums come next.
package boardfs

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
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
const helpers = `import os,sys
def _h(s):
 return ''.join(['%02x'%c for c in s.encode()])
def _j(d,n):
 return d+n if d[-1:]=='/' else d+'/'+n
def _t(p):
 s=os.stat(p)
 return '%d %d %d'%(1 if s[0]&0x4000 else 0,s[6],s[8])
def _l(d):
 for e in os.ilistdir(d):
  try:
   print(_h(e[0]),_t(_j(d,e[0])))
  except OSError:
   print(_h(e[0]),'%d 0 0'%(1 if e[1]==0x4000 else 0))
def _r(p,o,n):
 f=open(p,'rb')
 try:
  f.seek(o);m=memoryview(bytearray(512));w=sys.stdout.buffer.write
  while n:
   k=f.readinto(m[:min(n,512)])
   if not k:
    break
   w(bytes((k>>8,k&255)));w(m[:k]);n-=k
  w(b'\0\0')
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
 except OSError:
  os.remove(b);os.rename(a,b)
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
 print(''.join(['%02x'%c for c in h.digest()]))
`

// Entry is a file or directory on the board.
type Entry struct {
	Name    string
	IsDir   bool
	Size    int64
	ModTime time.Time
}

// FS is a board's filesystem. It is not safe for concurrent use yet.
type FS struct {
	conn  *repl.Conn
	info  repl.Info
	epoch time.Time
}

// New detects what the board can do and installs the helpers. Make conn with
// repl.Options{Prepare: boardfs.Prepare} so a reset board gets them again.
func New(ctx context.Context, conn *repl.Conn) (*FS, error) {
	info, err := conn.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("boardfs: %w", err)
	}
	if !info.StdinBuffer || !info.StdoutBuffer {
		return nil, fmt.Errorf("%w: no binary stdin/stdout (%s on %s)", ErrNotSupported, info.Implementation, info.Platform)
	}
	f := &FS{conn: conn, info: info, epoch: time.Date(info.Epoch, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := Prepare(ctx, conn); err != nil {
		return nil, err
	}
	return f, nil
}

// Prepare defines the helpers on the board; give it to repl.Options.Prepare
// so a reset board gets them again.
func Prepare(ctx context.Context, c *repl.Conn) error {
	if _, err := c.Exec(ctx, helpers); err != nil {
		return fmt.Errorf("boardfs: install helpers: %w", err)
	}
	return nil
}

// Stats returns the traffic of the conn underneath.
func (f *FS) Stats() repl.Stats { return f.conn.Stats() }

// Board says what the board is.
func (f *FS) Board() repl.Info { return f.info }

// call runs one helper call and maps the board's exceptions.
func (f *FS) call(ctx context.Context, op, p, code string) ([]byte, error) {
	out, err := f.conn.Exec(ctx, code)
	if err != nil {
		return out, f.wrap(op, p, err)
	}
	return out, nil
}

func (f *FS) wrap(op, p string, err error) error {
	var pe *repl.PyError
	if errors.As(err, &pe) {
		switch pe.Errno {
		case 39, 66: // ENOTEMPTY (Linux numbering; some ports use 66)
			err = fmt.Errorf("%w: %w", ErrNotEmpty, err)
		case 19, 22, 36: // ENODEV (no such mount), EINVAL, ENAMETOOLONG
			err = fmt.Errorf("%w: %w", ErrBadName, err)
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
	out, err := f.call(ctx, "list", dir, "_l("+pyStr(dir)+")")
	if err != nil {
		return nil, err
	}
	var entries []Entry
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			continue
		}
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
		entries = append(entries, e)
	}
	return entries, nil
}

// Stat describes one path; fs.ErrNotExist when it is absent.
func (f *FS) Stat(ctx context.Context, p string) (Entry, error) {
	if err := checkPath(p); err != nil {
		return Entry{}, err
	}
	out, err := f.call(ctx, "stat", p, "print(_t("+pyStr(p)+"))")
	if err != nil {
		return Entry{}, err
	}
	return f.entry(path.Base(p), strings.TrimSpace(string(out)))
}

// Mkdir makes a directory.
func (f *FS) Mkdir(ctx context.Context, p string) error {
	if err := checkPath(p); err != nil {
		return err
	}
	_, err := f.call(ctx, "mkdir", p, "os.mkdir("+pyStr(p)+")")
	return err
}

// Remove removes a file.
func (f *FS) Remove(ctx context.Context, p string) error {
	if err := checkPath(p); err != nil {
		return err
	}
	_, err := f.call(ctx, "remove", p, "os.remove("+pyStr(p)+")")
	return err
}

// RemoveDir removes an empty directory; ErrNotEmpty when it is not.
func (f *FS) RemoveDir(ctx context.Context, p string) error {
	if err := checkPath(p); err != nil {
		return err
	}
	_, err := f.call(ctx, "rmdir", p, "os.rmdir("+pyStr(p)+")")
	return err
}

// Rename moves from to to, replacing an existing file at to.
func (f *FS) Rename(ctx context.Context, from, to string) error {
	if err := checkPath(from); err != nil {
		return err
	}
	if err := checkPath(to); err != nil {
		return err
	}
	_, err := f.call(ctx, "rename", from, "_mv("+pyStr(from)+","+pyStr(to)+")")
	return err
}

// Hash returns the SHA-256 of a file, computed on the board.
func (f *FS) Hash(ctx context.Context, p string) ([]byte, error) {
	if err := checkPath(p); err != nil {
		return nil, err
	}
	if !f.info.SHA256 {
		return nil, fmt.Errorf("boardfs: hash %q: %w (no hashlib.sha256)", p, ErrNotSupported)
	}
	out, err := f.call(ctx, "hash", p, "_sha("+pyStr(p)+")")
	if err != nil {
		return nil, err
	}
	sum, err := hex.DecodeString(strings.TrimSpace(string(out)))
	if err != nil || len(sum) != sha256.Size {
		return nil, fmt.Errorf("%w: hash %q", ErrProtocol, out)
	}
	return sum, nil
}

// Space returns the free and total bytes of the filesystem holding dir.
func (f *FS) Space(ctx context.Context, dir string) (free, total int64, err error) {
	if err := checkPath(dir); err != nil {
		return 0, 0, err
	}
	out, err := f.call(ctx, "statvfs", dir, "s=os.statvfs("+pyStr(dir)+");print(s[0]*s[4],s[0]*s[2])")
	if err != nil {
		return 0, 0, err
	}
	if _, err := fmt.Sscan(string(out), &free, &total); err != nil {
		return 0, 0, fmt.Errorf("%w: statvfs %q", ErrProtocol, out)
	}
	return free, total, nil
}

// ReadFile copies p from offset to w, as framed raw bytes from one exec.
func (f *FS) ReadFile(ctx context.Context, p string, offset int64, w io.Writer) (int64, error) {
	if err := checkPath(p); err != nil {
		return 0, err
	}
	run, err := f.conn.Start(ctx, "_r("+pyStr(p)+","+strconv.FormatInt(offset, 10)+",1<<62)")
	if err != nil {
		return 0, f.wrap("read", p, err)
	}
	var total int64
	var hdr [2]byte
	buf := make([]byte, 512)
	for {
		if _, err := io.ReadFull(run, hdr[:1]); err != nil {
			return total, f.finish(ctx, run, "read", p, err)
		}
		if hdr[0] == 0x04 && total == 0 {
			// The helper failed before its first frame (the file is
			// missing, say): this is the end of its output.
			run.Unread(hdr[:1])
			return total, f.finish(ctx, run, "read", p, fmt.Errorf("%w: no data", ErrProtocol))
		}
		if _, err := io.ReadFull(run, hdr[1:]); err != nil {
			return total, f.finish(ctx, run, "read", p, err)
		}
		n := int(hdr[0])<<8 | int(hdr[1])
		if n == 0 {
			break
		}
		if n > len(buf) {
			return total, f.finish(ctx, run, "read", p, fmt.Errorf("%w: frame of %d bytes", ErrProtocol, n))
		}
		if _, err := io.ReadFull(run, buf[:n]); err != nil {
			return total, f.finish(ctx, run, "read", p, err)
		}
		if _, err := w.Write(buf[:n]); err != nil {
			return total, f.finish(ctx, run, "read", p, err)
		}
		total += int64(n)
	}
	return total, f.finish(ctx, run, "read", p, nil)
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

// WriteFile stores size bytes from r as p, atomically: they go to a
// temporary file beside p, whose size and SHA-256 are checked on the board
// before it replaces p. A failure leaves p as it was.
func (f *FS) WriteFile(ctx context.Context, p string, r io.Reader, size int64) error {
	if err := checkPath(p); err != nil {
		return err
	}
	tmp := path.Join(path.Dir(p), "."+path.Base(p)+".ftpbridge-upload")
	sum, err := f.upload(ctx, tmp, r, size)
	if err == nil {
		err = f.verify(ctx, tmp, size, sum)
	}
	if err == nil {
		err = f.Rename(ctx, tmp, p)
	}
	if err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = f.Remove(cctx, tmp)
		return fmt.Errorf("boardfs: write %q: %w", p, err)
	}
	return nil
}

func (f *FS) upload(ctx context.Context, tmp string, r io.Reader, size int64) ([]byte, error) {
	run, err := f.conn.Start(ctx, "_w("+pyStr(tmp)+","+strconv.FormatInt(size, 10)+",0)")
	if err != nil {
		return nil, f.wrap("upload", tmp, err)
	}
	// Not a byte of data goes out before the helper says it has the file
	// open and interrupts off: if open fails, data sent after the traceback
	// would reach the raw REPL as code.
	reply := make([]byte, 1)
	if _, err := io.ReadFull(run, reply); err != nil {
		return nil, f.finish(ctx, run, "upload", tmp, err)
	}
	if reply[0] != ack {
		run.Unread(reply)
		return nil, f.finish(ctx, run, "upload", tmp, fmt.Errorf("%w: %q instead of ready", ErrProtocol, reply))
	}
	h := sha256.New()
	buf := make([]byte, chunk)
	var sent, acked int64
	var failed error
	for acked*chunk < size {
		// Keep at most two chunks in flight.
		for sent < size && sent-acked*chunk < 2*chunk {
			n := int(min(int64(chunk), size-sent))
			if _, err := io.ReadFull(r, buf[:n]); err != nil {
				// The board waits for size bytes: it gets them, and the
				// local failure is reported once it has them all.
				failed = fmt.Errorf("reading the upload: %w", err)
				clear(buf[:n])
			}
			h.Write(buf[:n])
			if _, err := run.Write(buf[:n]); err != nil {
				return nil, f.finish(ctx, run, "upload", tmp, err)
			}
			sent += int64(n)
		}
		if _, err := io.ReadFull(run, reply); err != nil {
			return nil, f.finish(ctx, run, "upload", tmp, err)
		}
		switch reply[0] {
		case ack, nak:
			acked++
		default:
			run.Unread(reply)
			return nil, f.finish(ctx, run, "upload", tmp, fmt.Errorf("%w: %q instead of an acknowledgement", ErrProtocol, reply))
		}
	}
	if err := f.finish(ctx, run, "upload", tmp, failed); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
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
