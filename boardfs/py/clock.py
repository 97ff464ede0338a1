# _st(year, month, day, weekday, hours, minutes, seconds) sets the board's
# clock through machine.RTC (weekday: Monday is 0), as every port that has
# it takes it. Sent whenever the clock is off (on connect, after a reset),
# not installed. Raises ImportError or AttributeError where there is no RTC
# (the host asks only boards that have it).
def _st(year, month, day, weekday, hours, minutes, seconds):
    import machine
    machine.RTC().datetime((year, month, day, weekday, hours, minutes, seconds, 0))
