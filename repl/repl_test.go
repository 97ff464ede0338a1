package repl

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// scriptedPort is a fake serial line: what the test queues is what the
// "board" says; everything the conn writes is recorded. Reads that find
// nothing return (0, nil) after a short wait, as go.bug.st/serial does on its
// read timeout.
type scriptedPort struct {
	mu      sync.Mutex
	replies []byte
	written bytes.Buffer
	readErr error
	onWrite func(p []byte, s *scriptedPort)
}

func (s *scriptedPort) Read(p []byte) (int, error) {
	s.mu.Lock()
	if len(s.replies) == 0 {
		err := s.readErr
		s.mu.Unlock()
		if err != nil {
			return 0, err
		}
		time.Sleep(time.Millisecond)
		return 0, nil
	}
	n := copy(p, s.replies)
	s.replies = s.replies[n:]
	s.mu.Unlock()
	return n, nil
}

func (s *scriptedPort) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.written.Write(p)
	hook := s.onWrite
	s.mu.Unlock()
	if hook != nil {
		hook(p, s)
	}
	return len(p), nil
}

func (s *scriptedPort) say(b string) {
	s.mu.Lock()
	s.replies = append(s.replies, b...)
	s.mu.Unlock()
}

func (s *scriptedPort) SetReadTimeout(time.Duration) error { return nil }

// boardLike answers the way a raw REPL without raw-paste does: the raw
// banner for Ctrl-A, and a canned reply for each program.
func boardLike(reply string) func(p []byte, s *scriptedPort) {
	return func(p []byte, s *scriptedPort) {
		for _, b := range p {
			switch b {
			case ctrlA:
				s.replies = append(s.replies, "raw REPL; CTRL-B to exit\r\n>"...)
			case ctrlD:
				s.replies = append(s.replies, "OK"+reply...)
			}
		}
	}
}

