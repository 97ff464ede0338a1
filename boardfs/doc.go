// Package boardfs is a MicroPython board's filesystem, reached through the
// raw REPL: list, stat, read, write, mkdir, remove, rename, hash and free
// space. It defines small helper functions on the board, sends one call to
// them per exec, and moves file contents as framed raw bytes. It knows
// nothing of FTP.
//
// # Where things are
//
//   - fs.go: FS, New, Options, Entry and the errors.
//   - py/*.py: the Python that runs on the board, readable, one file per
//     concern, each function with its contract; python.go embeds it, and
//     minify.go (renaming locals in minify_rename.go) shrinks it for the
//     wire. quote.go's pyCall builds every call, quoting strings with pyStr.
//   - helpers.go: prepare, which installs the helpers after every entry to
//     raw mode unless the board holds them already, and has clock.go set
//     the board's clock again where a reset took it back.
//   - dialect.go: what differs between families of boards, chosen once in
//     New, and the dialect of boards with an os module; microbit.go: the
//     micro:bit's.
//   - lock.go: the board lock operations take turns on, which tells a
//     board that stopped answering (ErrSilent) from a busy one.
//   - litter.go: upload temporaries left while the board was silent,
//     removed by the next upload that lands.
//   - seal.go: running one helper call: sealed replies, asking again,
//     mapping the board's exceptions to errors.
//   - list.go: List, a page per exec (_l, py/meta.py), names raw and
//     sizes in binary, each page checked, the board given up between
//     pages.
//   - ops.go: Stat, Mkdir, Remove, RemoveDir, Rename, Hash, Space.
//   - read.go: downloads, up to 16 KB of frames per exec; frames.go decodes
//     the frames.
//   - write.go: uploads: Create, Append, Commit, Abort and the
//     acknowledged sending of a segment.
//   - deflate.go: compressed segments; delta.go: the cache, and moving only
//     what changed; clock.go: setting the board's clock; link.go: keeping a
//     board across unplugs.
//
// # One RETR
//
// A client downloads /main.py from an ESP32. ftpdriver's GetHandle calls
// FS.Open (read.go). Strings cross as pyStr literals, str(b'/main.py',
// 'utf8'), shortened to '/main.py' here; ← is what the board answers.
//
// If a copy of the file is cached, openCached (delta.go) asks for the
// file's block sums (_bs, py/delta.py), fetches only the KBs that differ,
// and serves the copy once its SHA-256 is the board's:
//
//	_bs('/main.py',1024,1)  ← 8 hex digits (CRC-32) per KB, size, SHA-256:
//	                          "1f2e3d4c9a8b7c6d 2048 9f86d081...\r\n"
//
// Otherwise Open returns a reader whose fetch reads 16 KB (execSpan) per
// exec. readRange takes the board lock (lock.go), asks the dialect
// (dialect.go) for the call, starts it through repl, and decodes the
// frames (frames.go) that _r (py/read.py) writes through _f
// (py/frames.py):
//
//	_r('/main.py',0,16384)  ← [len 2][data len][CRC-32 4] ... [0 0][count 4]
//
// where len is at most 1000 and count is the bytes in all frames. A
// damaged frame, a count that disagrees or a board reset has fetch read
// the segment once more. A board that can deflate (deflate.go) is asked
// for _z (py/deflate.py) instead, which answers 'Z' and frames of the
// deflated segment, or 'P' and frames of the plain one.
//
// Each segment opens the file anew, and another session may replace it
// between two. So at the end, the reader asks what the file holds now
// (the dialect's digest, _fp in py/meta.py) and compares it with what it
// read; a difference fails the download with ErrChanged:
//
//	_fp('/main.py',0,0)     ← "2048 1f2e3d4c~<CRC-32>"  (count, CRC-32)
//
// # One STOR
//
// A client uploads /main.py. ftpdriver calls FS.Create (write.go), which
// names a temporary file in the target's directory (newTempName, through
// the dialect's tempName), /.ftpbridge-1a2b3c4d, shortened to tmp here;
// names of that form are reserved, hidden from listings and swept. Upload.Write keeps
// what comes and flush sends it in 4 KB segments, up to eight in one exec
// when they go plain (plainSpan), four when they deflate (execSpan), one
// while another operation waits. Once a segment is buffered it asks for the
// old file's sums (delta.go), and a segment whose blocks match is copied
// on the board (_ca) rather than sent:
//
//	_bs('/main.py',1024,0)              ← "1f2e3d4c... 8192 -\r\n"
//	_ca('/main.py','tmp',0,4096,0)      ← nothing
//
// Other segments go by send (write.go), to _w (py/write.py):
//
//	_w('tmp',0)             ← 0x06 (file open, Ctrl-C off)
//	                        → 'B', a 2-byte length, then a block of up to
//	                          4 KB, as far as the window allows; again
//	                        ← 0x06 per 32 bytes taken off the line
//	                        → 'E': the end
//
// the last argument 1 once the upload has started. The host goes on
// block by block past the span while more bytes are at hand (SetSource:
// the spool's file) and no other operation waits, so one exec may carry
// a whole file. The board takes the bytes into a 256-byte RAM buffer and
// acknowledges them as they come, before they go to flash; when the
// buffer is full it writes it, a page, and reads nothing meanwhile: 0.4
// ms, or about 45 ms where the page starts a 4 KB block and the flash
// erases it first. On a line that holds the host back (Options.HeldBack:
// native USB) the host keeps up to 8 KB unacknowledged; otherwise at most
// 248 bytes (window), heads included,
// unacknowledged: whenever the board stops reading they wait in its input
// ring (255 bytes on an ESP8266). Where deflating saves more than 2 %,
// _wz('tmp',zlen,0,wbits) takes a span deflated (32 KB where the board
// has 80 KB free, 16 KB where it has 64 KB, else a segment) with the same
// acknowledgements, all into RAM, and then inflates it into the file. Commit then
// checks the file and puts it in place in one exec: _vr renames it only
// if its size and SHA-256 are the host's, and answers with what it found;
// sealed replies end with '~' and the CRC-32 of the line (seal.go):
//
//	_vr('tmp','/main.py','4096 <SHA-256 in hex>')  ← "4096 <SHA-256 in hex>~<CRC-32>"
//
// Boards without hashlib get a size check (a stat) and _mv('tmp','/main.py').
//
// On a micro:bit (microbit.go) the same steps speak its dialect: _x for
// _r, with frames of up to 64 bytes checked by their sum; the upload's
// file is opened once (_u1a2b3c4d=open('name','wb')) and _wu writes to it
// in pieces of 30 bytes; Commit checks the sum of its bytes (_ck) and
// renames by copying (_cp) and removing.
package boardfs
