package boardfs

import (
	"encoding/hex"
	"fmt"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"
)

// pyStr returns a Python expression for s that every MicroPython accepts,
// from the micro:bit's 1.9.2 on (whose bytes have no decode): a bytes literal
// of s's UTF-8, made a str on the board. Only printable ASCII other than quote and backslash stays literal;
// every other byte is a \x escape, so no name can end the literal, start a
// new statement, or carry a control byte (0x03, 0x04) that the raw REPL would
// act on. This is the one place where a Go string becomes Python source.
func pyStr(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString("str(b'")
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '\'' && c != '\\' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "\\x%02x", c)
	}
	b.WriteString("','utf8')")
	return b.String()
}

// pyExpr is Python source that pyCall passes through as it is: a variable
// on the board, or a call pyCall made.
type pyExpr string

// pyCall returns the Python call name(args...): every string argument
// quoted by pyStr, integers in decimal, booleans as 1 or 0 (the helpers
// test them for truth), a pyExpr as it is. Another type is a bug in the
// caller, and panics.
func pyCall(name string, args ...any) string {
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('(')
	for i, a := range args {
		if i > 0 {
			b.WriteByte(',')
		}
		switch v := a.(type) {
		case string:
			b.WriteString(pyStr(v))
		case int:
			b.WriteString(strconv.Itoa(v))
		case int64:
			b.WriteString(strconv.FormatInt(v, 10))
		case bool:
			if v {
				b.WriteByte('1')
			} else {
				b.WriteByte('0')
			}
		case pyExpr:
			b.WriteString(string(v))
		default:
			panic(fmt.Sprintf("boardfs: pyCall(%q): argument %d is a %T", name, i, a))
		}
	}
	b.WriteByte(')')
	return b.String()
}

// unhex decodes a name the board sent as the hex of its UTF-8 bytes.
func unhex(s string) (string, error) {
	raw, err := hex.DecodeString(s)
	if err != nil {
		return "", fmt.Errorf("%w: name %q is not hex", ErrProtocol, s)
	}
	return string(raw), nil
}

// checkPath accepts the absolute, clean, slash-separated paths the layers
// above hand down, and names MicroPython can hold as a str.
func checkPath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"), path.Clean(p) != p:
		return fmt.Errorf("%w: %q is not an absolute clean path", ErrBadName, p)
	case !utf8.ValidString(p):
		return fmt.Errorf("%w: %q is not UTF-8", ErrBadName, p)
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("%w: %q holds a NUL byte", ErrBadName, p)
	}
	return nil
}

// checkTarget is checkPath for what a change creates, replaces, moves or
// removes: a name in a directory, which "/" is not. A write aimed at "/"
// (STOR /.. cleans to it) would otherwise reach the board as a rename
// over its root.
func checkTarget(p string) error {
	if err := checkPath(p); err != nil {
		return err
	}
	if p == "/" {
		return fmt.Errorf("%w: %q is the top of the board's files, not a name in a directory", ErrBadName, p)
	}
	return nil
}
