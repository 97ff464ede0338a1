# _f(write, data, check) sends one download frame through write, as
# decodeFrames in frames.go reads them: the length of data in 2 bytes, big
# endian (1 to 1000, so the first byte is never 0x04, which would end the
# REPL's output), then data, then check in 4 bytes, big endian: the CRC-32
# of data, the sum of its bytes on the micro:bit, 0 where the board has
# neither. A transfer ends with the empty frame whose check is the count of
# data bytes in all the frames before it: _f(write, b'', total).
def _f(write, data, check):
    write(len(data).to_bytes(2, 'big'))
    write(data)
    write(check.to_bytes(4, 'big'))
