package boardfs

import (
	"strings"
	"testing"
)

func TestPyStr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `str(b'','utf8')`},
		{"/main.py", `str(b'/main.py','utf8')`},
		{"it's", `str(b'it\x27s','utf8')`},
		{`a\b`, `str(b'a\x5cb','utf8')`},
		{"a\nb\x04", `str(b'a\x0ab\x04','utf8')`},
		{"€", `str(b'\xe2\x82\xac','utf8')`},
	}
	for _, tt := range tests {
		if got := pyStr(tt.in); got != tt.want {
			t.Errorf("pyStr(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// FuzzPyStr checks what makes the literal safe whatever the name: it is one
// bytes literal, with nothing but printable ASCII inside, no quote or
// backslash that is not part of an escape. TestHostileNames and
// FuzzPyStrOnBoard prove the board decodes it back to the same name.
func FuzzPyStr(f *testing.F) {
	for _, s := range []string{"", "a'b", `\'`, "'''", "\x00\x03\x04", "日本", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lit := pyStr(s)
		body, ok := strings.CutPrefix(lit, "str(b'")
		if !ok {
			t.Fatalf("pyStr(%q) = %s: not a bytes literal", s, lit)
		}
		body, ok = strings.CutSuffix(body, "','utf8')")
		if !ok {
			t.Fatalf("pyStr(%q) = %s: no decode", s, lit)
		}
		var decoded []byte
		for i := 0; i < len(body); i++ {
			c := body[i]
			if c < 0x20 || c >= 0x7f || c == '\'' {
				t.Fatalf("pyStr(%q) = %s: raw byte %#x inside the literal", s, lit, c)
			}
			if c == '\\' {
				if i+3 >= len(body) || body[i+1] != 'x' {
					t.Fatalf("pyStr(%q) = %s: a backslash that is not a \\x escape", s, lit)
				}
				var v byte
				for _, h := range body[i+2 : i+4] {
					v <<= 4
					switch {
					case h >= '0' && h <= '9':
						v |= byte(h - '0')
					case h >= 'a' && h <= 'f':
						v |= byte(h-'a') + 10
					default:
						t.Fatalf("pyStr(%q) = %s: bad escape", s, lit)
					}
				}
				decoded = append(decoded, v)
				i += 3
				continue
			}
			decoded = append(decoded, c)
		}
		if string(decoded) != s {
			t.Errorf("pyStr(%q) decodes to %q", s, decoded)
		}
	})
}

func TestPyCall(t *testing.T) {
	tests := []struct {
		name string
		args []any
		want string
	}{
		{"_sv", nil, `_sv()`},
		{"os.remove", []any{"/a'b"}, `os.remove(str(b'/a\x27b','utf8'))`},
		{"_r", []any{"/x", int64(4096), int64(1024)}, `_r(str(b'/x','utf8'),4096,1024)`},
		{"_w", []any{"/x", true}, `_w(str(b'/x','utf8'),1)`},
		{"_bs", []any{"/x", 1024, false}, `_bs(str(b'/x','utf8'),1024,0)`},
		{"_p", []any{pyExpr(pyCall("_t", "/x"))}, `_p(_t(str(b'/x','utf8')))`},
		{"_wu", []any{pyExpr("_u0123abcd"), -1}, `_wu(_u0123abcd,-1)`},
	}
	for _, tt := range tests {
		if got := pyCall(tt.name, tt.args...); got != tt.want {
			t.Errorf("pyCall(%q, %#v) = %s, want %s", tt.name, tt.args, got, tt.want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("pyCall with a float did not panic")
		}
	}()
	pyCall("_f", 1.5)
}
