package boardfs

import (
	"context"
	"time"
)

// clockSlack is how far the board's clock may be from the host's before
// the bridge sets it: a second's drift is no reason to touch it.
const clockSlack = time.Minute

// boardTime is the board's clock as Info read it.
func (f *FS) boardTime() time.Time {
	return time.Date(f.info.Epoch, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(f.info.Clock) * time.Second)
}

// setClock gives the board the time now, in UTC, when its clock is off by
// more than clockSlack and it has machine.RTC. RTC.datetime takes (year,
// month, day, weekday with Monday 0, hours, minutes, seconds, subseconds)
// on every port that has it.
func (f *FS) setClock(ctx context.Context, now time.Time) error {
	was := f.boardTime()
	if !f.info.RTC || f.info.Clock == 0 || was.Sub(now).Abs() <= clockSlack {
		return nil
	}
	now = now.UTC()
	code := pyOnce("clock", "_st", now.Year(), int(now.Month()), now.Day(), (int(now.Weekday())+6)%7, now.Hour(), now.Minute(), now.Second())
	if _, err := f.call(ctx, "set clock", "/", code); err != nil {
		return err
	}
	f.info.Clock = int64(now.Sub(time.Date(f.info.Epoch, 1, 1, 0, 0, 0, 0, time.UTC)) / time.Second)
	f.log.Info("set the board's clock (UTC)", "was", was.Format(time.DateTime), "now", now.Format(time.DateTime))
	return nil
}
