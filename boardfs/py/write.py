# _w(path, count, append) reads count bytes from stdin into path, after
# what path holds when append is true, else in its place. Once the file is
# open and Ctrl-C is off (0x03 is data here) it sends ack (0x06): the host
# sends nothing before, so an open that fails raises before any data can
# reach the REPL as code. Then it takes the bytes off the line in pieces
# of 32, acks each piece as soon as it has it, and writes each 256 bytes
# (a flash page) to the file as they fill: the host keeps no more
# unacknowledged than the input ring holds (send in write.go), and the
# ring takes what comes while the flash is written. A page's program is
# short; the ring has to cover only the erase that starts each 4 KB
# block, not that erase and the block's sixteen programs in one pause.
# Once a write failed it reads and drops the rest, and raises that write's
# OSError at the end.
def _w(path, count, append):
    import micropython
    f = open(path, 'ab' if append else 'wb')
    failed = None
    buf = memoryview(bytearray(256))
    read = sys.stdin.buffer.readinto
    write = sys.stdout.buffer.write
    micropython.kbd_intr(-1)
    try:
        write(b'\x06')
        while count:
            n = min(count, 256)
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
