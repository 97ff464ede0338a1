package console

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"
)

// Consoles are the consoles a listener offers, one per board, by name.
// Both methods must be quick and safe for concurrent use.
type Consoles interface {
	// Names lists the boards there now, in any order.
	Names() []string
	// Console returns a board's console; false when there is none now.
	Console(name string) (*Console, bool)
}

// One is Consoles of a single board.
type One struct{ C *Console }

// Names lists the one board.
func (o One) Names() []string { return []string{o.C.Name()} }

// Console returns the one console, whatever the name.
func (o One) Console(string) (*Console, bool) { return o.C, true }

// ListenOptions say who may use the consoles of a listener.
type ListenOptions struct {
	Logger *slog.Logger
	// User and Password, when set, are asked for before a console is
	// given; both empty: anyone who reaches the address gets one.
	User, Password string
	// LoginTimeout bounds the questions asked before a console is given
	// (user, password, which board). Default 1 minute.
	LoginTimeout time.Duration
	// LoginFailDelay is how long a wrong password waits before the
	// connection is closed. Default 1 s.
	LoginFailDelay time.Duration
}

// maxGreeting is how many connections may be answering questions at once:
// the ones beyond are closed, so that nobody can hold many open.
const maxGreeting = 8

// ServeTCP gives consoles to the clients that connect to ln, one person
// per board, until ctx is done; it then closes ln and every client, and
// returns nil. A client is asked for the user and password (when set) and,
// when several boards are there, for which one; a client that asks for a
// console in use is told who has it, and closed.
func ServeTCP(ctx context.Context, ln net.Listener, consoles Consoles, opts ListenOptions) error {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.LoginTimeout <= 0 {
		opts.LoginTimeout = time.Minute
	}
	if opts.LoginFailDelay <= 0 {
		opts.LoginFailDelay = time.Second
	}
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		greeting int
	)
	defer wg.Wait()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("console: accept: %w", err)
		}
		mu.Lock()
		full := greeting >= maxGreeting
		if !full {
			greeting++
		}
		mu.Unlock()
		if full {
			_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = io.WriteString(conn, "[ftpbridge: too many connections waiting for a console: try again later]\r\n")
			_ = conn.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := func() {
				mu.Lock()
				greeting--
				mu.Unlock()
			}
			serveConn(ctx, conn, consoles, opts, done)
		}()
	}
}

// serveConn asks the client what it must, then gives it its console;
// greeted is called once the questions are over.
func serveConn(ctx context.Context, conn net.Conn, consoles Consoles, opts ListenOptions, greeted func()) {
	log := opts.Logger.With("client", conn.RemoteAddr().String())
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	t := &tcpTerm{Conn: conn}
	c, err := greet(t, consoles, opts)
	greeted()
	if err != nil {
		log.Info("console refused", "err", err)
		_ = conn.Close()
		return
	}
	_ = conn.SetDeadline(time.Time{})
	err = c.Attach(ctx, t, conn.RemoteAddr().String())
	if err != nil {
		log.Info("console refused", "err", err)
		_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
		if errors.Is(err, ErrInUse) {
			_, _ = fmt.Fprintf(conn, "[ftpbridge: %s: try again once they leave]\r\n", strings.TrimPrefix(err.Error(), "console: in use: "))
		} else {
			_, _ = io.WriteString(conn, "[ftpbridge: the console has stopped]\r\n")
		}
	}
	_ = conn.Close()
}

// greet asks for the user, the password and the board, as needed, and
// returns the console chosen.
func greet(t *tcpTerm, consoles Consoles, opts ListenOptions) (*Console, error) {
	t.until = time.Now().Add(opts.LoginTimeout)
	_ = t.SetDeadline(t.until)
	if opts.User != "" || opts.Password != "" {
		t.write("ftpbridge console\r\nuser: ")
		user, err := t.readLine()
		if err != nil {
			return nil, err
		}
		t.write("password: ")
		pass, err := t.readLine()
		if err != nil {
			return nil, err
		}
		userOK := subtle.ConstantTimeCompare([]byte(user), []byte(opts.User)) == 1
		passOK := subtle.ConstantTimeCompare([]byte(pass), []byte(opts.Password)) == 1
		if !userOK || !passOK {
			time.Sleep(opts.LoginFailDelay)
			t.write("\r\n[ftpbridge: login incorrect]\r\n")
			return nil, fmt.Errorf("console: login incorrect for user %q", user)
		}
		t.write("\r\n")
	}
	names := slices.Sorted(slices.Values(consoles.Names()))
	switch len(names) {
	case 0:
		t.write("[ftpbridge: no board is connected: try again later]\r\n")
		return nil, errors.New("console: no board connected")
	case 1:
		c, ok := consoles.Console(names[0])
		if !ok {
			t.write("[ftpbridge: the board has just left: try again later]\r\n")
			return nil, errors.New("console: the board left")
		}
		return c, nil
	}
	for range 3 {
		t.write(fmt.Sprintf("boards: %s\r\nwhich board? ", strings.Join(names, " ")))
		name, err := t.readLine()
		if err != nil {
			return nil, err
		}
		if c, ok := consoles.Console(strings.TrimPrefix(strings.TrimSpace(name), "/")); ok {
			return c, nil
		}
		t.write(fmt.Sprintf("[ftpbridge: no board %q]\r\n", name))
		names = slices.Sorted(slices.Values(consoles.Names()))
	}
	return nil, errors.New("console: no board chosen")
}

// tcpTerm is a TCP client as a console's Terminal: a net.Conn whose first
// bytes may have been read already, while its questions were answered.
type tcpTerm struct {
	net.Conn
	ahead []byte    // read past a line's end, for the board
	until time.Time // the deadline of the questions
}

func (t *tcpTerm) Read(p []byte) (int, error) {
	if len(t.ahead) > 0 {
		n := copy(p, t.ahead)
		t.ahead = t.ahead[n:]
		return n, nil
	}
	return t.Conn.Read(p)
}

func (t *tcpTerm) write(s string) { _, _ = io.WriteString(t.Conn, s) }

// readLine reads one answer: up to a CR or LF (telnet sends CR LF or CR
// NUL, nc LF, a terminal in raw mode CR), with backspaces applied. What
// follows the line end is kept for the board, but for the LF or NUL of a
// CR LF or CR NUL pair.
func (t *tcpTerm) readLine() (string, error) {
	var line []byte
	var b [1]byte
	for len(line) < 256 {
		if _, err := t.Read(b[:]); err != nil {
			return "", fmt.Errorf("console: reading an answer: %w", err)
		}
		switch c := b[0]; c {
		case '\r', '\n':
			t.skipPair(c)
			return string(line), nil
		case 0x08, 0x7f:
			if len(line) > 0 {
				line = line[:len(line)-1]
			}
		case 0x03, 0x04:
			return "", errors.New("console: the client gave up answering")
		default:
			if c >= 0x20 {
				line = append(line, c)
			}
		}
	}
	return "", errors.New("console: an answer longer than 256 bytes")
}

// skipPair drops the LF or NUL that may follow a CR, as telnet sends it.
func (t *tcpTerm) skipPair(end byte) {
	if end != '\r' {
		return
	}
	_ = t.Conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	var b [1]byte
	n, _ := t.Conn.Read(b[:])
	if n == 1 && b[0] != '\n' && b[0] != 0 {
		t.ahead = append(t.ahead, b[0])
	}
	_ = t.Conn.SetReadDeadline(t.until)
}
