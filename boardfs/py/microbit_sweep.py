# _sw() is sweep.py's _sw for the micro:bit's flat filesystem, whose upload
# temporaries are named '.ftpbridge-' and 8 hex digits.
def _sw():
    for name in os.listdir():
        if len(name) == 19 and name[:11] == '.ftpbridge-':
            os.remove(name)
            print(_h(name))
