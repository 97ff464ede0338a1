package repl

import (
	"io/fs"
	"regexp"
	"strconv"
	"strings"
)

// PyError is a Python exception raised on the board.
type PyError struct {
	Type      string // exception class, e.g. "OSError"
	Message   string // the text after "Type: "
	Traceback string // the whole text the board printed
	Errno     int    // for OSError: the errno number, 0 if none
}

func (e *PyError) Error() string {
	if e.Message == "" {
		return "board: " + e.Type
	}
	return "board: " + e.Type + ": " + e.Message
}

// Errno values of PyError.Errno, as MicroPython numbers them: Linux's
// numbering, which py/mperrno.h follows.
const (
	EPERM        = 1
	ENOENT       = 2
	EIO          = 5
	EACCES       = 13
	EEXIST       = 17
	EXDEV        = 18
	ENODEV       = 19
	EINVAL       = 22
	ENOSPC       = 28
	ENAMETOOLONG = 36
	ENOTEMPTY    = 39
)

// Unwrap maps the board's errno to io/fs's sentinels, so callers can test
// errors.Is(err, fs.ErrNotExist).
func (e *PyError) Unwrap() error {
	switch e.Errno {
	case ENOENT:
		return fs.ErrNotExist
	case EEXIST:
		return fs.ErrExist
	case EPERM, EACCES:
		return fs.ErrPermission
	}
	return nil
}

// Boards print an OSError as "[Errno 2] ENOENT" (newer ports) or "2" (older
// ones, and the micro:bit).
var errnoForms = regexp.MustCompile(`^(?:\[Errno (\d+)\]|(\d+)\b)`)

// ParseError reads the exception text the raw REPL prints after a failed
// program: a traceback whose last line is "Type: message" (or just "Type").
func ParseError(text string) *PyError {
	e := &PyError{Traceback: text}
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(text, "\r\n", "\n"), "\n"), "\n")
	// The exception line is the last one that does not belong to the
	// traceback's frames.
	last := ""
	for i := len(lines) - 1; i >= 0; i-- {
		l := lines[i]
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "  ") || strings.HasPrefix(l, "Traceback ") {
			continue
		}
		last = l
		break
	}
	if last == "" {
		e.Type = "Exception"
		e.Message = strings.TrimSpace(text)
		return e
	}
	typ, msg, found := strings.Cut(last, ": ")
	if !found {
		typ = strings.TrimSuffix(last, ":")
	}
	e.Type, e.Message = strings.TrimSpace(typ), strings.TrimSpace(msg)
	if e.Type == "" {
		// Not an exception line the board would print: keep the text.
		e.Type, e.Message = "Exception", strings.TrimSpace(text)
	}
	if m := errnoForms.FindStringSubmatch(e.Message); m != nil {
		digits := m[1]
		if digits == "" {
			digits = m[2]
		}
		// A number too long for an int is no errno a board has.
		if n, err := strconv.Atoi(digits); err == nil {
			e.Errno = n
		}
	}
	return e
}
