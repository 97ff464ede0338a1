// vmboard: the firmware of an emulated MicroPython board. MicroPython 1.27,
// compiled to WebAssembly, runs every line of Python; this file only does what
// a board's firmware does on its serial line: boot messages, the friendly and
// raw REPLs (the VM's own), raw-paste where the VM's cannot run, soft reset,
// Ctrl-C, and a filesystem that is a host directory. The serial line itself
// (line rate, receive buffer, faults) is the Go side's: see PROTOCOL.md.
//
//   node vmboard.mjs --profile esp32|esp8266|pyboard --root DIR [--running]
//                    [--heap BYTES] [--flash] [--cpu [--clock MHZ]]

import fs from "node:fs";
import { Worker } from "node:worker_threads";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import { hostFS, translateErrnoAtSyscalls } from "./hostfs.mjs";

const CTRL_A = 0x01, CTRL_B = 0x02, CTRL_C = 0x03, CTRL_D = 0x04, CTRL_E = 0x05;
const REPLY_FD = 0, TX_FD = 1, LOG_FD = 2, REQUEST_FD = 3;

// The board's clock. The VM reads the time from Date.now, so the board's
// clock is the host's shifted by clockOffset; the firmware's own timing
// (line pacing) keeps the host's. Set through machine.RTC().datetime().
const realNow = Date.now.bind(Date);
let clockOffset = 0;
Date.now = () => realNow() + clockOffset;

// machine.RTC as the ports have it: datetime() reads the clock as
// (year, month, day, weekday, hours, minutes, seconds, subseconds), and
// datetime(tuple) sets it. The VM has no machine module of its own.
const machine = {
  RTC: () => ({
    datetime: (t) => {
      if (t === undefined) {
        const d = new Date(Date.now());
        return [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), (d.getUTCDay() + 6) % 7,
          d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), 0];
      }
      const [y, mo, day, , h, mi, sec] = [...t];
      clockOffset = Date.UTC(y, mo - 1, day, h, mi, sec) - realNow();
      return null;
    },
  }),
};

// SPI NOR flash as Winbond's W25Q32JV datasheet gives it (the 4 MB part on
// ESP32 and ESP8266 modules; GigaDevice's GD25Q32 is within 20 %): a page
// program (256 bytes) takes 0.4 ms, a 4 KB sector erase 45 ms, typical.
const FLASH_PAGE_MS = 0.4;
const FLASH_ERASE_MS = 45;
const FLASH_BLOCK = 4096;

// The CPU model's costs, in pystone passes. codeByte and fsCall are what
// the work costs the MicroPython VM relative to one pass of pystone,
// measured on the VM itself. exec and literalByte are fitted to mpremote's
// published rates on a real board, which the VM's own figures (0.8 and
// 0.0016) fall far short of (PROTOCOL.md, Calibration). A profile's
// pystoneUs, the time of one pass on its chip, turns them into time.
const COST = {
  exec: 16, // an exec's firmware work beyond its bytes: compile, start, end
  codeByte: 0.02, // compiling a byte of code
  literalByte: 0.010, // a byte inside a string or bytes literal, or a comment
  fsCall: 0.13, // a turn of a helper loop around one file read or write
};

