# Helpers every board with an os module gets first: the others call them.
# Like every helper, in the Python of MicroPython 1.9: no f-strings.
import os, sys


# _j(directory, name) returns the path of name inside directory.
def _j(directory, name):
    return directory + name if directory[-1:] == '/' else directory + '/' + name


# _c(data, crc=0) is binascii's crc32: the CRC-32 of data, carrying on from
# crc. A board without binascii gets one that answers 0, which the host
# reads as "not checked" (checkNone in frames.go).
try:
    from binascii import crc32 as _c
except ImportError:
    try:
        from ubinascii import crc32 as _c
    except ImportError:
        _c = lambda b, c=0: 0


# _p(line) prints line sealed: followed by '~' and the CRC-32 of its bytes
# in 8 hex digits, which the host checks (unseal in seal.go), so a size or
# a hash damaged on the line is asked for again rather than believed.
def _p(line):
    print(line + '~%08x' % (_c(line.encode()) & 0xffffffff))
