# Metadata helpers: stat, list, rename, copy, hash.


# _t(path) returns path's stat as 'isdir size mtime' ('1 0 0' for a
# directory, mtime in seconds since the board's epoch). Raises OSError
# (ENOENT) when path is absent.
def _t(path):
    st = os.stat(path)
    return '%d %d %d' % (1 if st[0] & 0x4000 else 0, st[6], st[8])


# _li holds the listings under way (_l), by the key the host gave each.
_li = {}


# _l(directory, key, budget, first) sends the next page of directory's
# listing on stdout, in binary (decodeListPage in list.go). Each entry is
# the length of its name in 2 bytes, big endian (under 1024, so the first
# byte is never 0x04, which would end the REPL's output), the name in
# UTF-8, a byte that is 1 for a directory, then its size and mtime in 4
# bytes each, big endian; an entry that cannot be stat'ed, a dead mount
# say, gets 0 and 0. A page ends after the entry that takes it to budget
# bytes, or after the last entry: two zero bytes, a byte that is 1 when
# more pages may follow (0: this was the last), and the CRC-32 (_c) of the
# page's entries in 4 bytes.
# The first page (first true) starts the listing under key, a later page
# goes on with it (KeyError when the board lost it, in a reset), and the
# last forgets it. Raises OSError when directory cannot be listed.
def _l(directory, key, budget, first):
    if first:
        if len(_li) > 7:
            _li.clear()  # listings the host gave up on
        _li[key] = os.ilistdir(directory)
    write = sys.stdout.buffer.write
    crc = 0
    sent = 0
    more = 0
    for entry in _li[key]:
        try:
            st = os.stat(_j(directory, entry[0]))
        except OSError:
            st = (entry[1],) + (0,) * 8  # its type from the listing
        name = entry[0].encode()
        # Sizes fit 4 bytes (FAT32 and littlefs files stay under 4 GB);
        # an mtime may be negative (a FAT date before the board's epoch).
        record = len(name).to_bytes(2, 'big') + name + bytes([st[0] >> 14 & 1]) + st[6].to_bytes(4, 'big') + (st[8] & 0xffffffff).to_bytes(4, 'big')
        write(record)
        crc = _c(record, crc)
        sent += len(record)
        if sent >= budget:
            more = 1
            break
    if not more:
        del _li[key]
    write(b'\x00\x00' + bytes([more]) + (crc & 0xffffffff).to_bytes(4, 'big'))


# _mv(old, new) renames old to new, replacing a file at new. FAT refuses to
# rename over a file (EEXIST) where littlefs and POSIX replace it: new is
# removed only then, so a rename that fails for another reason never costs
# the target. Raises the OSError of the failed rename.
def _mv(old, new):
    try:
        os.rename(old, new)
    except OSError as e:
        if e.args[0] != 17:  # EEXIST
            raise
        os.remove(new)
        os.rename(old, new)


# _fs(path, offset, sha) returns the count of path's bytes from offset, a
# space, and their SHA-256 in hex when sha, else their CRC-32 (_c) in 8 hex
# digits. Raises OSError, or ImportError when sha on a board without
# hashlib (the host asks only boards that have it).
def _fs(path, offset, sha):
    h = None
    if sha:
        import hashlib
        h = hashlib.sha256()
    crc = 0
    size = 0
    buf = memoryview(bytearray(512))
    f = open(path, 'rb')
    try:
        f.seek(offset)
        while 1:
            n = f.readinto(buf)
            if not n:
                break
            size += n
            # A slice only for the last piece: garbage made every 512
            # bytes outlived the VM's exec on a 30 KB heap (1 MB file).
            d = buf if n == 512 else buf[:n]
            if h:
                h.update(d)
            else:
                crc = _c(d, crc)
    finally:
        f.close()
    return '%d %s' % (size, ''.join(['%02x' % byte for byte in h.digest()]) if h else '%08x' % (crc & 0xffffffff))


# _fp(path, offset, sha) prints _fs's answer, sealed (_p): Hash asks for a
# file's SHA-256, a download that ends for what it must have read (digest
# in read.go).
def _fp(path, offset, sha):
    _p(_fs(path, offset, sha))


# _vr(tmp, path, want) puts an upload's temporary file in place of path
# (_mv) only if _fs's answer for it starts with want (its size, a space and
# the start of its SHA-256, from the host), and prints that answer, sealed:
# an upload's check and its rename in one exec, whose call stays short.
def _vr(tmp, path, want):
    got = _fs(tmp, 0, 1)
    if got.startswith(want):
        _mv(tmp, path)
    _p(got)
