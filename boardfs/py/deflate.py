# Helpers for boards with the deflate module (MicroPython 1.21+; deflate.go).
# Each segment is one raw deflate stream of its own.


# _zc(data) returns data deflated as a raw stream with an 8 KB window
# (wbits 13). Raises ValueError where the firmware cannot compress (the
# host asks only boards that can).
def _zc(data):
    import deflate, io
    out = io.BytesIO()
    z = deflate.DeflateIO(out, deflate.RAW, 13)
    z.write(data)
    z.close()
    return out.getvalue()


# _z(path, offset, count) reads up to count bytes of path from offset and
# sends 'Z' and frames (_f, CRC-32) of them deflated, or 'P' and frames of
# the plain bytes when deflating does not shrink them, then the end frame,
# whose count is of the bytes framed (decodeDeflated in deflate.go).
# Raises OSError before sending anything.
def _z(path, offset, count):
    f = open(path, 'rb')
    try:
        f.seek(offset)
        data = f.read(count)
    finally:
        f.close()
    small = _zc(data)
    write = sys.stdout.buffer.write
    if len(small) < len(data):
        write(b'Z')
        data = small
    else:
        write(b'P')
    small = None
    view = memoryview(data)
    sent = 0
    while sent < len(view):
        piece = view[sent:sent + min(len(view) - sent, 1000)]
        _f(write, piece, _c(piece))
        sent += len(piece)
    _f(write, b'', sent)


# _wz(path, count, append, wbits) is _w for a deflated segment: it reads
# count bytes of a raw deflate stream whose window is 2**wbits, with _w's
# ready ack and an ack per 32 bytes, then inflates them into path (after
# what it holds when append, else in its place). Raises OSError, or
# ValueError when the stream is damaged.
def _wz(path, count, append, wbits):
    import micropython, deflate, io
    f = open(path, 'ab' if append else 'wb')
    try:
        data = bytearray(count)
        view = memoryview(data)
        read = sys.stdin.buffer.readinto
        write = sys.stdout.buffer.write
        got = 0
        micropython.kbd_intr(-1)
        try:
            write(b'\x06')
            while got < count:
                end = min(count, got + 32)
                while got < end:
                    got += read(view[got:end])
                write(b'\x06')
        finally:
            micropython.kbd_intr(3)
        z = deflate.DeflateIO(io.BytesIO(data), deflate.RAW, wbits)
        buf = memoryview(bytearray(512))
        while 1:
            n = z.readinto(buf)
            if not n:
                break
            f.write(buf[:n])
    finally:
        f.close()
