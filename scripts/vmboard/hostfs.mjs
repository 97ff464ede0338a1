// hostfs: an Emscripten filesystem whose files are a host directory, so the
// emulated board's flash *is* that directory: what the board writes appears
// there at once, and what a person puts there is on the board.

import fs from "node:fs";
import path from "node:path";

// Emscripten's errno numbers (its ERRNO_CODES), which its FS layer speaks.
const E = {
  EPERM: 63, ENOENT: 44, EIO: 29, EBADF: 8, EACCES: 2, EBUSY: 10, EEXIST: 20,
  EXDEV: 75, ENODEV: 43, ENOTDIR: 54, EISDIR: 31, EINVAL: 28, EMFILE: 33,
  EFBIG: 22, ENOSPC: 51, EROFS: 69, ENAMETOOLONG: 37, ENOTEMPTY: 55,
  ELOOP: 32, ENOSYS: 52,
};

// MicroPython's own errno numbers (py/mperrno.h, Linux's values), which a
// real board's filesystem driver reports and its `errno` module names. The
// wasm build hands Emscripten's numbers to C unchanged (open() of a missing
// file raises OSError 44 while errno.ENOENT is 2), so the emulated board's
// system calls translate, as a port's storage driver maps its errors.
const toMicroPython = new Map([
  [E.EPERM, 1], [E.ENOENT, 2], [E.EIO, 5], [E.EBADF, 9], [E.EACCES, 13],
  [E.EBUSY, 16], [E.EEXIST, 17], [E.EXDEV, 18], [E.ENODEV, 19], [E.ENOTDIR, 20],
  [E.EISDIR, 21], [E.EINVAL, 22], [E.EMFILE, 24], [E.EFBIG, 27], [E.ENOSPC, 28],
  [E.EROFS, 30], [E.ENAMETOOLONG, 36], [E.ENOSYS, 38], [E.ENOTEMPTY, 39],
  [E.ELOOP, 40],
]);

/**
 * Wraps the VM's system-call imports so C sees MicroPython's errno numbers.
 * Emscripten's own FS code compares its numbers internally, so the
 * translation has to sit at the boundary to C, not in FS.ErrnoError.
 * Call before loadMicroPython.
 */
export function translateErrnoAtSyscalls() {
  const instantiate = WebAssembly.instantiate;
  WebAssembly.instantiate = (source, imports) => {
    // Emscripten passes one object as several namespaces: wrap it once.
    for (const ns of new Set(Object.values(imports ?? {}))) {
      for (const [name, fn] of Object.entries(ns)) {
        if (typeof fn !== "function") continue;
        if (name.startsWith("__syscall_")) {
          // Linux convention: a negative return is -errno.
          ns[name] = (...a) => {
            const r = fn(...a);
            return typeof r === "number" && r < 0 ? -(toMicroPython.get(-r) ?? -r) : r;
          };
        } else if (name.startsWith("fd_")) {
          // WASI convention: the return is the errno, 0 for success.
          ns[name] = (...a) => {
            const r = fn(...a);
            return typeof r === "number" && r > 0 ? (toMicroPython.get(r) ?? r) : r;
          };
        }
      }
    }
    return instantiate(source, imports);
  };
}

const fromNodeCode = {
  ENOENT: E.ENOENT, EEXIST: E.EEXIST, ENOTDIR: E.ENOTDIR, EISDIR: E.EISDIR,
  ENOTEMPTY: E.ENOTEMPTY, EINVAL: E.EINVAL, EACCES: E.EACCES, EPERM: E.EPERM,
  ENOSPC: E.ENOSPC, EXDEV: E.EXDEV, EBADF: E.EBADF, EBUSY: E.EBUSY,
  ENAMETOOLONG: E.ENAMETOOLONG, EMFILE: E.EMFILE, EROFS: E.EROFS, ELOOP: E.ELOOP,
  EFBIG: E.EFBIG, EILSEQ: E.EINVAL,
};

/**
 * Returns an Emscripten filesystem type backed by the host directory root.
 * clockShift returns how far the board's clock is from the host's, in ms:
 * files show the times the board's own clock would have stamped them with.
 * timing, if given, is told of the work a board's filesystem would do:
 * timing.data(stream, isWrite, at, n) for each read or write of n bytes at
 * offset at, timing.meta() for each change to a directory or a file's size.
 */
