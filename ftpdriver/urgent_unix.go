//go:build unix

package ftpdriver

import (
	"fmt"
	"net"
	"syscall"
)

// keepUrgentInline sets SO_OOBINLINE on conn's socket, so that TCP urgent
// data is read in the stream like any other byte. A connection that is not
// a socket (a net.Pipe in a test) is left as it is.
func keepUrgentInline(conn net.Conn) error {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("ftpdriver: SO_OOBINLINE: %w", err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_OOBINLINE, 1)
	}); err != nil {
		return fmt.Errorf("ftpdriver: SO_OOBINLINE: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("ftpdriver: SO_OOBINLINE: %w", serr)
	}
	return nil
}
