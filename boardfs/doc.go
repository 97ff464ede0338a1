// Package boardfs is a MicroPython board's filesystem, reached through the
// raw REPL: list, stat, read, write, mkdir, remove, rename, hash and free
// space. It sends short calls to helper functions it defines on the board,
// and moves file contents as framed raw bytes. It knows nothing of FTP.
//
// A dialect, chosen when the board is detected, says how to speak to its
// family: boards with a modern os module (ilistdir, stat, statvfs) and
// binary stdin/stdout move raw bytes through them; the micro:bit's flat
// filesystem moves its bytes through microbit.uart.
//
// Where things are:
//   - fs.go: FS, New, Options, Entry and the errors.
//   - py/*.py: the Python that runs on the board, readable, one file per
//     concern; python.go embeds it and minify.go shrinks it for the wire.
//   - helpers.go: prepare, which installs the helpers.
//   - dialect.go: what differs between families of boards, and the
//     dialect of boards with an os module; microbit.go: the micro:bit's.
//   - lock.go: the board lock operations take turns on.
//   - seal.go: running one helper call: sealed replies, asking again,
//     mapping the board's exceptions to errors.
//   - ops.go: List, Stat, Mkdir, Remove, RemoveDir, Rename, Hash, Space.
//   - read.go: downloads: Open's reader, one framed segment per exec.
//   - write.go: uploads: Create, Append, Commit, Abort and the
//     acknowledged sending of a segment.
//   - frames.go: decoding download frames; deflate.go: compressed
//     segments; delta.go: the cache and moving only what changed;
//     clock.go: setting the board's clock;
//     link.go: keeping a board across unplugs; quote.go: Go strings as
//     Python literals, and path checks.
package boardfs