export function hostFS(FS, clockShift = () => 0, timing = null) {
  const fail = (err) => {
    if (err instanceof FS.ErrnoError) throw err;
    throw new FS.ErrnoError(fromNodeCode[err.code] ?? E.EIO);
  };
  const hostPath = (node) => {
    const parts = [];
    while (node.parent !== node) {
      parts.push(node.name);
      node = node.parent;
    }
    parts.reverse();
    return path.join(node.mount.opts.root, ...parts);
  };
  const makeNode = (parent, name, mode) => {
    const node = FS.createNode(parent, name, mode, 0);
    node.node_ops = nodeOps;
    node.stream_ops = streamOps;
    return node;
  };

  const nodeOps = {
    getattr(node) {
      let st;
      try {
        st = fs.lstatSync(hostPath(node));
      } catch (e) {
        fail(e);
      }
      return {
        dev: 1, ino: st.ino, mode: st.mode, nlink: st.nlink, uid: 0, gid: 0, rdev: 0,
        size: st.size,
        atime: new Date(st.atimeMs + clockShift()),
        mtime: new Date(st.mtimeMs + clockShift()),
        ctime: new Date(st.ctimeMs + clockShift()),
        blksize: 4096, blocks: Math.ceil(st.size / 4096),
      };
    },
    setattr(node, attr) {
      const p = hostPath(node);
      try {
        if (attr.mode !== undefined) {
          node.mode = attr.mode;
          fs.chmodSync(p, attr.mode);
        }
        if (attr.size !== undefined) {
          fs.truncateSync(p, attr.size);
          timing?.meta();
        }
        if (attr.mtime !== undefined) {
          const mtime = attr.mtime - clockShift();
          fs.utimesSync(p, new Date((attr.atime ?? attr.mtime) - clockShift()), new Date(mtime));
        }
      } catch (e) {
        fail(e);
      }
    },
    lookup(parent, name) {
      let st;
      try {
        st = fs.lstatSync(path.join(hostPath(parent), name));
      } catch (e) {
        fail(e);
      }
      return makeNode(parent, name, st.mode);
    },
    mknod(parent, name, mode) {
      const p = path.join(hostPath(parent), name);
      try {
        if (FS.isDir(mode)) fs.mkdirSync(p, { mode: mode & 0o777 });
        else fs.closeSync(fs.openSync(p, "wx", mode & 0o777));
      } catch (e) {
        fail(e);
      }
      timing?.meta();
      return makeNode(parent, name, mode);
    },
    rename(oldNode, newDir, newName) {
      try {
        fs.renameSync(hostPath(oldNode), path.join(hostPath(newDir), newName));
      } catch (e) {
        fail(e);
      }
      timing?.meta();
      oldNode.name = newName;
    },
    unlink(parent, name) {
      try {
        fs.unlinkSync(path.join(hostPath(parent), name));
      } catch (e) {
        fail(e);
      }
      timing?.meta();
    },
    rmdir(parent, name) {
      try {
        fs.rmdirSync(path.join(hostPath(parent), name));
      } catch (e) {
        fail(e);
      }
      timing?.meta();
    },
    readdir(node) {
      try {
        return [".", "..", ...fs.readdirSync(hostPath(node))];
      } catch (e) {
        fail(e);
      }
    },
    symlink() {
      throw new FS.ErrnoError(E.EPERM);
    },
    readlink() {
      throw new FS.ErrnoError(E.EINVAL);
    },
  };

  // Emscripten's open flags are Linux's (O_WRONLY 1, O_RDWR 2, O_CREAT 64,
  // O_EXCL 128, O_TRUNC 512, O_APPEND 1024); creation was already done by
  // mknod, so only the access mode, truncation and append matter here.
  const nodeFlags = (flags) => {
    let f = flags & 3;
    if (flags & 512) f |= fs.constants.O_TRUNC;
    if (flags & 1024) f |= fs.constants.O_APPEND;
    return f;
  };

  const streamOps = {
    open(stream) {
      if (FS.isDir(stream.node.mode)) return;
      try {
        stream.hostFd = fs.openSync(hostPath(stream.node), nodeFlags(stream.flags));
      } catch (e) {
        fail(e);
      }
    },
    close(stream) {
      if (stream.hostFd === undefined) return;
      try {
        fs.closeSync(stream.hostFd);
      } catch (e) {
        fail(e);
      }
      // Closing a written file commits its new size and blocks.
      if (stream.written) timing?.meta();
    },
    read(stream, buffer, offset, length, position) {
      if (length === 0) return 0;
      let n;
      try {
        n = fs.readSync(stream.hostFd, buffer, offset, length, position);
      } catch (e) {
        fail(e);
      }
      timing?.data(stream, false, position, n);
      return n;
    },
    write(stream, buffer, offset, length, position) {
      let at = position, n;
      try {
        // With O_APPEND the host appends whatever position we pass.
        if (timing && stream.flags & 1024) at = fs.fstatSync(stream.hostFd).size;
        n = fs.writeSync(stream.hostFd, buffer, offset, length, position);
      } catch (e) {
        fail(e);
      }
      stream.written = true;
      timing?.data(stream, true, at, n);
      return n;
    },
    llseek(stream, offset, whence) {
      let pos = offset;
      if (whence === 1) pos += stream.position;
      else if (whence === 2 && FS.isFile(stream.node.mode)) {
        try {
          pos += fs.fstatSync(stream.hostFd).size;
        } catch (e) {
          fail(e);
        }
      }
      if (pos < 0) throw new FS.ErrnoError(E.EINVAL);
      return pos;
    },
  };

  // Emscripten caches nodes by name and would keep serving a file a person
  // deleted from the host directory (and refuse to create it again), so
  // names under this filesystem are always looked up on the host afresh.
  const cachedLookup = FS.lookupNode;
  FS.lookupNode = (parent, name) => {
    if (parent.node_ops !== nodeOps) return cachedLookup(parent, name);
    const hash = FS.hashName(parent.id, name);
    for (let n = FS.nameTable[hash]; n; ) {
      const next = n.name_next;
      if (n.parent.id === parent.id && n.name === name) FS.hashRemoveNode(n);
      n = next;
    }
    return nodeOps.lookup(parent, name);
  };

  return {
    mount(mount) {
      const st = fs.statSync(mount.opts.root);
      const root = FS.createNode(null, "/", st.mode, 0);
      root.node_ops = nodeOps;
      root.stream_ops = streamOps;
      return root;
    },
  };
}
