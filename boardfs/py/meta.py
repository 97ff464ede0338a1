# Metadata helpers: stat, list, rename, copy, hash.


# _t(path) returns path's stat as 'isdir size mtime' ('1 0 0' for a
# directory, mtime in seconds since the board's epoch). Raises OSError
# (ENOENT) when path is absent.
def _t(path):
    st = os.stat(path)
    return '%d %d %d' % (1 if st[0] & 0x4000 else 0, st[6], st[8])


# _l(directory) prints one line per entry, 'hexname isdir size mtime' (_h,
# _t; an entry that cannot be stat'ed, a dead mount say, gets size and
# mtime 0), then '~' and the CRC-32 of all those lines' bytes without
# their newlines, in 8 hex digits (parseList in list.go). Raises OSError
# when directory cannot be listed.
def _l(directory):
    crc = 0
    for entry in os.ilistdir(directory):
        try:
            line = _h(entry[0]) + ' ' + _t(_j(directory, entry[0]))
        except OSError:
            line = _h(entry[0]) + ' %d 0 0' % (1 if entry[1] == 0x4000 else 0)
        print(line)
        crc = _c(line.encode(), crc)
    print('~%08x' % (crc & 0xffffffff))


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


# _cp(source, target) copies source to target (created or truncated), 512
# bytes at a time. Raises OSError.
def _cp(source, target):
    buf = memoryview(bytearray(512))
    src = open(source, 'rb')
    dst = open(target, 'wb')
    try:
        while 1:
            n = src.readinto(buf)
            if not n:
                break
            dst.write(buf[:n])
    finally:
        src.close()
        dst.close()


# _fp(path, offset, sha) prints, sealed (_p), the count of path's bytes
# from offset, a space, and their SHA-256 in hex when sha, else their
# CRC-32 (_c) in 8 hex digits: Hash asks for a file's SHA-256, a download
# that ends for what it must have read (digest in read.go). Raises
# OSError, or ImportError when sha on a board without hashlib (the host
# asks only boards that have it).
def _fp(path, offset, sha):
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
            if h:
                h.update(buf[:n])
            else:
                crc = _c(buf[:n], crc)
    finally:
        f.close()
    _p('%d %s' % (size, ''.join(['%02x' % byte for byte in h.digest()]) if h else '%08x' % (crc & 0xffffffff)))
