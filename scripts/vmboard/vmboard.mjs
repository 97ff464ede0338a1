// vmboard: the firmware of an emulated MicroPython board. MicroPython 1.27,
// compiled to WebAssembly, runs every line of Python; this file only does what
// a board's firmware does on its serial line: boot messages, the friendly and
// raw REPLs (the VM's own), raw-paste where the VM's cannot run, soft reset,
// Ctrl-C, and a filesystem that is a host directory. The serial line itself
// (line rate, receive buffer, faults) is the Go side's: see PROTOCOL.md.
//
//   node vmboard.mjs --profile esp32|esp8266|pyboard --root DIR [--running]

import fs from "node:fs";
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

// What differs between the boards we emulate. (Not the heap: the VM's grows
// on demand, see PROTOCOL.md.)
const PROFILES = {
  esp32: {
    rawPaste: true,
    clockUnset: true, // the RTC starts at 2000-01-01 on power-up
    reboot: "MPY: soft reboot\r\n",
    // The ROM bootloader's greeting at power-on (ESP32 ROM, 2016 build).
    boot: "ets Jul 29 2019 12:21:46\r\n\r\nrst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n" +
      "configsip: 0, SPIWP:0xee\r\nclk_drv:0x00,q_drv:0x00,d_drv:0x00,cs0_drv:0x00,hd_drv:0x00,wp_drv:0x00\r\n" +
      "mode:DIO, clock div:2\r\nload:0x3fff0030,len:4728\r\nentry 0x400805e0\r\n",
  },
  esp8266: {
    rawPaste: false, // firmware before 1.14 (and many ESP8266 builds in use)
    clockUnset: true,
    reboot: "MPY: soft reboot\r\n",
    // The ROM prints at 74880 baud, which reads as garbage at 115200.
    boot: "\x00\xe0\x1c\x8c\xf2n\xec\x0c\x8c\x0cl\x9c\xe2|\x00 ets Jan  8 2013,rst cause:2, boot mode:(3,6)\r\n\r\n",
  },
  pyboard: {
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

// The raw-paste window: the board grants this many bytes at a time.
const RAW_PASTE_WINDOW = 128;

function parseArgs(argv) {
  const args = { profile: "esp32", root: null, running: false };
  for (let i = 0; i < argv.length; i++) {
    switch (argv[i]) {
      case "--profile": args.profile = argv[++i]; break;
      case "--root": args.root = argv[++i]; break;
      case "--running": args.running = true; break;
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (!PROFILES[args.profile]) throw new Error(`unknown profile ${args.profile}`);
  if (!args.root) throw new Error("--root is required");
  return args;
}

function log(msg) {
  fs.writeSync(LOG_FD, `vmboard: ${msg}\n`);
}

// The serial line as the firmware sees it: a transmit buffer flushed to the
// Go side, and a receive side pulled from the Go side's receive buffer.
class Serial {
  constructor() {
    this.out = Buffer.alloc(8192);
    this.outLen = 0;
    this.lastFlush = realNow();
    this.lastPoll = 0;
    this.in = Buffer.alloc(0);
    this.inPos = 0;
    this.header = Buffer.alloc(5);
  }

  write(bytes) {
    for (const b of bytes) this.writeByte(b);
  }

  writeByte(b) {
    if (this.outLen === this.out.length) this.flush();
    this.out[this.outLen++] = b;
  }

  writeString(s) {
    this.write(Buffer.from(s, "latin1"));
  }

  flush() {
    let off = 0;
    while (off < this.outLen) off += fs.writeSync(TX_FD, this.out, off, this.outLen - off);
    this.outLen = 0;
    this.lastFlush = realNow();
  }

  // Called for each byte a running program prints: keeps the line moving and,
  // as a UART interrupt would, notices a Ctrl-C that arrived meanwhile.
  tick(intr, onInterrupt) {
    const now = realNow();
    if (now - this.lastFlush >= 2 || this.outLen >= 4096) this.flush();
    if (intr >= 0 && now !== this.lastPoll) {
      this.lastPoll = now;
      if (this.pendingHas(intr)) {
        onInterrupt();
      } else {
        const req = Buffer.alloc(3);
        req[0] = 0x50; // 'P'
        req.writeInt16LE(intr, 1);
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
    return this.in[this.inPos++];
  }
}

class Board {
  constructor(args) {
    this.args = args;
    this.profile = PROFILES[args.profile];
    // Each power-up is a new process: an ESP's clock starts at its epoch,
    // a Pyboard's keeps time on its battery.
    if (this.profile.clockUnset) clockOffset = Date.UTC(2000, 0, 1) - realNow();
    this.serial = new Serial();
    this.mp = null;
    this.raw = false; // in the raw REPL
    this.rawLineEmpty = true;
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
    const mp = await loadMicroPython({
      linebuffer: false,
      stdout: (bytes) => { for (const b of bytes) this.onOutput(b); },
      stdin: () => this.onInput(),
    });
    mp.registerJsModule("machine", machine);
    this.mountRoot(mp);
    this.mp = mp;
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
    FS.mount(hostFS(FS, () => clockOffset), { root: this.args.root }, "/board");
    let mounts;
    if (this.args.profile === "pyboard") {
      for (const sub of ["flash", "sd"]) fs.mkdirSync(`${this.args.root}/${sub}`, { recursive: true });
      mounts = "vfs.mount(_D('/board/flash'), '/flash')\nvfs.mount(_D('/board/sd'), '/sd')\nos.chdir('/flash')\n";
    } else {
      mounts = "vfs.mount(_D('/board'), '/')\nos.chdir('/')\n";
    }
    mp.runPython(DRIVE + "vfs.umount('/')\n" + mounts + "del _D, vfs, os\n");
  }

  async powerOn() {
    this.serial.writeString(this.profile.boot);
    this.serial.flush();
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
    const saved = this.serial.outLen;
    fn();
    const produced = Buffer.from(this.serial.out.subarray(saved, this.serial.outLen));
    this.serial.outLen = saved;
    return produced;
  }

  // feed passes one byte to the VM's REPL, tracking the mode it is in.
  async feed(b) {
    if (this.raw) {
      if (b === CTRL_B) this.raw = false;
      this.rawLineEmpty = b === CTRL_A || b === CTRL_C || b === CTRL_D || b === CTRL_B;
    } else if (this.friendlyPaste) {
      if (b === CTRL_C || b === CTRL_D) this.friendlyPaste = false;
    } else if (b === CTRL_A) {
      this.raw = true;
      this.rawLineEmpty = true;
    } else if (b === CTRL_E) {
      this.friendlyPaste = true;
    }
    const ret = this.mp.replProcessChar(b);
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
    // Run it as the raw REPL runs code; the "OK" is raw mode's, not paste's.
    this.suppress = Buffer.from("OK");
    for (const b of code) this.mp.replProcessChar(b);
    this.rawLineEmpty = true;
    const ret = this.mp.replProcessChar(CTRL_D);
    if (ret !== 0) await this.softReset();
  }
}

const args = parseArgs(process.argv.slice(2));
translateErrnoAtSyscalls();
try {
  await new Board(args).run();
} catch (err) {
  if (err.message === "line closed") process.exit(0);
  log(`fatal: ${err.stack ?? err}`);
  process.exit(1);
}
