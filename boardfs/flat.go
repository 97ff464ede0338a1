package boardfs

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
)

// The micro:bit's MicroPython 1.9.2 has a flat filesystem: os has only
// listdir, remove, size and uname; files open as 'r', 'rb', 'w' or 'wb' and
// cannot seek; str has no encode; there is no sys.stdin.buffer, hashlib or
// binascii, and about 9 KB of heap. Data therefore moves as text: hex lines
// out of the board, bytes literals into it.
const flatHelpers = `import os
def _h(s):
 return ''.join(['%02x'%c for c in bytes(s,'utf8')])
def _l():
 for n in os.listdir():
  print(_h(n),0,os.size(n),0)
 print('~')
def _t(n):
 try:
  print(0,os.size(n),0)
 except OSError:
  print('-')
def _x(n,o,k):
 f=open(n,'rb')
 try:
  while o>0:
   o-=len(f.read(min(o,64)))
  while k>0:
   b=f.read(min(k,48))
   if not b:
    break
   print(''.join(['%02x'%c for c in b]),sum(b));k-=len(b)
 finally:
  f.close()
def _cp(a,b):
 f=open(a,'rb');g=open(b,'wb')
 try:
  while 1:
   d=f.read(64)
   if not d:
    break
   g.write(d)
 finally:
  f.close();g.close()
`

// flatPiece is how much file data one exec carries into a micro:bit: as a
// bytes literal it is up to four times longer, and the board compiles it in
// its few KB of heap.
const flatPiece = 192

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
	out, err := f.call(ctx, "list", dir, "_l()")
	if err != nil {
		return nil, err
	}
	return f.parseList(out)
}

func (f *FS) flatStat(ctx context.Context, p string) (Entry, error) {
	if p == "/" {
		return Entry{Name: "/", IsDir: true}, nil
	}
	name, err := flatName(p)
	if err != nil {
		return Entry{}, err
	}
	out, err := f.call(ctx, "stat", p, "_t("+pyStr(name)+")")
	if err != nil {
		return Entry{}, err
	}
	if strings.TrimSpace(string(out)) == "-" {
		return Entry{}, fmt.Errorf("boardfs: stat %q: %w", p, fs.ErrNotExist)
	}
	e, err := f.entry(name, strings.TrimSpace(string(out)))
	e.ModTime = f.epoch // the micro:bit has no clock
	return e, err
}

func (f *FS) flatRead(ctx context.Context, p string, offset, n int64, w io.Writer) (int64, error) {
	name, err := flatName(p)
	if err != nil {
		return 0, err
	}
	out, err := f.call(ctx, "read", p, fmt.Sprintf("_x(%s,%d,%d)", pyStr(name), offset, n))
	if err != nil {
		return 0, err
	}
	// Each line is a piece in hex and the sum of its bytes: a bit flipped
	// in a hex digit still makes hex, but not the same sum.
	var total int64
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		data, err := flatLine(sc.Text())
		if err != nil {
			return total, fmt.Errorf("boardfs: read %q at %d: %w", p, offset+total, err)
		}
		if _, err := w.Write(data); err != nil {
			return total, err
		}
		total += int64(len(data))
	}
	return total, nil
}

// flatLine decodes one line of _x's output: hex, a space, the bytes' sum.
func flatLine(line string) ([]byte, error) {
	fields := strings.Fields(line)
	if len(fields) != 2 {
		return nil, fmt.Errorf("%w: a line of %d fields", ErrCorrupt, len(fields))
	}
	data, err := hex.DecodeString(fields[0])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	sum := 0
	for _, b := range data {
		sum += int(b)
	}
	if strconv.Itoa(sum) != fields[1] {
		return nil, fmt.Errorf("%w: %d bytes sum to %d, the board says %s", ErrCorrupt, len(data), sum, fields[1])
	}
	return data, nil
}

// flatVar is the board-side name of the file object an upload keeps open
// across execs: the board cannot append, so the file stays open until
// Commit or Abort.
func flatVar(p string) string {
	sum := sha256.Sum256([]byte(p))
	return "_u" + hex.EncodeToString(sum[:4])
}

func (f *FS) flatSend(ctx context.Context, p string, data []byte, started bool) error {
	name, err := flatName(p)
	if err != nil {
		return err
	}
	v := flatVar(p)
	if !started {
		if _, err := f.call(ctx, "upload", p, v+"=open("+pyStr(name)+",'wb')"); err != nil {
			return err
		}
	}
	for len(data) > 0 {
		n := min(len(data), flatPiece)
		if _, err := f.call(ctx, "upload", p, v+".write("+pyBytes(data[:n])+")"); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
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
	out, err := f.call(ctx, "check", p, "f=open("+pyStr(name)+",'rb');s=0\nwhile 1:\n b=f.read(64)\n if not b:\n  break\n s+=sum(b)\nf.close();print(s);del f,s,b")
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
	if _, err := f.call(ctx, "rename", from, "_cp("+pyStr(a)+","+pyStr(b)+")"); err != nil {
		return err
	}
	_, err = f.call(ctx, "rename", from, "os.remove("+pyStr(a)+")")
	return err
}

// pyBytes is data as a bytes literal of printable ASCII and \x escapes.
func pyBytes(data []byte) string {
	lit := pyStr(string(data))
	return strings.TrimSuffix(strings.TrimPrefix(lit, "str("), ",'utf8')")
}
