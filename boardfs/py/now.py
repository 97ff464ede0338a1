# Asked with prepare's question when the host keeps the board's clock set:
# prints the board's time.time(), seconds since its epoch, so that a clock
# a reset took back to its epoch is set again without an exec of its own.
import time
print('clock=%d' % time.time())
