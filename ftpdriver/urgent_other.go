//go:build !unix

package ftpdriver

import "net"

// keepUrgentInline does nothing outside Unix: the standard library's
// syscall names no SO_OOBINLINE for Windows, and the trap was seen (and
// the fix tested) on Linux only.
func keepUrgentInline(net.Conn) error { return nil }
