# Sent once per connection, not installed: a connection is made only when
# no upload can be in flight, so every upload temporary is stale.


# _h(name) returns the hex of name's UTF-8 bytes: the sweep's report
# crosses the line in hex, so no byte of a name can pass for a separator
# or a REPL marker.
def _h(name):
    return ''.join(['%02x' % byte for byte in name.encode()])


# _sw(directory) removes the upload temporaries in directory and below:
# the files named '.ftpbridge-' and 8 lowercase hex digits, exactly the
# names isTempName in write.go matches. It prints each one's path in hex
# (_h). Raises OSError.
def _sw(directory):
    for entry in os.ilistdir(directory):
        name = entry[0]
        path = _j(directory, name)
        if entry[1] & 0x4000:
            _sw(path)
        elif len(name) == 19 and name[:11] == '.ftpbridge-' and not [c for c in name[11:] if c not in '0123456789abcdef']:
            os.remove(path)
            print(_h(path))
