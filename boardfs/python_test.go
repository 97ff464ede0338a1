package boardfs

import (
	"strings"
	"testing"
)

func TestMinify(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"comments and blank lines go", "# a comment\n\nx = 1  # why\n\n# more\ny = 2\n", "x=1;y=2\n"},
		{"spaces only between words", "print('%d %d' % (a , b))\nz = x if y else 'w'\nq = b'\\x06' if y else b'\\x15'\n",
			"print('%d %d'%(a,b));z=x if y else'w';q=b'\\x06'if y else b'\\x15'\n"},
		{"a hex number keeps its space before a keyword", "z = 1 if a & 0x4000 else 0\n", "z=1 if a&0x4000 else 0\n"},
		{"operators that would merge keep a space", "x = a ** -b\ny = a * *b\n", "x=a**-b;y=a* *b\n"},
		{"a simple block joins its header", "if x:\n    a = 1\n    b = 2\nelse:\n    c = 3\n", "if x:a=1;b=2\nelse:c=3\n"},
		{"a block with a compound statement keeps its lines", "while 1:\n    n = 1\n    if not n:\n        break\n    m = 2\n",
			"while 1:\n n=1\n if not n:break\n m=2\n"},
		{"brackets across lines", "x = [1,\n     2]\n", "x=[1,2]\n"},
		{"parameters and locals get letters in order", "def _f(path, count):\n    total = count\n    return path + total\n",
			"def _f(a,b):c=b;return a+c\n"},
		{"globals, builtins and attributes keep their names", "def _f(a_long):\n    b = len(os.stat(a_long).a_long)\n    return b\n",
			"def _f(a):b=len(os.stat(a).a_long);return b\n"},
		{"a letter a global uses is skipped", "def _f(path):\n    return a(path)\n", "def _f(b):return a(b)\n"},
		{"targets of for, as, tuples and augmented assignment", "def _f(x):\n    for item in x:\n        s, t = item\n        s += t\n    try:\n        pass\n    except OSError as err:\n        raise err\n",
			"def _f(a):\n for b in a:c,d=b;c+=d\n try:pass\n except OSError as e:raise e\n"},
		{"comprehension variables", "def _f(name):\n    return ''.join(['%02x' % byte for byte in name])\n", "def _f(a):return''.join(['%02x'%b for b in a])\n"},
		{"a keyword argument keeps its name", "def _f(end):\n    print(1, end=end)\n", "def _f(a):print(1,end=a)\n"},
		{"a default value", "def _f(data, crc=0):\n    return crc\n", "def _f(a,b=0):return b\n"},
		{"an import used often gets an alias", "def _f():\n    import micropython\n    micropython.kbd_intr(-1)\n    micropython.kbd_intr(3)\n",
			"def _f():import micropython as a;a.kbd_intr(-1);a.kbd_intr(3)\n"},
		{"an import used once keeps its name", "def _f():\n    import gc\n    gc.collect()\n", "def _f():import gc;gc.collect()\n"},
		{"an import that saves a byte gets an alias", "def _f():\n    import machine\n    machine.reset()\n", "def _f():import machine as a;a.reset()\n"},
		{"an alias is renamed, the module is not", "def _f():\n    from microbit import uart as port\n    port.write(b'')\n", "def _f():from microbit import uart as a;a.write(b'')\n"},
		{"module level names stay", "import os\nx_long = 1\n_c = lambda b, c=0: 0\n", "import os;x_long=1;_c=lambda b,c=0:0\n"},
		{"a body on the header line", "if x: y = 1; z = lambda: 0\nelse: pass\n", "if x:y=1;z=lambda:0\nelse:pass\n"},
		{"a lambda in a header", "if (lambda: x)(): y = 1\n", "if(lambda:x)():y=1\n"},
		{"a def inside try at module level", "try:\n    import x\nexcept ImportError:\n    def _c(data):\n        return 0\n",
			"try:import x\nexcept ImportError:\n def _c(a):return 0\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := minify(c.src)
			if err != nil || got != c.want {
				t.Errorf("minify(%q) = %q, %v, want %q", c.src, got, err, c.want)
			}
		})
	}
}

