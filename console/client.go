package console

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Terminal is one person's connection to a console: a TCP stream or a
// pseudo-terminal. Read returns what the person types; Close must wake a
// Read in progress.
type Terminal interface {
	io.ReadWriteCloser
}

// maxPending bounds the board's output waiting for a terminal that reads
// slowly; past it, output is dropped and the person told how much.
const maxPending = 256 << 10

// writeWait is how long one write to a terminal may take before the
// terminal is taken for gone.
const writeWait = 10 * time.Second

// client is a person attached to a console. What is sent to them goes
// through a queue and a goroutine of its own, so that the board's output
// never waits for a slow terminal.
type client struct {
	t     Terminal
	who   string // "127.0.0.1:53422", "the pseudo-terminal /tmp/esp32"
	since time.Time

	mu        sync.Mutex
	queue     []byte
	dropped   int
	lineStart bool // the last byte queued ended a line
	closed    bool
	more      chan struct{} // cap 1: the queue grew
	done      chan struct{} // closed when the writer stops
}

func newClient(t Terminal, who string) *client {
	cl := &client{t: t, who: who, since: time.Now(), lineStart: true,
		more: make(chan struct{}, 1), done: make(chan struct{})}
	go cl.writer()
	return cl
}

// String says who the client is, for the person refused and for logs.
func (cl *client) String() string {
	return fmt.Sprintf("%s (since %s)", cl.who, cl.since.Format("15:04:05"))
}

// send queues p for the terminal.
func (cl *client) send(p []byte) {
	if len(p) == 0 {
		return
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.closed {
		return
	}
	if len(cl.queue)+len(p) > maxPending {
		cl.dropped += len(p)
		return
	}
	cl.queue = append(cl.queue, p...)
	cl.lineStart = p[len(p)-1] == '\n'
	select {
	case cl.more <- struct{}{}:
	default:
	}
}

// say queues a line of ftpbridge's own, on a line of its own.
func (cl *client) say(format string, args ...any) {
	cl.mu.Lock()
	lead := ""
	if !cl.lineStart {
		lead = "\r\n"
	}
	cl.mu.Unlock()
	cl.send([]byte(lead + notice(fmt.Sprintf(format, args...))))
}

// notice is a line of ftpbridge's own, with the control characters of
// what it quotes escaped: a file name an FTP client chose ("RETR
// /\x1b]52;c;...") reaches the person's terminal in these lines, and must
// not drive it (set its title or clipboard, clear the screen).
func notice(text string) string {
	var b strings.Builder
	b.WriteString("[ftpbridge: ")
	for _, r := range text {
		if unicode.IsControl(r) {
			fmt.Fprintf(&b, "\\x%02x", r)
			continue
		}
		b.WriteRune(r)
	}
	b.WriteString("]\r\n")
	return b.String()
}

// atLineStart reports whether the last byte queued ended a line.
func (cl *client) atLineStart() bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.lineStart
}

// writer sends the queue to the terminal until the client is closed.
func (cl *client) writer() {
	defer close(cl.done)
	for {
		cl.mu.Lock()
		p := cl.queue
		dropped := cl.dropped
		cl.queue, cl.dropped = nil, 0
		closed := cl.closed
		cl.mu.Unlock()
		if dropped > 0 {
			p = append(p, fmt.Sprintf("\r\n[ftpbridge: %d bytes of the board's output dropped: this terminal reads too slowly]\r\n", dropped)...)
		}
		if len(p) > 0 {
			if err := cl.write(p); err != nil {
				cl.close()
				return
			}
			continue
		}
		if closed {
			return
		}
		<-cl.more
	}
}

// deadliner is a terminal whose writes can be bounded (net.Conn, a pty's
// *os.File).
type deadliner interface {
	SetWriteDeadline(t time.Time) error
}

func (cl *client) write(p []byte) error {
	if d, ok := cl.t.(deadliner); ok {
		_ = d.SetWriteDeadline(time.Now().Add(writeWait))
	}
	_, err := cl.t.Write(p)
	return err
}

// close stops the writer once the queue is sent (within writeWait) and
// closes the terminal.
func (cl *client) close() {
	cl.mu.Lock()
	already := cl.closed
	cl.closed = true
	cl.mu.Unlock()
	select {
	case cl.more <- struct{}{}:
	default:
	}
	if already {
		return
	}
	go func() {
		select {
		case <-cl.done:
		case <-time.After(writeWait):
		}
		_ = cl.t.Close()
	}()
}

// closeNow closes the terminal at once, queue or not.
func (cl *client) closeNow() {
	cl.close()
	_ = cl.t.Close()
}
