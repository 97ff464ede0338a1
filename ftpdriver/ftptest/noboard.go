package ftptest

import (
	"fmt"
	"testing"

	"github.com/ftpbridge/ftpbridge/boardfs"
	"github.com/ftpbridge/ftpbridge/ftpdriver"
)

// StartUnplugged starts an FTP server on 127.0.0.1 whose board is never
// plugged in: every board operation answers "board not connected". It is
// for what the board plays no part in (logins, limits, the replies the
// server gives by itself), and starts in a moment. Server.Board and
// Server.Link are nil. The server stops at tb's cleanup.
func StartUnplugged(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s := &Server{opts: opts}
	s.Addr, s.Spool, s.stop = serve(tb, opts, testLogger(tb, opts), func(dopts ftpdriver.Options) *ftpdriver.Server {
		return ftpdriver.New(unplugged{}, dopts)
	})
	return s
}

// StartUnpluggedMulti starts an FTP server over one folder per name, as
// ftpbridge --all serves them, none of whose boards is plugged in: "/"
// lists the names, and everything inside them answers "board not
// connected". MultiServer.Boards and Links are nil.
func StartUnpluggedMulti(tb testing.TB, opts Options, names ...string) *MultiServer {
	tb.Helper()
	set := unpluggedBoards(names)
	s := &MultiServer{opts: opts}
	s.Addr, s.Spool, s.stop = serve(tb, opts, testLogger(tb, opts), func(dopts ftpdriver.Options) *ftpdriver.Server {
		return ftpdriver.NewMulti(set, dopts)
	})
	return s
}

// unplugged is a board that is not there.
type unplugged struct{}

func (unplugged) FS() (*boardfs.FS, error) {
	return nil, fmt.Errorf("ftptest: unplugged board: %w", boardfs.ErrNotConnected)
}

func (unplugged) Info() boardfs.Info { return boardfs.Info{} }

type unpluggedBoards []string

func (u unpluggedBoards) Names() []string { return u }

func (u unpluggedBoards) Board(name string) (ftpdriver.Board, bool) {
	for _, n := range u {
		if n == name {
			return unplugged{}, true
		}
	}
	return nil, false
}
