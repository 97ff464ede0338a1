# _sv() prints the free and total bytes of the filesystem of the current
# directory ('free total'), sealed (_p). Sent with each call, not installed.
def _sv():
    st = os.statvfs(os.getcwd())
    _p('%d %d' % (st[0] * st[4], st[0] * st[2]))
