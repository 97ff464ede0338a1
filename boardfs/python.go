package boardfs

import (
	"embed"
	"fmt"
	"path"
	"strings"
)

// pySource is the Python that runs on the board, readable: one file per
// concern, each function with its contract. minify makes what is sent.
//
//go:embed py/*.py
var pySource embed.FS

// pyMinified is every py/*.py file minified, by name without ".py". It is
// made once, when the package loads, and never changes.
var pyMinified = minifyAll()

func minifyAll() map[string]string {
	files, err := pySource.ReadDir("py")
	if err != nil {
		panic(err)
	}
	out := make(map[string]string, len(files))
	for _, e := range files {
		src, err := pySource.ReadFile("py/" + e.Name())
		if err != nil {
			panic(err)
		}
		code, err := minify(string(src))
		if err != nil {
			// The files are part of the build: TestMinifyHelpers fails
			// first.
			panic(fmt.Sprintf("boardfs: py/%s: %v", e.Name(), err))
		}
		out[strings.TrimSuffix(e.Name(), path.Ext(e.Name()))] = code
	}
	return out
}

// pyCode returns the minified py/name.py.
func pyCode(name string) string {
	code, ok := pyMinified[name]
	if !ok {
		panic("boardfs: no py/" + name + ".py")
	}
	return code
}

// pyOnce returns code that defines the function fn of py/file.py, calls
// it with args (as pyCall quotes them), and deletes it: Python run once,
// not kept among the helpers.
func pyOnce(file, fn string, args ...any) string {
	return pyCode(file) + pyCall(fn, args...) + "\ndel " + fn
}
