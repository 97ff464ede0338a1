package console

import (
	"bytes"
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The ioctls that read and set a terminal's settings.
const (
	getTermios = unix.TIOCGETA
	setTermios = unix.TIOCSETA
)

// openPTY allocates a pseudo-terminal and returns its master side and the
// path of its other side (posix_openpt, grantpt, unlockpt, ptsname, as
// macOS's libc does them).
func openPTY() (*os.File, string, error) {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, "", fmt.Errorf("console: open /dev/ptmx: %w", err)
	}
	rc, err := master.SyscallConn()
	if err != nil {
		master.Close()
		return nil, "", fmt.Errorf("console: pty: %w", err)
	}
	var name [128]byte
	var ioctlErr error
	err = rc.Control(func(fd uintptr) {
		for _, req := range []uintptr{unix.TIOCPTYGRANT, unix.TIOCPTYUNLK} {
			if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, req, 0); e != 0 {
				ioctlErr = e
				return
			}
		}
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, unix.TIOCPTYGNAME, uintptr(unsafe.Pointer(&name[0]))); e != 0 {
			ioctlErr = e
		}
	})
	if err == nil {
		err = ioctlErr
	}
	if err != nil {
		master.Close()
		return nil, "", fmt.Errorf("console: unlock pty: %w", err)
	}
	n := bytes.IndexByte(name[:], 0)
	if n < 0 {
		n = len(name)
	}
	return master, string(name[:n]), nil
}
