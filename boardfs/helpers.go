package boardfs

import (
	"context"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"

	"github.com/ftpbridge/ftpbridge/repl"
)

// The helpers, defined on the board once per interpreter (by prepare):
// helpers on every board with binary stdin and stdout, deltaHelpers with
// them, zHelpers too where the board has deflate; flatHelpers on the
// micro:bit. Their source is py/*.py.
var (
	helpers      = pyCode("common") + pyCode("frames") + pyCode("meta") + pyCode("read") + pyCode("write")
	deltaHelpers = pyCode("delta")
	zHelpers     = pyCode("deflate")
	flatHelpers  = pyCode("microbit") + pyCode("frames")
)

// prepare defines the helpers on the board; New gives it to repl as its
// Prepare, so a reset board gets them again. repl asks for it after every
// entry to raw mode, most of them after an interrupted exchange (a client
// that aborts a download) on a board that still holds the helpers: _fb,
// set last, names the helpers' version, and a board that has it is left
// alone. The same question asks for the board's clock where the FS keeps
// it set (askClock), so that a clock a reset took back is set again.
func (f *FS) prepare(ctx context.Context, c *repl.Conn) error {
	out, err := c.Exec(ctx, pyCode("probe")+f.askClock())
	if err != nil {
		return fmt.Errorf("boardfs: install helpers: %w", err)
	}
	fields := strings.Fields(string(out))
	if err := f.resetClock(ctx, c, fields); err != nil {
		return err
	}
	// The dialect's helpers are all prepare needs of it: what the reply
	// checks with (binascii) does not matter here.
	d := newDialect(len(fields) > 0 && fields[0] == "True", false)
	parts := d.helpers(slices.Contains(fields, "deflate"))
	version := helperVersion(parts)
	if slices.Contains(fields, version) {
		return nil
	}
	for _, code := range parts {
		if _, err := c.Exec(ctx, code); err != nil {
			return fmt.Errorf("boardfs: install helpers: %w", err)
		}
	}
	if _, err := c.Exec(ctx, "_fb='"+version+"'"); err != nil {
		return fmt.Errorf("boardfs: install helpers: %w", err)
	}
	return nil
}

// helperVersion names a set of helpers: prepare sets _fb to it last.
func helperVersion(parts []string) string {
	return fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(strings.Join(parts, ""))))
}

// splitDefs cuts code before top-level defs into parts of about max
// bytes (a part holds at least one def, however long).
func splitDefs(code string, max int) []string {
	var parts []string
	for len(code) > max {
		cut := strings.LastIndex(code[:max], "\ndef ")
		if cut <= 0 {
			cut = strings.Index(code[1:], "\ndef ") + 1
			if cut <= 0 {
				break
			}
		}
		parts = append(parts, code[:cut+1])
		code = code[cut+1:]
	}
	return append(parts, code)
}
