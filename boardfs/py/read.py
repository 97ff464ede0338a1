# _r(path, offset, count) sends up to count bytes of path from offset on
# stdout, in frames (_f) of up to 1000 bytes checked by CRC-32 (_c), then
# the end frame. Raises OSError (the file is missing, say) before its first
# frame, or after some: readRange in read.go tells them apart.
def _r(path, offset, count):
    f = open(path, 'rb')
    try:
        f.seek(offset)
        buf = memoryview(bytearray(1000))
        write = sys.stdout.buffer.write
        total = 0
        while count:
            n = f.readinto(buf[:min(count, 1000)])
            if not n:
                break
            data = buf[:n]
            _f(write, data, _c(data))
            count -= n
            total += n
        _f(write, b'', total)
    finally:
        f.close()
