# _sw() is sweep.py's _sw for the micro:bit's flat filesystem: it removes
# the files named '.ftpbridge-' and 8 lowercase hex digits, exactly the
# names isTempName in write.go matches, and prints each one's name in hex.
def _sw():
    for name in os.listdir():
        if len(name) == 19 and name[:11] == '.ftpbridge-' and not [c for c in name[11:] if c not in '0123456789abcdef']:
            os.remove(name)
            print(''.join(['%02x' % byte for byte in bytes(name, 'utf8')]))
