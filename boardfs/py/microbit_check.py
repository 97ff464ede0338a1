# Sent with each upload's commit, and at the end of each download, on the
# micro:bit, not installed: its heap is small.


# _ck(name, offset) prints the count of the bytes of the file name from
# offset and their sum, in decimal: the micro:bit, without hashlib or
# binascii, checks an upload by it (checkUpload in microbit.go), and a
# download that ends (digest). Files cannot seek: the bytes before offset
# are read and dropped. Raises OSError.
def _ck(name, offset):
    f = open(name, 'rb')
    size = 0
    total = 0
    while 1:
        data = f.read(64)
        if not data:
            break
        if offset >= len(data):
            offset -= len(data)
            continue
        data = data[offset:]
        offset = 0
        size += len(data)
        total += sum(data)
    f.close()
    print(size, total)
