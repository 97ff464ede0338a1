# _w(path, count, append) reads count bytes from stdin into path, after
# what path holds when append is true, else in its place. Once the file is
# open and Ctrl-C is off (0x03 is data here) it sends ack (0x06): the host
# sends nothing before, so an open that fails raises before any data can
# reach the REPL as code. Then it reads pieces of 128 bytes and answers each
# with ack, or nak (0x15) once a write failed: it then reads and drops the
# rest, and raises that write's OSError at the end (send in write.go).
def _w(path, count, append):
    import micropython
    f = open(path, 'ab' if append else 'wb')
    failed = None
    buf = memoryview(bytearray(128))
    read = sys.stdin.buffer.readinto
    write = sys.stdout.buffer.write
    micropython.kbd_intr(-1)
    try:
        write(b'\x06')
        while count:
            n = min(count, 128)
            got = 0
            while got < n:
                got += read(buf[got:n])
            count -= n
            if failed is None:
                try:
                    f.write(buf[:n])
                except OSError as e:
                    failed = e
            write(b'\x06' if failed is None else b'\x15')
    finally:
        micropython.kbd_intr(3)
        f.close()
    if failed:
        raise failed
