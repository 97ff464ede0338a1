package rig_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.bug.st/serial"
)

// pyserial is a serial port as pyserial shows it to mpremote: the OS
// buffers what arrives, in_waiting says how much, read(n) waits for n
// bytes.
type pyserial struct {
	port serial.Port
	mu   sync.Mutex
	more *sync.Cond
	buf  []byte
	err  error
}

func newPyserial(port serial.Port) *pyserial {
	s := &pyserial{port: port}
	s.more = sync.NewCond(&s.mu)
	go func() {
		p := make([]byte, 4096)
		for {
			n, err := port.Read(p)
			s.mu.Lock()
			s.buf = append(s.buf, p[:n]...)
			if err != nil {
				s.err = err
			}
			s.more.Broadcast()
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return s
}

func (s *pyserial) inWaiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.buf)
}

// read waits for n bytes, as pyserial's read with no timeout does.
func (s *pyserial) read(n int) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.buf) < n && s.err == nil {
		s.more.Wait()
	}
	if len(s.buf) < n {
		return nil, s.err
	}
	p := append([]byte(nil), s.buf[:n]...)
	s.buf = s.buf[n:]
	return p, nil
}

func (s *pyserial) write(p []byte) error {
	_, err := s.port.Write(p)
	return err
}

// readUntil is mpremote's read_until(1, ending): a blocking read of the
// first byte, then a byte at a time while bytes are waiting, else a 10 ms
// sleep, giving up after 10 s without a byte.
func (s *pyserial) readUntil(ending string) ([]byte, error) {
	data, err := s.read(1)
	if err != nil {
		return data, err
	}
	last := time.Now()
	for !bytes.HasSuffix(data, []byte(ending)) {
		if s.inWaiting() > 0 {
			c, err := s.read(1)
			if err != nil {
				return data, err
			}
			data = append(data, c...)
			last = time.Now()
			continue
		}
		if time.Since(last) > 10*time.Second {
			return data, fmt.Errorf("waiting for %q: timed out after %q", ending, data)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return data, nil
}

// mpremote moves files the way mpremote's fs cp does (tools/mpremote,
// SerialTransport 1.27): each exec through raw-paste (exec_raw_no_follow,
// raw_paste_write, follow), and a file as an open, one exec per 256-byte
// chunk holding the chunk as a Python bytes literal (repr), and a close
// (fs_writefile). It is the reference the rig's model is calibrated on.
type mpremote struct {
	s *pyserial
	// phases, if set, adds up where an exec's time goes: waiting for the
	// prompt, for raw-paste's answer, sending, for the end's
	// acknowledgement, and for the output.
	phases *[5]time.Duration
}

func (m *mpremote) mark(i int, since *time.Time) {
	if m.phases != nil {
		now := time.Now()
		m.phases[i] += now.Sub(*since)
		*since = now
	}
}

func (m *mpremote) enterRaw() error {
	if err := m.s.write([]byte("\r\x03")); err != nil {
		return err
	}
	time.Sleep(100 * time.Millisecond)
	for n := m.s.inWaiting(); n > 0; n = m.s.inWaiting() {
		m.s.read(n)
	}
	if err := m.s.write([]byte("\r\x01")); err != nil {
		return err
	}
	_, err := m.s.readUntil("raw REPL; CTRL-B to exit\r\n")
	return err
}

func (m *mpremote) exec(cmd []byte) error {
	t := time.Now()
	if _, err := m.s.readUntil(">"); err != nil {
		return fmt.Errorf("could not enter raw repl: %w", err)
	}
	m.mark(0, &t)
	if err := m.s.write([]byte("\x05A\x01")); err != nil {
		return err
	}
	d, err := m.s.read(2)
	if err != nil {
		return err
	}
	if string(d) != "R\x01" {
		return fmt.Errorf("the board does not do raw-paste: %q", d)
	}
	m.mark(1, &t)
	if err := m.rawPasteWrite(cmd, &t); err != nil {
		return err
	}
	if _, err := m.s.readUntil("\x04"); err != nil {
		return fmt.Errorf("timeout waiting for first EOF reception: %w", err)
	}
	errText, err := m.s.readUntil("\x04")
	if err != nil {
		return fmt.Errorf("timeout waiting for second EOF reception: %w", err)
	}
	m.mark(4, &t)
	if len(errText) > 1 {
		return fmt.Errorf("the board raised: %s", errText)
	}
	return nil
}

func (m *mpremote) rawPasteWrite(cmd []byte, t *time.Time) error {
	d, err := m.s.read(2)
	if err != nil {
		return err
	}
	window := int(d[0]) | int(d[1])<<8
	remain := window
	for i := 0; i < len(cmd); {
		for remain == 0 || m.s.inWaiting() > 0 {
			c, err := m.s.read(1)
			if err != nil {
				return err
			}
			switch c[0] {
			case 0x01:
				remain += window
			case 0x04:
				return m.s.write([]byte{0x04})
			default:
				return fmt.Errorf("unexpected read during raw paste: %q", c)
			}
		}
		n := min(remain, len(cmd)-i)
		if err := m.s.write(cmd[i : i+n]); err != nil {
			return err
		}
		remain -= n
		i += n
	}
	if err := m.s.write([]byte{0x04}); err != nil {
		return err
	}
	m.mark(2, t)
	if _, err := m.s.readUntil("\x04"); err != nil {
		return fmt.Errorf("could not complete raw paste: %w", err)
	}
	m.mark(3, t)
	return nil
}

// writeFile is mpremote's fs_writefile with its 256-byte chunks.
func (m *mpremote) writeFile(name string, data []byte) error {
	if err := m.exec([]byte(fmt.Sprintf("f=open('%s','wb')\nw=f.write", name))); err != nil {
		return err
	}
	for len(data) > 0 {
		chunk := data[:min(256, len(data))]
		if err := m.exec([]byte("w(" + pyBytesRepr(chunk) + ")")); err != nil {
			return err
		}
		data = data[len(chunk):]
	}
	return m.exec([]byte("f.close()"))
}

// pyBytesRepr is Python's repr of a bytes object.
func pyBytesRepr(b []byte) string {
	quote := byte('\'')
	if bytes.IndexByte(b, '\'') >= 0 && bytes.IndexByte(b, '"') < 0 {
		quote = '"'
	}
	var sb strings.Builder
	sb.WriteString("b")
	sb.WriteByte(quote)
	for _, c := range b {
		switch {
		case c == quote || c == '\\':
			sb.WriteByte('\\')
			sb.WriteByte(c)
		case c == '\t':
			sb.WriteString(`\t`)
		case c == '\n':
			sb.WriteString(`\n`)
		case c == '\r':
			sb.WriteString(`\r`)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&sb, `\x%02x`, c)
		default:
			sb.WriteByte(c)
		}
	}
	sb.WriteByte(quote)
	return sb.String()
}

func TestPyBytesRepr(t *testing.T) {
	// What CPython 3 prints.
	cases := map[string]string{
		"\x00'\\\t\n\r a\x7f\xff": `b"\x00'\\\t\n\r a\x7f\xff"`,
		`"'`:                      `b'"\''`,
		"plain text":              `b'plain text'`,
	}
	for in, want := range cases {
		if got := pyBytesRepr([]byte(in)); got != want {
			t.Errorf("pyBytesRepr(%q) = %s, want %s", in, got, want)
		}
	}
}