// What differs between the boards we emulate.
const PROFILES = {
  esp32: {
    // pystone: 1075-1661 passes/s at 240 MHz (micropython#5673, ulab#296).
    pystoneUs: 1e6 / 1400,
    clockMHz: 240,
    // littlefs: a metadata change is a commit, about one page program.
    metaMs: FLASH_PAGE_MS,
    rawPaste: true,
    clockUnset: true, // the RTC starts at 2000-01-01 on power-up
    reboot: "MPY: soft reboot\r\n",
    // The ROM bootloader's greeting at power-on (ESP32 ROM, 2016 build).
    boot: "ets Jul 29 2019 12:21:46\r\n\r\nrst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n" +
      "configsip: 0, SPIWP:0xee\r\nclk_drv:0x00,q_drv:0x00,d_drv:0x00,cs0_drv:0x00,hd_drv:0x00,wp_drv:0x00\r\n" +
      "mode:DIO, clock div:2\r\nload:0x3fff0030,len:4728\r\nentry 0x400805e0\r\n",
  },
  esp8266: {
    // 4.4 times slower than an ESP32 at 240 MHz (scruss.com benchmark:
    // 45.6 s against 15.4 s for an ESP32 at 160 MHz).
    pystoneUs: 1e6 / 1400 * 4.4,
    clockMHz: 80,
    // FAT on 4 KB flash sectors: a directory or FAT update rewrites a
    // sector, an erase and 16 page programs.
    metaMs: FLASH_ERASE_MS + 16 * FLASH_PAGE_MS,
    rawPaste: false, // firmware before 1.14 (and many ESP8266 builds in use)
    clockUnset: true,
    reboot: "MPY: soft reboot\r\n",
    // The ROM prints at 74880 baud, which reads as garbage at 115200.
    boot: "\x00\xe0\x1c\x8c\xf2n\xec\x0c\x8c\x0cl\x9c\xe2|\x00 ets Jan  8 2013,rst cause:2, boot mode:(3,6)\r\n\r\n",
  },
  pyboard: {
    // STM32F405 at 168 MHz: 13.0 s on the same benchmark, 0.79 of an
    // ESP32 at 240 MHz.
    pystoneUs: 1e6 / 1400 / 0.79,
    clockMHz: 168,
    metaMs: FLASH_PAGE_MS,
    rawPaste: true,
    reboot: "MPY: soft reboot\n",
    boot: "",
  },
};

// A drive: paths inside it map to host paths under a base directory.
const DRIVE = `import vfs, os
class _D:
    def __init__(self, base):
        self.v = vfs.VfsPosix()
        self.b = base
        self.c = '/'
    def _p(self, p):
        if p[:1] != '/':
            p = self.c.rstrip('/') + '/' + p
        return self.b + p.rstrip('/') if p != '/' else self.b
    def mount(self, readonly, mkfs):
        pass
    def umount(self):
        pass
    def open(self, p, mode):
        return self.v.open(self._p(p), mode)
    def ilistdir(self, p):
        return self.v.ilistdir(self._p(p))
    def stat(self, p):
        return self.v.stat(self._p(p))
    def statvfs(self, p):
        return self.v.statvfs(self._p(p))
    def mkdir(self, p):
        self.v.mkdir(self._p(p))
    def rmdir(self, p):
        self.v.rmdir(self._p(p))
    def remove(self, p):
        self.v.remove(self._p(p))
    def rename(self, a, b):
        self.v.rename(self._p(a), self._p(b))
    def chdir(self, p):
        if self.v.stat(self._p(p))[0] & 0x4000 == 0:
            raise OSError(20)
        self.c = self._p(p)[len(self.b):] or '/'
    def getcwd(self):
        return self.c
`;

// The heap model (limitHeap). gc_get_max_new_split() in the wasm port
// (ports/webassembly/main.c) is 128 MB, and its gc.mem_free() adds it.
const VM_NEW_SPLIT = 128 * 1024 * 1024;
const HEAP_BOOT_MARGIN = 96 * 1024;
const HEAP_PAD = 8 * 1024;
const HEAP_MODULE = `def _rig_heap():
    import sys, gc as g
    class gc:
        collect = g.collect
        enable = g.enable
        disable = g.disable
        isenabled = g.isenabled
        threshold = g.threshold
        def mem_free():
            return max(0, g.mem_free() - ${128 * 1024 * 1024})
        def mem_alloc():
            b = gc._ballast
            return g.mem_alloc() - (len(b) + 16 if b else 0)
        _ballast = None
    sys.modules['gc'] = gc
_rig_heap()
del _rig_heap
`;

// heapGuard refuses the VM's requests for more wasm memory once its heap
// is fixed: malloc then fails, and the GC raises MemoryError. Each VM
// instance gets its own guard (a soft reset makes a new instance).
const heapGuard = {
  pending: null,
  next() {
    this.pending = { locked: false };
    return this.pending;
  },
  install() {
    const instantiate = WebAssembly.instantiate;
    WebAssembly.instantiate = (source, imports) => {
      const guard = this.pending ?? { locked: false };
      for (const ns of new Set(Object.values(imports ?? {}))) {
        const resize = ns?.emscripten_resize_heap;
        if (typeof resize === "function") ns.emscripten_resize_heap = (n) => (guard.locked ? 0 : resize(n));
      }
      return instantiate(source, imports);
    };
  },
};

// The raw-paste window: the board grants this many bytes at a time.
const RAW_PASTE_WINDOW = 128;

