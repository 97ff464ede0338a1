package console

import "bytes"

// prompt is the friendly REPL's prompt (MicroPython's pyexec.c); its
// continuation prompt ("... ") counts as busy: a statement is half typed.
var prompt = []byte(">>> ")

// replState is what the board's REPL is doing, as far as the console can
// tell from the bytes that went by.
type replState int

const (
	// idle: at the prompt, nothing typed since.
	idle replState = iota
	// typing: at the prompt, a line begun that can be typed again as it
	// was (printable characters and backspaces only).
	typing
	// busy: anything else: a program runs, a line was just entered, a
	// statement is half typed, paste or raw mode.
	busy
)

func (s replState) String() string {
	return [...]string{"idle", "typing", "busy"}[s]
}

// screen follows the REPL from the bytes that pass the console: what the
// board printed last, and what was sent to it since its last prompt. It is
// not safe for concurrent use.
type screen struct {
	tail  []byte // the last bytes the board sent
	typed []byte // sent to the board since it last printed a prompt
	// mute is the echo still expected of a line the console typed itself,
	// which the person is not shown.
	mute []byte
	// marker, once seen in the board's output, closes seen; the prompt
	// after it closes ended.
	marker []byte
	window []byte
	seen   chan struct{}
	ended  chan struct{}
}

// maxTyped bounds what screen keeps of the bytes sent since a prompt;
// more is no line to type again.
const maxTyped = 1024

// reset is the board at a fresh prompt.
func (s *screen) reset() {
	s.tail = append(s.tail[:0], prompt...)
	s.typed = s.typed[:0]
	s.mute = nil
}

// sent notes bytes on their way to the board.
func (s *screen) sent(p []byte) {
	if len(s.typed)+len(p) > maxTyped {
		s.typed = append(s.typed[:0], 0x03) // too long to say: busy
		return
	}
	s.typed = append(s.typed, p...)
}

// received notes bytes the board sent and returns those the person is
// shown, and whether the board printed its prompt.
func (s *screen) received(p []byte) (show []byte, prompted bool) {
	s.tail = append(s.tail, p...)
	if len(s.tail) > 16 {
		s.tail = append(s.tail[:0], s.tail[len(s.tail)-16:]...)
	}
	if s.seen != nil {
		s.window = append(s.window, p...)
		if i := bytes.Index(s.window, s.marker); i >= 0 {
			close(s.seen)
			// A prompt after the marker in this same piece ends it.
			after := s.window[i+len(s.marker):]
			s.seen, s.window = nil, nil
			if s.ended != nil && bytes.Contains(after, prompt) {
				close(s.ended)
				s.ended = nil
			}
		} else if keep := len(s.marker) - 1; len(s.window) > keep {
			s.window = append(s.window[:0], s.window[len(s.window)-keep:]...)
		}
	} else if s.ended != nil && bytes.HasSuffix(s.tail, prompt) {
		close(s.ended)
		s.ended = nil
	}
	show = p
	for len(s.mute) > 0 && len(show) > 0 {
		if show[0] != s.mute[0] {
			s.mute = nil // not the echo expected: show the rest
			break
		}
		show, s.mute = show[1:], s.mute[1:]
	}
	if bytes.HasSuffix(s.tail, prompt) {
		s.typed = s.typed[:0]
		return show, true
	}
	return show, false
}

// lineBegun returns the line the board is in the middle of printing, as
// far as it got ("" when it last ended a line, or began the line longer
// ago than tail reaches).
func (s *screen) lineBegun() []byte {
	i := bytes.LastIndexAny(s.tail, "\r\n")
	if i < 0 {
		return nil
	}
	return bytes.Clone(s.tail[i+1:])
}

// watch returns a channel closed once marker has gone by in the board's
// output, and one closed at the board's first prompt after it; it
// replaces an earlier watch.
func (s *screen) watch(marker []byte) (seen, ended <-chan struct{}) {
	s.marker, s.window = marker, nil
	s.seen, s.ended = make(chan struct{}), make(chan struct{})
	return s.seen, s.ended
}

// state says what the REPL is doing. Bytes sent since the last prompt
// that hold no line end and no control key leave the board at that
// prompt, whatever its echo shows: nothing can have started.
func (s *screen) state() replState {
	if len(s.typed) == 0 {
		if bytes.HasSuffix(s.tail, prompt) {
			return idle
		}
		return busy
	}
	for _, b := range s.typed {
		if (b < 0x20 || b > 0x7e) && b != 0x08 && b != 0x7f {
			return busy
		}
	}
	return typing
}
