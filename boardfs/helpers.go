package boardfs

import (
	"context"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"

	"github.com/ftpbridge/ftpbridge/repl"
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
