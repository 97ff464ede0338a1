# _w(path, count, append) reads count bytes from stdin into path, after
# what path holds when append is true, else in its place. Once the file is
# open and Ctrl-C is off (0x03 is data here) it sends ack (0x06): the host
# sends nothing before, so an open that fails raises before any data can
# reach the REPL as code. Then it takes the bytes off the line into a
# 4 KB buffer (a flash erase block) in pieces of 32, acks each piece as
# soon as it is in the buffer, and writes the buffer to flash when full:
# the host keeps no more unacknowledged than the input ring holds (send in
# write.go), and the ring takes what comes while the flash is written.
# Once a write failed it reads and drops the rest, and raises that write's
# OSError at the end.
def _w(path, count, append):
    import micropython
    f = open(path, 'ab' if append else 'wb')
    failed = None
    buf = memoryview(bytearray(4096))
    read = sys.stdin.buffer.readinto
    write = sys.stdout.buffer.write
    micropython.kbd_intr(-1)
    try:
        write(b'\x06')
        while count:
            n = min(count, 4096)
            got = 0
            while got < n:
                end = min(got + 32, n)
                while got < end:
                    got += read(buf[got:end])
                write(b'\x06')
            count -= n
            if not failed:
                try:
                    f.write(buf[:n])
                except OSError as e:
                    failed = e
    finally:
        micropython.kbd_intr(3)
        f.close()
    if failed:
        raise failed
