package repl

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Info describes a board, as it answers about itself.
type Info struct {
	Implementation string // e.g. "micropython 1.27.0"
	Platform       string // sys.platform: "esp32", "rp2", "microbit", "webassembly"...
	Machine        string // os.uname().machine where it exists
	UniqueID       string // machine.unique_id() in hex, where it exists
	MemFree        int    // gc.mem_free() after a collection
	RawPaste       bool   // raw-paste mode works
	StdinBuffer    bool   // sys.stdin.buffer exists (binary input)
	StdoutBuffer   bool   // sys.stdout.buffer exists (binary output)
	SHA256         bool   // hashlib.sha256 exists
	Binascii       bool   // binascii (or ubinascii) exists
	Deflate        bool   // the deflate module exists (it can decompress)
	Compress       bool   // deflate can also compress (a full-feature build)
	RTC            bool   // machine.RTC exists, so the clock can be set
	Epoch          int    // the year the board's clock counts from: 1970 or 2000
	Clock          int64  // time.time() when asked, in seconds since Epoch; 0: unknown
}

// String names the board in a few words, for greetings and logs:
// "ESP32 module with ESP32 (micropython 1.27.0)".
func (i Info) String() string {
	name := i.Machine
	if name == "" {
		name = i.Platform
	}
	if i.Implementation != "" {
		name += " (" + i.Implementation + ")"
	}
	return name
}

// infoCode runs on every board, the micro:bit's 1.9.2 with a few KB of heap
// included: no f-strings, nothing imported that may be missing unguarded.
const infoCode = `import sys,gc
gc.collect()
print('impl=%s %s'%(sys.implementation[0],'.'.join([str(x) for x in sys.implementation[1][:3]])))
print('platform='+sys.platform)
try:
 import os;print('machine='+os.uname().machine)
except:
 pass
try:
 import machine,ubinascii;print('id='+ubinascii.hexlify(machine.unique_id()).decode())
except:
 pass
try:
 print('stdin=%d'%hasattr(sys.stdin,'buffer'))
 print('stdout=%d'%hasattr(sys.stdout,'buffer'))
except:
 pass
for m in ('binascii','ubinascii','deflate'):
 try:
  __import__(m);print(m+'=1')
 except:
  pass
try:
 import hashlib;hashlib.sha256;print('sha256=1')
except:
 pass
try:
 import deflate,io;deflate.DeflateIO(io.BytesIO(),deflate.RAW).write(b'x');print('compress=1')
except:
 pass
try:
 import machine;machine.RTC;print('rtc=1')
except:
 pass
try:
 import time;print('epoch=%d'%time.gmtime(0)[0]);print('clock=%d'%time.time())
except:
 pass
gc.collect()
print('free=%d'%gc.mem_free())
`

// Info asks the board what it is and what it can do, in one exec.
func (c *Conn) Info(ctx context.Context) (Info, error) {
	out, err := c.Exec(ctx, infoCode)
	if err != nil {
		return Info{}, fmt.Errorf("repl: board info: %w", err)
	}
	info := Info{RawPaste: c.rawPaste > 0, Epoch: 2000}
	for _, line := range strings.Split(strings.ReplaceAll(string(out), "\r\n", "\n"), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch k {
		case "impl":
			info.Implementation = v
		case "platform":
			info.Platform = v
		case "machine":
			info.Machine = v
		case "id":
			info.UniqueID = v
		case "stdin":
			info.StdinBuffer = v == "1"
		case "stdout":
			info.StdoutBuffer = v == "1"
		case "binascii", "ubinascii":
			info.Binascii = true
		case "deflate":
			info.Deflate = true
		case "sha256":
			info.SHA256 = true
		case "compress":
			info.Compress = true
		case "rtc":
			info.RTC = true
		case "clock":
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				info.Clock = n
			}
		case "epoch":
			if n, err := strconv.Atoi(v); err == nil {
				info.Epoch = n
			}
		case "free":
			if n, err := strconv.Atoi(v); err == nil {
				info.MemFree = n
			}
		}
	}
	if info.Implementation == "" {
		return info, fmt.Errorf("%w: board info answered %q", ErrProtocol, out)
	}
	return info, nil
}