func TestMinifyRefuses(t *testing.T) {
	cases := []struct{ name, src string }{
		{"a def in a def", "def f():\n    def g():\n        pass\n"},
		{"a lambda in a def", "def f():\n    return lambda x: x\n"},
		{"global", "def f():\n    global x\n    x = 1\n"},
		{"a name in a default", "def f(a=b):\n    return a\n"},
		{"a triple-quoted string", "def f():\n    '''doc'''\n"},
		{"a tab", "def f():\n\treturn 1\n"},
		{"a backslash continuation", "x = 1 + \\\n    2\n"},
		{"a compound statement after a colon", "if x: if y: z = 1\n"},
		{"a header without its colon", "while x\n"},
		{"an unexpected indent", "x = 1\n    y = 2\n"},
		{"a missing block", "if x:\ny = 1\n"},
		{"an open bracket", "x = (1,\n"},
		{"an open string", "x = 'abc\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got, err := minify(c.src); err == nil {
				t.Errorf("minify(%q) = %q, want an error", c.src, got)
			}
		})
	}
}

// TestMinifyHelpers: every py/*.py file minifies, the same way every time,
// and minifying what is sent changes nothing more: the output is already
// as short as the minifier makes it.
func TestMinifyHelpers(t *testing.T) {
	files, err := pySource.ReadDir("py")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range files {
		src, _ := pySource.ReadFile("py/" + e.Name())
		a, err := minify(string(src))
		if err != nil {
			t.Errorf("py/%s: %v", e.Name(), err)
			continue
		}
		if b, _ := minify(string(src)); a != b {
			t.Errorf("py/%s minifies two ways", e.Name())
		}
		if again, err := minify(a); err != nil || again != a {
			t.Errorf("py/%s: minifying the minified code gives %q, %v, want it unchanged:\n%s", e.Name(), again, err, a)
		}
	}
}

// TestHelperBytes says what installing the helpers costs each kind of
// board: prepare's question, the helpers, and _fb. The budgets are the
// costs of the hand-minified helpers this source replaced (commit
// 2079c98), which the minified source must not exceed, plus what later
// helpers earned: _vr's 98 bytes, once a connect, save an exec an upload;
// 32 more keep _fs and _bs from making garbage a piece on a small heap.
func TestHelperBytes(t *testing.T) {
	cases := []struct {
		board                string
		binaryStdin, deflate bool
		before               int
	}{
		{"esp32, esp8266, pyboard with deflate (MicroPython 1.21+)", true, true, 3981},
		{"esp32, esp8266, pyboard without deflate", true, false, 3128},
		{"micro:bit", false, false, 1406},
	}
	for _, c := range cases {
		parts := newDialect(c.binaryStdin, true).helpers(c.deflate)
		cost := len(pyCode("probe")) + len("_fb='"+helperVersion(parts)+"'")
		largest := 0
		for _, p := range parts {
			cost += len(p)
			largest = max(largest, len(p))
		}
		t.Logf("%s: %d bytes (before: %d), in %d part(s), the largest %d", c.board, cost, c.before, len(parts), largest)
		if cost > c.before {
			t.Errorf("%s: installing the helpers costs %d bytes, more than the %d before", c.board, cost, c.before)
		}
		if !c.binaryStdin && largest > 400 {
			t.Errorf("%s: a part of %d bytes: the micro:bit compiles at most about 400 at a time", c.board, largest)
		}
	}
}

func TestShortName(t *testing.T) {
	for n, want := range map[int]string{0: "a", 25: "z", 26: "A", 51: "Z", 52: "aa", 53: "ab", 104: "ba"} {
		if got := shortName(n); got != want {
			t.Errorf("shortName(%d) = %q, want %q", n, got, want)
		}
	}
	if strings.Contains(shortName(52*52), " ") {
		t.Error("a name with a space")
	}
}
