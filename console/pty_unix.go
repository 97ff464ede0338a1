//go:build linux || darwin

package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ptyPoll is how often a pseudo-terminal nobody has open is looked at.
const ptyPoll = 200 * time.Millisecond

// ServePTY makes a pseudo-terminal for c, linked at path (a symbolic link
// to the terminal's device, as socat's pty,link= makes), and gives the
// console to whoever opens it (screen, picocom, minicom), until ctx is
// done; it then removes the link and returns nil. It refuses a path that
// exists and is not a symbolic link. While someone else has the console,
// a program that opens the terminal is told who, and gets the console
// once they leave.
func ServePTY(ctx context.Context, path string, c *Console, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink == 0 {
		return fmt.Errorf("console: %s exists and is not a link left by ftpbridge: not replacing it", path)
	}
	master, slave, err := openPTY()
	if err != nil {
		return err
	}
	defer master.Close()
	// Opened and closed once, the terminal's other side reads as hung up
	// until someone opens it: that is how the console tells. It is made
	// raw meanwhile (the setting stays while the master is open): with
	// the default echo, the board's output would come back as typing
	// from a program that does not set its own (cat), or before it does.
	f, err := os.OpenFile(slave, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("console: opening %s: %w", slave, err)
	}
	err = makeRaw(f)
	_ = f.Close()
	if err != nil {
		return err
	}
	_ = os.Remove(path)
	if err := os.Symlink(slave, path); err != nil {
		return fmt.Errorf("console: linking %s to %s: %w", path, slave, err)
	}
	defer os.Remove(path)
	log.Info("console on a pseudo-terminal", "path", path, "device", slave)

	t := &ptyTerm{f: master}
	who := "the pseudo-terminal " + path
	refused := false
	for ctx.Err() == nil {
		open, err := ptyOpen(master)
		if err != nil {
			return fmt.Errorf("console: pseudo-terminal %s: %w", path, err)
		}
		if !open {
			refused = false
			sleep(ctx, ptyPoll)
			continue
		}
		t.reset()
		err = c.Attach(ctx, t, who)
		if errors.Is(err, ErrStopped) {
			return nil
		}
		if errors.Is(err, ErrInUse) {
			// What is typed here meanwhile is nobody's.
			t.drain()
			if !refused {
				refused = true
				_, _ = fmt.Fprintf(master, "\r\n[ftpbridge: %s: this terminal gets the console once they leave]\r\n", strings.TrimPrefix(err.Error(), "console: in use: "))
			}
			sleep(ctx, ptyPoll)
			continue
		}
		refused = false
		// Whoever had the terminal closed it, or the console stopped;
		// a program that still has it open gets the console again.
		sleep(ctx, ptyPoll)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// ptyOpen reports whether someone has the terminal's other side open: the
// master reads as hung up while nobody has.
func ptyOpen(master *os.File) (bool, error) {
	rc, err := master.SyscallConn()
	if err != nil {
		return false, err
	}
	var hup bool
	var perr error
	err = rc.Control(func(fd uintptr) {
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		_, perr = unix.Poll(p, 0)
		hup = p[0].Revents&unix.POLLHUP != 0
	})
	if err == nil {
		err = perr
	}
	if errors.Is(err, unix.EINTR) {
		return false, nil
	}
	return !hup, err
}

// ptyTerm is the master side of the console's pseudo-terminal as a
// Terminal. Close ends one person's use of it, not the terminal.
type ptyTerm struct {
	f      *os.File
	closed atomic.Bool
}

func (t *ptyTerm) reset() {
	t.closed.Store(false)
	_ = t.f.SetReadDeadline(time.Time{})
}

func (t *ptyTerm) Read(p []byte) (int, error) {
	if t.closed.Load() {
		return 0, io.EOF
	}
	n, err := t.f.Read(p)
	if err != nil && (t.closed.Load() || errors.Is(err, syscall.EIO)) {
		// EIO: the other side was closed.
		return n, io.EOF
	}
	return n, err
}

func (t *ptyTerm) Write(p []byte) (int, error) { return t.f.Write(p) }

func (t *ptyTerm) SetWriteDeadline(d time.Time) error { return t.f.SetWriteDeadline(d) }

// Close wakes a Read in progress; the terminal stays.
func (t *ptyTerm) Close() error {
	t.closed.Store(true)
	_ = t.f.SetReadDeadline(time.Now())
	return nil
}

// drain discards what was typed on the terminal.
func (t *ptyTerm) drain() {
	var buf [512]byte
	for {
		_ = t.f.SetReadDeadline(time.Now().Add(time.Millisecond))
		n, err := t.f.Read(buf[:])
		if n == 0 || err != nil {
			break
		}
	}
	_ = t.f.SetReadDeadline(time.Time{})
}

// makeRaw sets the terminal f to pass every byte untouched: no echo, no
// line editing, no signals, no newline translation.
func makeRaw(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("console: pty: %w", err)
	}
	var rawErr error
	err = rc.Control(func(fd uintptr) {
		t, err := unix.IoctlGetTermios(int(fd), getTermios)
		if err != nil {
			rawErr = err
			return
		}
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cflag &^= unix.CSIZE | unix.PARENB
		t.Cflag |= unix.CS8
		t.Cc[unix.VMIN] = 1
		t.Cc[unix.VTIME] = 0
		rawErr = unix.IoctlSetTermios(int(fd), setTermios, t)
	})
	if err == nil {
		err = rawErr
	}
	if err != nil {
		return fmt.Errorf("console: making the pty raw: %w", err)
	}
	return nil
}
