package ftpdriver

import (
	"net"
	"sync"
)

// controlConn is an accepted control connection that forgets itself from
// the server when closed.
type controlConn struct {
	net.Conn
	s    *Server
	once sync.Once
}

func (c *controlConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
	})
	// Unwrapped: the library tells a closed connection by the error's text.
	return c.Conn.Close()
}
