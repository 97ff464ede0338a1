# Sent with each upload's commit on the micro:bit, not installed: its heap
# is small.


# _ck(name) prints the sum of the bytes of the file name in decimal: the
# micro:bit, without hashlib, checks an upload by it (checkUpload in
# microbit.go). Raises OSError.
def _ck(name):
    f = open(name, 'rb')
    total = 0
    while 1:
        data = f.read(64)
        if not data:
            break
        total += sum(data)
    f.close()
    print(total)
