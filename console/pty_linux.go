package console

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// The ioctls that read and set a terminal's settings.
const (
	getTermios = unix.TCGETS
	setTermios = unix.TCSETS
)

// openPTY allocates a pseudo-terminal and returns its master side and the
// path of its other side.
func openPTY() (*os.File, string, error) {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, "", fmt.Errorf("console: open /dev/ptmx: %w", err)
	}
	// Through SyscallConn, not Fd, which would make the master blocking
	// and its reads impossible to wake.
	rc, err := master.SyscallConn()
	if err != nil {
		master.Close()
		return nil, "", fmt.Errorf("console: pty: %w", err)
	}
	var n int
	var ioctlErr error
	err = rc.Control(func(fd uintptr) {
		if ioctlErr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ioctlErr != nil {
			return
		}
		n, ioctlErr = unix.IoctlGetInt(int(fd), unix.TIOCGPTN)
	})
	if err == nil {
		err = ioctlErr
	}
	if err != nil {
		master.Close()
		return nil, "", fmt.Errorf("console: unlock pty: %w", err)
	}
	return master, fmt.Sprintf("/dev/pts/%d", n), nil
}
