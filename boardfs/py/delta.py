# Helpers for moving only what changed (delta.go).


# _bs(path, block, with_sha) prints, in one pass over path, the CRC-32 of
# each block of that many bytes as 8 hex digits run together, then a space,
# path's size, a space, and its SHA-256 in hex when with_sha, else '-'
# (parseBlockSums in delta.go). Raises OSError.
def _bs(path, block, with_sha):
    h = None
    if with_sha:
        import hashlib
        h = hashlib.sha256()
    buf = memoryview(bytearray(block))
    write = sys.stdout.write
    size = 0
    f = open(path, 'rb')
    try:
        while 1:
            n = f.readinto(buf)
            if not n:
                break
            d = buf if n == block else buf[:n]
            write('%08x' % (_c(d) & 0xffffffff))
            size += n
            if h:
                h.update(d)
    finally:
        f.close()
    print('', size, ''.join(['%02x' % byte for byte in h.digest()]) if h else '-')


# _ca(source, target, offset, count, append) copies count bytes of source
# from offset to the end of target (target is created anew unless append):
# a segment of an upload that the board already holds. Raises OSError, EIO
# when source ends early.
def _ca(source, target, offset, count, append):
    src = open(source, 'rb')
    dst = open(target, 'ab' if append else 'wb')
    buf = memoryview(bytearray(512))
    try:
        src.seek(offset)
        while count:
            n = src.readinto(buf[:min(count, 512)])
            if not n:
                raise OSError(5)  # EIO
            dst.write(buf[:n])
            count -= n
    finally:
        src.close()
        dst.close()
