package boardfs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ftpbridge/ftpbridge/repl"
)

// clockSlack is how far the board's clock may be from the host's before
// the bridge sets it: a second's drift is no reason to touch it.
const clockSlack = time.Minute

// clockCode returns the code that gives the board the time now, in UTC,
// and the time its clock said, secs seconds since its epoch (0: unknown).
// The code is "" when there is nothing to do: the board has no
// machine.RTC, its clock is unknown, or it is within clockSlack of now.
// RTC.datetime takes (year, month, day, weekday with Monday 0, hours,
// minutes, seconds, subseconds) on every port that has it.
func (f *FS) clockCode(secs int64, now time.Time) (code string, was time.Time) {
	was = f.epoch.Add(time.Duration(secs) * time.Second)
	if !f.info.RTC || secs == 0 || was.Sub(now).Abs() <= clockSlack {
		return "", was
	}
	now = now.UTC()
	return pyOnce("clock", "_st", now.Year(), int(now.Month()), now.Day(), (int(now.Weekday())+6)%7, now.Hour(), now.Minute(), now.Second()), was
}

// setClock gives the board the time now when the clock Info read is off
// (clockCode), on connect.
func (f *FS) setClock(ctx context.Context, now time.Time) error {
	code, was := f.clockCode(f.info.Clock, now)
	if code == "" {
		return nil
	}
	if _, err := f.call(ctx, "set clock", "/", code); err != nil {
		return err
	}
	f.info.Clock = int64(now.Sub(f.epoch) / time.Second)
	f.log.Info("set the board's clock (UTC)", "was", was.Format(time.DateTime), "now", now.UTC().Format(time.DateTime))
	return nil
}

// askClock is what prepare adds to its question when it keeps the board's
// clock set: the board prints its clock with the rest of the answer.
// Only a connected FS (Info read) with a Clock asks, and only a board with
// machine.RTC, whose clock a reset takes back to its epoch (ESP32,
// ESP8266).
func (f *FS) askClock() string {
	if f.opts.Clock == nil || !f.info.RTC {
		return ""
	}
	return "\n" + pyCode("now")
}

// resetClock sets the board's clock again from prepare, which runs after
// every reset: fields are prepare's answer, with the clock askClock asked
// for. A board whose clock is right costs nothing more. A board that
// refuses the time is logged and left as it is: wrong dates are no reason
// to stop serving its files.
func (f *FS) resetClock(ctx context.Context, c *repl.Conn, fields []string) error {
	if f.askClock() == "" {
		return nil
	}
	var secs int64
	for _, field := range fields {
		if v, ok := strings.CutPrefix(field, "clock="); ok {
			secs, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	now := f.opts.Clock()
	code, was := f.clockCode(secs, now)
	if code == "" {
		return nil
	}
	if _, err := c.Exec(ctx, code); err != nil {
		var pe *PyError
		if errors.As(err, &pe) {
			f.log.Warn("the board refused the time", "err", err)
			return nil
		}
		return fmt.Errorf("boardfs: set clock: %w", err)
	}
	f.log.Info("set the board's clock again (UTC)", "was", was.Format(time.DateTime), "now", now.UTC().Format(time.DateTime))
	return nil
}
