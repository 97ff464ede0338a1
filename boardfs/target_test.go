package boardfs_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/boardfs"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

// hostTree lists every path under root with its size, for a test to
// compare before and after.
func hostTree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out = append(out, rel+" "+info.Mode().Type().String()+" "+strings.Repeat("#", int(min(info.Size(), 64))))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// TestRootIsNoWriteTarget: "/" is no file name, so it is refused at once,
// with ErrBadName and without a word to the board, as the target of every
// change (issue 11, item 1: STOR /.. and RNTO / used to rename a copy over
// "/", fail, and copy again, leaving a new temporary file each round until
// the deadline).
func TestRootIsNoWriteTarget(t *testing.T) {
	t.Parallel()
	for _, p := range []boardtest.Profile{boardtest.ESP32, boardtest.Pyboard} {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			f, b, dir := start(t, p, boardtest.Options{})
			ctx := ctxFor(t, time.Minute)
			if err := f.Mkdir(ctx, dir); err != nil {
				t.Fatal(err)
			}
			victim := dir + "/victim.txt"
			if err := f.WriteFile(ctx, victim, strings.NewReader("victim"), 6); err != nil {
				t.Fatal(err)
			}
			data := random(3000)
			// On the old code an op ran until its deadline.
			octx := ctxFor(t, 15*time.Second)
			ops := []struct {
				name string
				op   func() error
			}{
				{"create", func() error { return f.WriteFile(octx, "/", bytes.NewReader(data), int64(len(data))) }},
				{"append", func() error { _, err := f.Append(octx, "/"); return err }},
				{"rename to /", func() error { return f.Rename(octx, victim, "/") }},
				{"rename /", func() error { return f.Rename(octx, "/", dir+"/root") }},
				{"mkdir", func() error { return f.Mkdir(octx, "/") }},
				{"remove", func() error { return f.Remove(octx, "/") }},
				{"rmdir", func() error { return f.RemoveDir(octx, "/") }},
			}
			for _, o := range ops {
				t.Run(o.name, func(t *testing.T) {
					before, execs := hostTree(t, b.Root), f.Stats().Execs
					err := o.op()
					if !errors.Is(err, boardfs.ErrBadName) {
						t.Errorf("%s: %v, want ErrBadName", o.name, err)
					}
					if n := f.Stats().Execs - execs; n != 0 {
						t.Errorf("%s took %d execs on the board, want it refused before any", o.name, n)
					}
					if after := hostTree(t, b.Root); !slices.Equal(after, before) {
						t.Errorf("%s changed the board: %d paths before, %d after", o.name, len(before), len(after))
					}
				})
			}
		})
	}
}

// TestMoveAcrossMountsFailsOnce: a move between a Pyboard's mounts whose
// final rename fails (the target is a directory) fails once, and leaves
// neither its copy nor a change: the copy-across path cannot call itself.
func TestMoveAcrossMountsFailsOnce(t *testing.T) {
	t.Parallel()
	f, b, _ := start(t, boardtest.Pyboard, boardtest.Options{})
	ctx := ctxFor(t, time.Minute)
	data := random(3000)
	if err := f.WriteFile(ctx, "/flash/a.bin", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if err := f.Mkdir(ctx, "/sd/d"); err != nil {
		t.Fatal(err)
	}
	before := hostTree(t, b.Root)
	if err := f.Rename(ctx, "/flash/a.bin", "/sd/d"); err == nil {
		t.Error("moving a file over a directory on another mount succeeded")
	}
	if after := hostTree(t, b.Root); !slices.Equal(after, before) {
		t.Errorf("the failed move changed the board:\nbefore:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
	}
	if got, err := os.ReadFile(filepath.Join(b.Root, "flash", "a.bin")); err != nil || !bytes.Equal(got, data) {
		t.Errorf("flash/a.bin after the failed move: %d bytes, %v", len(got), err)
	}
}
