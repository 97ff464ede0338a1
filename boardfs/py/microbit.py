# The micro:bit's helpers. Its MicroPython 1.9.2 has a flat filesystem: os
# has only listdir, remove, size and uname; files open as 'r', 'rb', 'w' or
# 'wb' and cannot seek; str has no encode; there is no sys.stdin.buffer,
# hashlib or binascii, and a few KB of heap: prepare installs these a few
# functions at a time (splitDefs). Data moves raw through microbit.uart,
# which is the same serial line, and every check is the sum of the bytes
# (a CRC in Python would be too slow there).
import os


# _l() is meta.py's _l for the micro:bit's one directory, whose few files
# fit one page: through the uart, every entry a file with mtime 0, and the
# page checked by the sum of its entries' bytes in 4 bytes. It collects
# its garbage before it returns: left for later, the records it drops
# would be freed between what later execs keep, and the few KB of heap
# would have no room for the code loader's 600 bytes in one piece.
def _l():
    from microbit import uart
    import gc
    total = 0
    for name in os.listdir():
        b = bytes(name, 'utf8')
        record = len(b).to_bytes(2, 'big') + b + bytes(1) + os.size(name).to_bytes(4, 'big') + bytes(4)
        uart.write(record)
        total += sum(record)
    uart.write(bytes(3) + (total & 0xffffffff).to_bytes(4, 'big'))
    gc.collect()


# _t(name) prints name's stat, '0 size 0', or '-' when there is no such
# file, sealed by '~' and the sum of the line's bytes in decimal.
def _t(name):
    try:
        line = '0 %d 0' % os.size(name)
    except OSError:
        line = '-'
    print(line + '~%d' % sum(bytes(line, 'utf8')))


# _x(name, offset, count) is _r for the micro:bit: up to count bytes of
# name from offset, through the uart, in frames (_f) of up to 64 bytes
# checked by the sum of their bytes, then the end frame. Files cannot
# seek: the bytes before offset are read and dropped. Raises OSError.
def _x(name, offset, count):
    from microbit import uart
    f = open(name, 'rb')
    total = 0
    try:
        while offset > 0:
            data = f.read(min(offset, 64))
            if not data:
                break
            offset -= len(data)
        while count > 0:
            data = f.read(min(count, 64))
            if not data:
                break
            count -= len(data)
            total += len(data)
            _f(uart.write, data, sum(data))
        _f(uart.write, b'', total)
    finally:
        f.close()


# _wu(f, count) is _w for the micro:bit: it writes count bytes from the
# uart to the open file f (the board cannot append, so an upload's file
# stays open across execs: openUpload in microbit.go), with _w's ready ack, acks
# and naks, in pieces of 30 bytes: two in flight fit the 63-byte receive
# buffer. Raises the OSError of a failed write at the end.
def _wu(f, count):
    from microbit import uart
    import micropython
    failed = None
    micropython.kbd_intr(-1)
    try:
        uart.write(b'\x06')
        while count:
            n = min(count, 30)
            piece = b''
            while len(piece) < n:
                more = uart.read(n - len(piece))
                if more:
                    piece += more
            count -= n
            if failed is None:
                try:
                    f.write(piece)
                except OSError as e:
                    failed = e
            uart.write(b'\x06' if failed is None else b'\x15')
    finally:
        micropython.kbd_intr(3)
    if failed:
        raise failed


# _cp(source, target) copies source to target, 64 bytes at a time: the
# micro:bit's rename. Raises OSError.
def _cp(source, target):
    src = open(source, 'rb')
    dst = open(target, 'wb')
    try:
        while 1:
            data = src.read(64)
            if not data:
                break
            dst.write(data)
    finally:
        src.close()
        dst.close()
