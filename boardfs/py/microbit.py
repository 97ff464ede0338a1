# The micro:bit's helpers. Its MicroPython 1.9.2 has a flat filesystem: os
# has only listdir, remove, size and uname; files open as 'r', 'rb', 'w' or
# 'wb' and cannot seek; str has no encode; there is no sys.stdin.buffer,
# hashlib or binascii, and a few KB of heap: prepare installs these a few
# functions at a time (splitDefs). Data moves raw through microbit.uart,
# which is the same serial line, and every check is the sum of the bytes
# (a CRC in Python would be too slow there).
import os


# _h(name) returns the hex of name's UTF-8 bytes.
def _h(name):
    return ''.join(['%02x' % byte for byte in bytes(name, 'utf8')])


# _l() prints one line per file, 'hexname 0 size 0', then '~' and the sum
# of all those lines' bytes in decimal (parseList in list.go).
def _l():
    total = 0
    for name in os.listdir():
        line = '%s 0 %d 0' % (_h(name), os.size(name))
        print(line)
        total += sum(bytes(line, 'utf8'))
    print('~%d' % total)


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