function parseArgs(argv) {
  const args = { profile: "esp32", root: null, running: false, heap: 0, flash: false, cpu: false, clock: 0 };
  for (let i = 0; i < argv.length; i++) {
    switch (argv[i]) {
      case "--profile": args.profile = argv[++i]; break;
      case "--root": args.root = argv[++i]; break;
      case "--running": args.running = true; break;
      case "--heap": args.heap = Number(argv[++i]); break;
      case "--flash": args.flash = true; break;
      case "--cpu": args.cpu = true; break;
      case "--clock": args.clock = Number(argv[++i]); break;
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (!PROFILES[args.profile]) throw new Error(`unknown profile ${args.profile}`);
  if (!args.root) throw new Error("--root is required");
  if (!(args.heap >= 0)) throw new Error("--heap wants a number of bytes");
  if (!(args.clock >= 0)) throw new Error("--clock wants a frequency in MHz");
  return args;
}

// sleepCell is what Atomics.wait sleeps on: nothing ever wakes it, so it
// sleeps for the timeout, blocking the thread as a busy board would.
const sleepCell = new Int32Array(new SharedArrayBuffer(4));

// The board's own time: work the model charges makes the board busy for
// that long. Small charges add up and are paid before the board next does
// something the host can see (sends a byte or waits for input), or once
// they reach a millisecond. A sleep that overran is made up by the next
// charges, as the Go side's pacer does, so many small ones keep their sum.
class BoardClock {
  constructor(serial) {
    this.serial = serial;
    this.busyUntil = 0; // performance.now() time until which the board is busy
  }

  charge(ms) {
    if (!(ms > 0)) return;
    const now = performance.now();
    // Credit for an overrun sleep lasts half a millisecond; an idle board
    // banks none.
    this.busyUntil = Math.max(this.busyUntil, now - 0.5) + ms;
    if (this.busyUntil - now >= 1) this.settle();
  }

  // settle waits out the work charged so far. Meanwhile the board takes
  // nothing from the line: its receive buffer fills, then drops.
  settle() {
    const wait = this.busyUntil - performance.now();
    if (wait <= 0) return;
    this.serial.reportHeld();
    Atomics.wait(sleepCell, 0, 0, wait);
  }
}

// compileUnits prices code for the CPU model: bytes inside string and bytes
// literals and comments cost the lexer little; other bytes are parsed and
// compiled.
function compileUnits(code) {
  let literal = 0, other = 0;
  for (let i = 0; i < code.length; i++) {
    const c = code[i];
    if (c === 0x27 || c === 0x22) {
      const triple = code[i + 1] === c && code[i + 2] === c;
      let j = i + (triple ? 3 : 1);
      for (; j < code.length; j++) {
        if (code[j] === 0x5c) { j++; continue; }
        if (code[j] === c && (!triple || (code[j + 1] === c && code[j + 2] === c))) {
          j += triple ? 2 : 0;
          break;
        }
        if (!triple && code[j] === 0x0a) break;
      }
      literal += Math.min(j + 1, code.length) - i;
      i = j;
    } else if (c === 0x23) {
      let j = i;
      while (j < code.length && code[j] !== 0x0a) j++;
      literal += j - i;
      i = j - 1;
    } else {
      other++;
    }
  }
  return COST.exec + other * COST.codeByte + literal * COST.literalByte;
}

function log(msg) {
  fs.writeSync(LOG_FD, `vmboard: ${msg}\n`);
}

// The serial line as the firmware sees it: a transmit buffer flushed to the
// Go side, and a receive side pulled from the Go side's receive buffer.
// txWorker is the UART's transmitter: a thread of its own that sends what
// the firmware puts in a shared ring while the VM runs on. Without it a
// board's last output before a long silent computation ("OK", say) would
// wait in a buffer until the VM next called out, where a board's UART sends
// it at once.
// A UART's transmit FIFO is small (128 bytes on an ESP32, 256 on USB CDC):
// a program printing faster than the line waits for it, so a Ctrl-C stops
// the output within a few hundred bytes. A ring of 64 KB kept sending for
// seconds after the program had stopped.
const TX_RING = 256;
const TX_WORKER = `
const { workerData } = require("node:worker_threads");
const fs = require("node:fs");
const ctl = new Int32Array(workerData.sab, 0, 3); // head, tail, waiting
const buf = new Uint8Array(workerData.sab, 16);
const nap = new Int32Array(new SharedArrayBuffer(4));
// Node leaves its stdout pipe non-blocking: a full pipe (the Go side pacing
// a program that prints faster than the line) is EAGAIN, to wait out, not
// the end of the line. Taking it for the end stopped the transmitter for
// good, and the board with it once its ring filled.
function send(off, len) {
  for (;;) {
    try {
      return fs.writeSync(workerData.fd, buf, off, len);
    } catch (e) {
      if (e.code !== "EAGAIN") throw e;
      Atomics.wait(nap, 0, 0, 1);
    }
  }
}
try {
  for (;;) {
    const tail = Atomics.load(ctl, 1);
    const head = Atomics.load(ctl, 0);
    if (head === tail) {
      Atomics.store(ctl, 2, 1);
      Atomics.wait(ctl, 0, tail);
      Atomics.store(ctl, 2, 0);
      continue;
    }
    const end = head > tail ? head : buf.length;
    for (let off = tail; off < end; ) off += send(off, end - off);
    Atomics.store(ctl, 1, end % buf.length);
    Atomics.notify(ctl, 1);
  }
} catch {
  // The Go side went away: the board is being switched off.
}
`;

class Serial {
  constructor() {
    const sab = new SharedArrayBuffer(16 + TX_RING);
    this.ctl = new Int32Array(sab, 0, 3);
    this.ring = new Uint8Array(sab, 16);
    this.tx = new Worker(TX_WORKER, { eval: true, workerData: { sab, fd: TX_FD } });
    this.tx.unref();
    this.capture = null; // bytes kept back instead of sent (suppressOutput)
    this.readSinceReport = false; // the program read pulled bytes since the Go side last heard how many are left
    this.lastPoll = 0;
    this.in = Buffer.alloc(0);
    this.inPos = 0;
    this.header = Buffer.alloc(5);
    this.clock = null; // the board's clock, when the model keeps time
  }

  write(bytes) {
    for (const b of bytes) this.writeByte(b);
  }

  // writeByte sends a byte, once the board is done with the work the model
  // charged before it.
  writeByte(b) {
    if (this.capture) {
      this.capture.push(b);
      return;
    }
    this.clock?.settle();
    if (this.readSinceReport) {
      // The host may answer this byte by sending more: first tell the Go
      // side how much of its buffer the board still fills.
      this.reportHeld();
    }
    const head = this.ctl[0];
    const next = (head + 1) % TX_RING;
    while (next === Atomics.load(this.ctl, 1)) Atomics.wait(this.ctl, 1, next, 10);
    this.ring[head] = b;
    Atomics.store(this.ctl, 0, next);
    if (Atomics.load(this.ctl, 2)) Atomics.notify(this.ctl, 0);
  }

  writeString(s) {
    this.write(Buffer.from(s, "latin1"));
  }

  // writeNow sends s itself, past the transmitter; only while nothing is
  // queued for it (at power-on).
  writeNow(s) {
    const b = Buffer.from(s, "latin1");
    for (let off = 0; off < b.length; ) off += fs.writeSync(TX_FD, b, off, b.length - off);
  }

  // flush waits out the work charged so far: output already leaves as it
  // is written.
  flush() {
    this.clock?.settle();
  }

  // reportHeld tells the Go side how many pulled bytes the program has not
  // read yet: they still fill the board's receive buffer.
  reportHeld() {
    this.readSinceReport = false;
    const req = Buffer.alloc(5);
    req[0] = 0x48; // 'H'
    req.writeUInt32LE(this.available(), 1);
    fs.writeSync(REQUEST_FD, req);
  }

  // Called for each byte a running program prints: keeps the line moving and,
  // as a UART interrupt would, notices a Ctrl-C that arrived meanwhile.
  tick(intr, onInterrupt) {
    const now = realNow();
    if (intr >= 0 && now !== this.lastPoll) {
      this.lastPoll = now;
      if (this.pendingHas(intr)) {
        onInterrupt();
      } else {
        const req = Buffer.alloc(7);
        req[0] = 0x50; // 'P'
        req.writeInt16LE(intr, 1);
        req.writeUInt32LE(this.available(), 3);
        fs.writeSync(REQUEST_FD, req);
        const { interrupted } = this.readReply();
        if (interrupted) onInterrupt();
      }
    }
  }

  // pendingHas removes intr from bytes already pulled, if it is there.
  pendingHas(intr) {
    const i = this.in.indexOf(intr, this.inPos);
    if (i < 0) return false;
    this.in = Buffer.concat([this.in.subarray(this.inPos, i), this.in.subarray(i + 1)]);
    this.inPos = 0;
    return true;
  }

  available() {
    return this.in.length - this.inPos;
  }

  // pull blocks until the Go side has bytes for us, taking up to max.
  pull(max, intr) {
    this.flush();
    const req = Buffer.alloc(7);
    req[0] = 0x52; // 'R'
    req.writeUInt32LE(max, 1);
    req.writeInt16LE(intr, 5);
    fs.writeSync(REQUEST_FD, req);
    const reply = this.readReply();
    if (reply.data.length > 0) {
      this.in = this.available() > 0
        ? Buffer.concat([this.in.subarray(this.inPos), reply.data])
        : reply.data;
      this.inPos = 0;
    }
    return reply;
  }

  readReply() {
    this.readFull(this.header, 5);
    const interrupted = (this.header[0] & 1) !== 0;
    const n = this.header.readUInt32LE(1);
    const data = Buffer.alloc(n);
    this.readFull(data, n);
    return { interrupted, data };
  }

  readFull(buf, n) {
    let off = 0;
    while (off < n) {
      const k = fs.readSync(REPLY_FD, buf, off, n - off, null);
      if (k === 0) throw new Error("line closed");
      off += k;
    }
  }

  // readByte blocks for the next byte from the host.
  readByte() {
    while (this.available() === 0) this.pull(4096, -1);
    this.readSinceReport = true;
    return this.in[this.inPos++];
  }
}

class Board {
  constructor(args) {
    this.args = args;
    this.profile = PROFILES[args.profile];
    if (args.clock > 0) {
      // The same chip at another clock: Python's speed follows the clock
      // (the calibration runs a Pyboard at the STM32WB55's 64 MHz).
      const p = this.profile;
      this.profile = { ...p, pystoneUs: p.pystoneUs * p.clockMHz / args.clock, clockMHz: args.clock };
    }
    // Each power-up is a new process: an ESP's clock starts at its epoch,
    // a Pyboard's keeps time on its battery.
    if (this.profile.clockUnset) clockOffset = Date.UTC(2000, 0, 1) - realNow();
    this.serial = new Serial();
    if (args.flash || args.cpu) this.serial.clock = this.clock = new BoardClock(this.serial);
    this.mp = null;
    this.raw = false; // in the raw REPL
    this.rawLineEmpty = true;
    this.rawLine = []; // the raw REPL's line so far, which Ctrl-D compiles
    this.compileMs = 0; // compile time to charge once the exec has said OK
    this.execOut = 0; // bytes the exec has written so far
    this.friendlyPaste = false; // in the friendly REPL's paste mode (Ctrl-E)
    this.suppress = null; // bytes of VM output to swallow (raw-paste's "OK")
  }

  // The VM calls this for each byte a program (or the REPL) prints.
  onOutput(byte) {
    if (this.suppress && this.suppress.length > 0 && this.suppress[0] === byte) {
      this.suppress = this.suppress.subarray(1);
      return;
    }
    this.suppress = null;
    this.serial.writeByte(byte);
    if (this.compileMs > 0 && ++this.execOut === 2) {
      // The raw REPL says OK, then parses and compiles the line.
      const ms = this.compileMs;
      this.compileMs = 0;
      this.clock.charge(ms);
    }
    if (this.mp) this.serial.tick(this.interruptChar(), () => this.interrupt());
  }

  // The VM calls this for each byte a program reads from sys.stdin: the
  // serial line, byte-exact, as on a real board.
  onInput() {
    const intr = this.interruptChar();
    if (this.serial.available() === 0) {
      const { interrupted } = this.serial.pull(4096, intr);
      if (interrupted) {
        this.interrupt();
        return null;
      }
    }
    const b = this.serial.in[this.serial.inPos++];
    this.serial.readSinceReport = true;
    if (b === intr) {
      this.interrupt();
      return null;
    }
    return b;
  }

  interruptChar() {
    return this.mp._module._mp_hal_get_interrupt_char();
  }

  interrupt() {
    this.mp._module._mp_sched_keyboard_interrupt();
  }

  async startVM() {
    const guard = heapGuard.next();
    const mp = await loadMicroPython({
      linebuffer: false,
      stdout: (bytes) => { for (const b of bytes) this.onOutput(b); },
      stdin: () => this.onInput(),
      // Room for what booting takes, then a ballast brings it down.
      ...(this.args.heap > 0 ? { heapsize: this.args.heap + HEAP_BOOT_MARGIN } : {}),
    });
    mp.registerJsModule("machine", machine);
    this.mountRoot(mp);
    this.gcCollect = null;
    if (this.args.heap > 0) this.limitHeap(mp, guard);
    this.mp = mp;
  }

  // limitHeap gives the VM a board's heap: gc.mem_free() says args.heap,
  // and the heap cannot grow. The VM's gc module counts the 128 MB it could
  // add (gc_get_max_new_split) in mem_free; the board's own gc module,
  // which takes its name in sys.modules, does not. A ballast held by that
  // module takes what the VM has beyond the board's figure.
  limitHeap(mp, guard) {
    const realGc = mp.pyimport("gc");
    this.gcCollect = realGc.collect;
    mp.runPython(HEAP_MODULE);
    const free = () => {
      this.gcCollect();
      return realGc.mem_free() - VM_NEW_SPLIT;
    };
    // A bytearray of n bytes takes n rounded up to 16-byte blocks, and a
    // block for itself.
    const ballast = free() - this.args.heap - 16;
    if (ballast > 0) mp.runPython(`import gc\ngc._ballast = bytearray(${ballast})\ndel gc`);
    const got = free();
    if (Math.abs(got - this.args.heap) > 256) log(`heap: asked for ${this.args.heap} bytes free after boot, got ${got}`);
    guard.locked = true;
    // With growth refused, malloc can still hand the GC a new area from
    // what the wasm memory already has: take it all, leaving the C side
    // small pieces (a directory listing needs about 2 KB) that no GC area
    // fits in.
    const M = mp._module;
    const pads = [];
    for (let i = 0; i < 32; i++) {
      pads.push(M._malloc(HEAP_PAD));
      M._malloc(64);
    }
    for (let size = 1 << 26; size >= 16; size >>= 1) {
      while (M._malloc(size)) { /* ballast for the C heap, never freed */ }
    }
    for (const p of pads) M._free(p);
    log(`heap: ${got} bytes free after boot, fixed`);
  }

  // afterExec collects the garbage an exec left, as the board's GC would
  // have by the time the next one needs the memory: the VM collects only
  // between calls into it (the wasm port cannot scan its own stack).
  afterExec() {
    if (!this.gcCollect) return;
    try {
      this.gcCollect();
    } catch (err) {
      log(`gc after exec: ${err.message ?? err}`);
    }
  }

  // The board's flash is the host directory: mounted in Emscripten's FS,
  // then made MicroPython's root (or, on the Pyboard, its /flash and /sd).
  // MicroPython's VfsPosix with a root prefix builds both paths of a rename
  // in one shared buffer and renames new onto itself (1.27), so each drive
  // is a small VFS object that prefixes paths itself over a VfsPosix without
  // a root, keeping its own working directory.
  mountRoot(mp) {
    const FS = mp.FS;
    FS.mkdir("/board");
    FS.mount(hostFS(FS, () => clockOffset, this.fsTiming()), { root: this.args.root }, "/board");
    let mounts;
    if (this.args.profile === "pyboard") {
      for (const sub of ["flash", "sd"]) fs.mkdirSync(`${this.args.root}/${sub}`, { recursive: true });
      mounts = "vfs.mount(_D('/board/flash'), '/flash')\nvfs.mount(_D('/board/sd'), '/sd')\nos.chdir('/flash')\n";
    } else {
      mounts = "vfs.mount(_D('/board'), '/')\nos.chdir('/')\n";
    }
    mp.runPython(DRIVE + "vfs.umount('/')\n" + mounts + "del _D, vfs, os\n");
  }

  // fsTiming charges the board's clock for its filesystem's work: a helper
  // loop turn per read or write (CPU), and the flash's program and erase
  // times (flash). Each 4 KB block a file's writes touch after it was opened
  // is a freshly erased one, as littlefs and FAT on 4 KB sectors write.
  fsTiming() {
    if (!this.clock) return null;
    const { cpu, flash } = this.args;
    const loopMs = COST.fsCall * this.profile.pystoneUs / 1000;
    return {
      data: (stream, isWrite, at, n) => {
        let ms = cpu ? loopMs : 0;
        if (isWrite && flash && n > 0) {
          stream.erased ??= new Set();
          for (let block = Math.floor(at / FLASH_BLOCK); block * FLASH_BLOCK < at + n; block++) {
            if (!stream.erased.has(block)) {
              stream.erased.add(block);
              ms += FLASH_ERASE_MS;
            }
          }
          ms += n * FLASH_PAGE_MS / 256;
        }
        this.clock.charge(ms);
      },
      meta: () => {
        if (flash) this.clock.charge(this.profile.metaMs);
      },
    };
  }

  async powerOn() {
    // The ROM's greeting goes out before the transmitter thread has
    // started: a host waiting for signs of life sees them as soon as on a
    // board, however long the thread and the VM take to load.
    this.serial.writeNow(this.profile.boot);
    await this.startVM();
    if (this.args.running) this.runMain();
    this.mp.replInit();
    this.raw = false;
  }

  // main.py of a board busy in a loop: prints every 100 ms until Ctrl-C.
  runMain() {
    const code = "import time\nn = 0\nwhile True:\n    print('main.py running', n)\n    n += 1\n    time.sleep_ms(100)\n";
    try {
      // Interrupts are on while main.py runs, as pyexec_file sets them.
      this.mp.runPython("import micropython\nmicropython.kbd_intr(3)\ndel micropython\n" + code);
    } catch (err) {
      this.serial.writeString(this.traceback(err, "main.py"));
    }
  }

  // pyexec_file_if_exists: a file in the working directory (the Pyboard's
  // /flash) runs with interrupts on; its exception is printed and the
  // board goes on to its REPL.
  runFile(name) {
    const dir = this.args.profile === "pyboard" ? `${this.args.root}/flash` : this.args.root;
    if (!fs.existsSync(`${dir}/${name}`)) return;
    try {
      this.mp.runPython("import micropython\nmicropython.kbd_intr(3)\ndel micropython\n" +
        `exec(compile(open('${name}').read(), '${name}', 'exec'))\n`);
    } catch (err) {
      // The VM's traceback starts in the line that ran the file; a
      // board's starts in the file.
      this.serial.writeString(this.traceback(err, name).replace(/  File "<stdin>", line 1, in <module>\r\n/, ""));
    }
  }

  traceback(err, file) {
    const type = err.type ?? "Exception";
    let text = String(err.message ?? "");
    if (!text.startsWith("Traceback")) {
      text = `Traceback (most recent call last):\n  File "${file}", line 6, in <module>\n${type}: ${text}\n`;
    }
    return text.replace(/\r?\n/g, "\r\n");
  }

  async softReset() {
    this.serial.writeString(this.profile.reboot);
    this.serial.flush();
    this.mp = null;
    await this.startVM();
    // A new interpreter starts in the friendly REPL; the firmware goes back
    // to the mode it was in.
    const raw = this.raw;
    // As the ports' main.c: boot.py runs after every reset, main.py only
    // when the board comes back to the friendly REPL.
    this.runFile("boot.py");
    if (!raw) this.runFile("main.py");
    const banner = this.suppressOutput(() => this.mp.replInit());
    if (raw) {
      this.mp.replProcessChar(CTRL_A);
    } else {
      this.serial.write(banner);
    }
    this.rawLineEmpty = true;
    this.friendlyPaste = false;
  }

  suppressOutput(fn) {
    this.serial.capture = [];
    try {
      fn();
      return Buffer.from(this.serial.capture);
    } finally {
      this.serial.capture = null;
    }
  }

  // cpuMs is what the CPU model charges for an exec of code: nothing when
  // it is off.
  cpuMs(code) {
    return this.args.cpu ? compileUnits(code) * this.profile.pystoneUs / 1000 : 0;
  }

  // feed passes one byte to the VM's REPL, tracking the mode it is in.
  async feed(b) {
    if (this.raw) {
      if (b === CTRL_B) this.raw = false;
      this.rawLineEmpty = b === CTRL_A || b === CTRL_C || b === CTRL_D || b === CTRL_B;
      if (this.rawLineEmpty) {
        if (b === CTRL_D && this.rawLine.length > 0) {
          this.compileMs = this.cpuMs(this.rawLine);
          this.execOut = 0;
        }
        if (b === CTRL_D) {
          // The board stops reading to run the line: what it has pulled
          // beyond it waits in its buffer.
          this.serial.reportHeld();
        }
        this.rawLine = [];
      } else if (this.args.cpu) {
        this.rawLine.push(b);
      }
    } else if (this.friendlyPaste) {
      if (b === CTRL_C || b === CTRL_D) this.friendlyPaste = false;
    } else if (b === CTRL_A) {
      this.raw = true;
      this.rawLineEmpty = true;
    } else if (b === CTRL_E) {
      this.friendlyPaste = true;
    }
    const ret = this.mp.replProcessChar(b);
    this.compileMs = 0;
    if (b === CTRL_D) this.afterExec();
    if (ret !== 0) await this.softReset();
  }

  async run() {
    await this.powerOn();
    for (;;) {
      const b = this.serial.readByte();
      if (this.raw && this.rawLineEmpty && b === CTRL_E) {
        await this.rawPasteRequest();
      } else {
        await this.feed(b);
      }
    }
  }

  // At the raw prompt, 0x05 'A' 0x01 asks for raw-paste mode.
  async rawPasteRequest() {
    const a = this.serial.readByte();
    if (a !== 0x41) {
      await this.feed(CTRL_E);
      await this.feed(a);
      return;
    }
    const c = this.serial.readByte();
    if (c !== CTRL_A) {
      for (const b of [CTRL_E, a, c]) await this.feed(b);
      return;
    }
    if (!this.profile.rawPaste) {
      // Firmware without raw-paste keeps 0x05 'A' on the line and takes
      // 0x01 as Ctrl-A: the raw banner again, on a fresh line.
      await this.feed(CTRL_A);
      return;
    }
    await this.rawPaste();
  }

  // The VM's own raw-paste reader would block forever on its stdin, so the
  // firmware does the flow control and hands the VM the finished code.
  async rawPaste() {
    const s = this.serial;
    const window = RAW_PASTE_WINDOW;
    s.write([0x52, 0x01, window & 0xff, window >> 8, 0x01]); // "R\x01", size, first grant
    s.flush();
    let granted = 2 * window; // the size grants a window, the 0x01 another
    let received = s.available(); // the host cannot have sent these for the paste
    let consumed = 0;
    let maxOutstanding = 0;
    const code = [];
    let aborted = false;
    for (;;) {
      if (s.available() === 0) {
        const { data } = s.pull(65536, -1);
        received += data.length;
        if (received > granted) {
          const excess = received - granted;
          log(`raw-paste overrun: host sent ${received} bytes, granted ${granted}; dropped ${excess}`);
          s.in = s.in.subarray(0, s.in.length - excess);
          received = granted;
        }
        maxOutstanding = Math.max(maxOutstanding, received - consumed);
      }
      if (s.available() === 0) continue;
      const b = s.in[s.inPos++];
      consumed++;
      if (b === CTRL_D || b === CTRL_C) {
        aborted = b === CTRL_C;
        break;
      }
      code.push(b);
      if (consumed % window === 0) {
        s.writeByte(0x01);
        s.flush();
        granted += window;
      }
    }
    s.writeByte(CTRL_D);
    log(`raw-paste done bytes=${code.length} max-outstanding=${maxOutstanding} window=${window}`);
    if (aborted) {
      // As firmware does for Ctrl-C during the paste: the code is dropped.
      s.writeString("KeyboardInterrupt\r\n\x04>");
      this.rawLineEmpty = true;
      return;
    }
    // The board has lexed the code as it came; now it compiles and runs it.
    s.reportHeld();
    this.clock?.charge(this.cpuMs(code));
    // Run it as the raw REPL runs code; the "OK" is raw mode's, not paste's.
    this.suppress = Buffer.from("OK");
    for (const b of code) this.mp.replProcessChar(b);
    this.rawLineEmpty = true;
    this.rawLine = [];
    const ret = this.mp.replProcessChar(CTRL_D);
    this.afterExec();
    if (ret !== 0) await this.softReset();
  }
}

const args = parseArgs(process.argv.slice(2));
translateErrnoAtSyscalls();
heapGuard.install();
try {
  await new Board(args).run();
} catch (err) {
  if (err.message === "line closed") process.exit(0);
  log(`fatal: ${err.stack ?? err}`);
  process.exit(1);
}
