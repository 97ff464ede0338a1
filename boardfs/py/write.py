# _w(path, append) reads blocks from stdin into path, after what path
# holds when append is true, else in its place: each block is 'B', its
# length in 2 bytes, big endian (1 to 4096), then its bytes; 'E' ends.
# The host decides block by block whether to go on, so an exec ends when
# the host's bytes run out or another operation wants the board. Any other
# byte where a block should start (a host that gave up on the upload and
# sends Ctrl-C to get its prompt back) ends the reading with ValueError
# (the byte's value), so the board is never left reading a stream nobody
# sends. Once the file is
# open and Ctrl-C is off (0x03 is data here) it sends ack (0x06): the host
# sends nothing before, so an open that fails raises before any data can
# reach the REPL as code. Then it takes the bytes off the line in pieces
# of 32 (a block's last may be shorter), acks each piece as soon as it has
# it, and writes each 256 bytes (a flash page) to the file as they fill:
# the host keeps no more unacknowledged than the input ring holds
# (sendBlocks in write.go), and the ring takes what comes while the flash
# is written. A page's program is short; the ring has to cover only the
# erase that starts each 4 KB block, not that erase and the block's
# sixteen programs in one pause. After a write that took more than 10 ms
# (an erase) it follows the acks of the 7 pieces its ring held with 61
# bytes 0x16 (SYN, skipped by the host): they fill a USB-serial adapter's
# 62-byte packet, which then goes at once instead of at the adapter's
# latency timer (syncPad in write.go). Once a write failed it reads and
# drops the rest, and raises that write's OSError at the end.
def _w(path, append):
    import micropython
    from time import ticks_ms, ticks_diff
    f = open(path, 'ab' if append else 'wb')
    failed = None
    pad = 0
    buf = memoryview(bytearray(256))
    # Slices made once: one made per piece would leave garbage the length
    # of the stream. stdin's readinto fills all it is given.
    pieces = [buf[i:i + 32] for i in range(0, 256, 32)]
    read = sys.stdin.buffer.readinto
    write = sys.stdout.buffer.write
    micropython.kbd_intr(-1)
    try:
        write(b'\x06')
        while 1:
            read(pieces[0][:1])
            if buf[0] == 69:
                break
            if buf[0] != 66:
                raise ValueError(buf[0])
            read(pieces[0][:2])
            count = buf[0] << 8 | buf[1]
            while count:
                n = min(count, 256)
                k = 0
                while k < n:
                    read(pieces[k >> 5] if k + 32 <= n else buf[k:n])
                    write(b'\x06')
                    k += 32
                    pad -= 1
                    if not pad:
                        write(b'\x16' * 61)
                count -= n
                if not failed:
                    t = ticks_ms()
                    try:
                        f.write(buf if n == 256 else buf[:n])
                    except OSError as e:
                        failed = e
                    if ticks_diff(ticks_ms(), t) > 10:
                        pad = 7
    finally:
        micropython.kbd_intr(3)
        f.close()
    if failed:
        raise failed
