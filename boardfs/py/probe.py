# prepare's question, asked after every entry to raw mode. It prints True
# when the board has binary stdin (False: it gets the micro:bit's helpers),
# 'deflate' when it has that module, and the version of the helpers it
# holds (_fb, set last by prepare), if any.
import sys
print(hasattr(sys, 'stdin') and hasattr(sys.stdin, 'buffer'))
try:
    import deflate
    print('deflate')
except ImportError:
    pass
try:
    print(_fb)
except NameError:
    pass