func TestExecFraming(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, reply, wantOut string
		wantErr              error
	}{
		{"output", "42\r\n\x04\x04>", "42\r\n", nil},
		{"no output", "\x04\x04>", "", nil},
		{"exception", "\x04Traceback (most recent call last):\r\n  File \"<stdin>\", line 1\r\nOSError: [Errno 2] ENOENT\r\n\x04>", "", fs.ErrNotExist},
		{"reset instead of a reply", "partial\r\nets Jan  8 2013,rst cause:2\r\nMicroPython v1.19 on 2022-06-18; ESP module with ESP8266\r\nType \"help()\" for more information.\r\n>>> ", "", ErrBoardReset},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := &scriptedPort{}
			port.onWrite = boardLike(tt.reply)
			c := New(port, Options{})
			c.rawPaste = -1
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			out, err := c.Exec(ctx, "code")
			if tt.wantErr == nil && (err != nil || string(out) != tt.wantOut) {
				t.Errorf("Exec() = %q, %v, want %q", out, err, tt.wantOut)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Exec() error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestBannerBeforeOK: a loaded board may answer an earlier Ctrl-A from
// entering raw mode only once the code is on its way. The code went out
// after that Ctrl-A and arrived whole; anything else before OK is a board
// that was not at the raw prompt.
func TestBannerBeforeOK(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		before string
		ok     bool
	}{
		{"raw REPL; CTRL-B to exit\r\n>", true},
		{"raw REPL; CTRL-B to exit\r\n>raw REPL; CTRL-B to exit\r\n>", true},
		{"raw REPL; CTRL-B to exit\r\n>Traceback", false},
		{"42\r\n", false},
	} {
		port := &scriptedPort{}
		port.onWrite = func(p []byte, s *scriptedPort) {
			for _, b := range p {
				switch b {
				case ctrlA:
					s.replies = append(s.replies, "raw REPL; CTRL-B to exit\r\n>"...)
				case ctrlD:
					s.replies = append(s.replies, tt.before+"OK42\r\n\x04\x04>"...)
				}
			}
		}
		c := New(port, Options{})
		c.rawPaste = -1
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		out, err := c.Exec(ctx, "print(42)")
		cancel()
		if tt.ok && (err != nil || string(out) != "42\r\n") {
			t.Errorf("%q before OK: Exec() = %q, %v, want 42", tt.before, out, err)
		}
		if !tt.ok && !errors.Is(err, ErrProtocol) {
			t.Errorf("%q before OK: Exec() = %q, %v, want ErrProtocol", tt.before, out, err)
		}
	}
}

// TestResetBeforeRawPasteAnswer: a board that reset while idle answers
// the raw-paste probe with its boot banner, which is a reset, seen at once.
func TestResetBeforeRawPasteAnswer(t *testing.T) {
	t.Parallel()
	port := &scriptedPort{}
	port.onWrite = func(p []byte, s *scriptedPort) {
		for _, b := range p {
			switch b {
			case ctrlA:
				if !bytes.Contains(s.written.Bytes(), []byte{ctrlE}) {
					s.replies = append(s.replies, "raw REPL; CTRL-B to exit\r\n>"...)
				}
			case ctrlE:
				s.replies = append(s.replies, "ets Jan  8 2013,rst cause:2\r\nMicroPython v1.27.0 on 2026-01-01; ESP32 module with ESP32\r\nType \"help()\" for more information.\r\n>>> "...)
			}
		}
	}
	// A context shorter than AnswerWait: only a reset seen in what the
	// board said ends the wait in time.
	c := New(port, Options{AnswerWait: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Exec(ctx, "print(1)"); !errors.Is(err, ErrBoardReset) {
		t.Errorf("Exec on a board that answers the raw-paste probe with its boot banner: %v, want ErrBoardReset", err)
	}
}

func TestDisconnectedPort(t *testing.T) {
	t.Parallel()
	port := &scriptedPort{readErr: io.ErrUnexpectedEOF}
	c := New(port, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Exec(ctx, "print(1)"); !errors.Is(err, ErrDisconnected) {
		t.Errorf("Exec on a failing port: %v, want ErrDisconnected", err)
	}
}

func TestNoRawREPLSaysWhatTheBoardPrinted(t *testing.T) {
	t.Parallel()
	port := &scriptedPort{}
	port.onWrite = func(p []byte, s *scriptedPort) { s.replies = append(s.replies, "garbage\xff"...) }
	// How long each try waits is not what this test is about.
	c := New(port, Options{EnterRawWait: 10 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.Exec(ctx, "print(1)")
	if !errors.Is(err, ErrNoRawREPL) || !bytes.Contains([]byte(err.Error()), []byte(`garbage\xff`)) {
		t.Errorf("Exec on a board that never gives a prompt: %v, want ErrNoRawREPL quoting the board", err)
	}
}

func TestParseError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text     string
		typ, msg string
		errno    int
		sentinel error
	}{
		{"Traceback (most recent call last):\r\n  File \"<stdin>\", line 1, in <module>\r\nOSError: [Errno 2] ENOENT\r\n", "OSError", "[Errno 2] ENOENT", 2, fs.ErrNotExist},
		{"Traceback (most recent call last):\r\n  File \"<stdin>\", line 1, in <module>\r\nOSError: 17\r\n", "OSError", "17", 17, fs.ErrExist},
		{"Traceback (most recent call last):\n  File \"<stdin>\", line 1\nOSError: [Errno 13] EACCES\n", "OSError", "[Errno 13] EACCES", 13, fs.ErrPermission},
		{"Traceback (most recent call last):\r\n  File \"<stdin>\", line 1, in <module>\r\nZeroDivisionError: divide by zero\r\n", "ZeroDivisionError", "divide by zero", 0, nil},
		{"Traceback (most recent call last):\r\n  File \"<stdin>\", line 3\r\nKeyboardInterrupt: \r\n", "KeyboardInterrupt", "", 0, nil},
		{"OSError: file not found\r\n", "OSError", "file not found", 0, nil},
		{"MemoryError: \r\n", "MemoryError", "", 0, nil},
		{"", "Exception", "", 0, nil},
	}
	for _, tt := range tests {
		e := ParseError(tt.text)
		if e.Type != tt.typ || e.Message != tt.msg || e.Errno != tt.errno {
			t.Errorf("ParseError(%q) = %q, %q, %d, want %q, %q, %d", tt.text, e.Type, e.Message, e.Errno, tt.typ, tt.msg, tt.errno)
		}
		if tt.sentinel != nil && !errors.Is(e, tt.sentinel) {
			t.Errorf("ParseError(%q) is not %v", tt.text, tt.sentinel)
		}
	}
}

// FuzzParseError: whatever the board printed, ParseError keeps it whole
// and names an exception type, and an errno it reports is the number the
// message holds. An exception line as MicroPython prints it (type name,
// ": ", a one-line message) under a traceback comes back as that type and
// message.
func FuzzParseError(f *testing.F) {
	f.Add("Traceback (most recent call last):\r\n  File \"<stdin>\", line 1\r\nOSError: [Errno 2] ENOENT\r\n", "OSError", "[Errno 2] ENOENT")
	f.Add("OSError: 2", "OSError", "2")
	f.Add("ValueError: a: b", "ValueError", "a: b")
	f.Add("\x00\xff: [Errno 99999999999999999999]", "ValueError", "")
	f.Add("", "KeyboardInterrupt", "")
	f.Fuzz(func(t *testing.T, text, typ, msg string) {
		e := ParseError(text)
		if e.Type == "" || e.Traceback != text {
			t.Errorf("ParseError(%q) = type %q, traceback %q: want a type and the whole text", text, e.Type, e.Traceback)
		}
		if e.Errno != 0 {
			// The number the message starts with, leading zeros aside.
			digits := strings.TrimLeft(strings.TrimPrefix(e.Message, "[Errno "), "0")
			if end := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }); end >= 0 {
				digits = digits[:end]
			}
			if digits != strconv.Itoa(e.Errno) {
				t.Errorf("ParseError(%q) = errno %d, message %q", text, e.Errno, e.Message)
			}
		}
		_ = e.Error()
		_ = e.Unwrap()

		if !pyName.MatchString(typ) || strings.ContainsAny(msg, "\r\n") || strings.TrimSpace(msg) != msg {
			return
		}
		printed := "Traceback (most recent call last):\r\n  File \"<stdin>\", line 1, in <module>\r\n" + typ + ": " + msg + "\r\n"
		if e := ParseError(printed); e.Type != typ || e.Message != msg {
			t.Errorf("ParseError(%q) = %q, %q, want %q, %q", printed, e.Type, e.Message, typ, msg)
		}
	})
}

// pyName is a Python identifier in ASCII, as MicroPython names its
// exception classes.
var pyName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// FuzzReply feeds arbitrary bytes as the board's reply to an exec: the conn
// must return (an error or output) without panicking and within its context.
// Long code goes through the loader's probes and acknowledgements first.
func FuzzReply(f *testing.F) {
	f.Add([]byte("42\r\n\x04\x04>"), false)
	f.Add([]byte("\x04Traceback\r\nOSError: 2\r\n\x04>"), false)
	f.Add([]byte("R\x01\x80\x00\x01"), false)
	f.Add([]byte("MicroPython v1.27\r\n>>> "), false)
	f.Add([]byte{0x04, 0x04, 0x04}, false)
	f.Add([]byte("True\r\n\x04\x04>"), true)
	f.Add([]byte("\x06\x06\x06\x04\x04>"), true)
	f.Fuzz(func(t *testing.T, reply []byte, long bool) {
		port := &scriptedPort{}
		port.onWrite = boardLike(string(reply))
		c := New(port, Options{PiecePause: time.Microsecond})
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		code := "x"
		if long {
			code = strings.Repeat("x=1\n", 50)
		}
		start := time.Now()
		_, _ = c.Exec(ctx, code)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Exec took %v with a 300ms context", d)
		}
	})
}
