# Sent once per connection, not installed: a connection is made only when
# no upload can be in flight, so every upload temporary is stale.


# _sw(directory) removes the upload temporaries (the names uploadTemp in
# write.go matches: '.' name '.' 8 hex digits '.ftpbridge') in directory
# and below, and prints each one's path in hex (_h). Raises OSError.
def _sw(directory):
    for entry in os.ilistdir(directory):
        name = entry[0]
        path = _j(directory, name)
        if entry[1] & 0x4000:
            _sw(path)
        elif len(name) >= 20 and name[0] == '.' and name[-10:] == '.ftpbridge' and name[-19] == '.' and not [c for c in name[-18:-10] if c not in '0123456789abcdef']:
            os.remove(path)
            print(_h(path))
