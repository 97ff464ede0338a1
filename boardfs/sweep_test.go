package boardfs_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/boardfs"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

// TestSweep: a Link's connection removes the files an interrupted upload
// left, named as Create names its temporaries, and nothing else.
func TestSweep(t *testing.T) {
	cases := []struct {
		profile    boardtest.Profile
		temp, kept string
	}{
		{boardtest.ESP32, "/d/.main.py.0123abcd.ftpbridge", "/d/main.py.0123abcd.ftpbridge"},
		{boardtest.Microbit, "/.ftpbridge-0123abcd", "/ftpbridge-0123abcd"},
	}
	for _, c := range cases {
		t.Run(string(c.profile), func(t *testing.T) {
			t.Parallel()
			f, b, _ := startWith(t, c.profile, boardtest.Options{}, boardfs.Options{})
			ctx := ctxFor(t, time.Minute)
			if c.profile != boardtest.Microbit {
				if err := f.Mkdir(ctx, "/d"); err != nil {
					t.Fatal(err)
				}
			}
			for _, p := range []string{c.temp, c.kept} {
				if err := f.WriteFile(ctx, p, bytes.NewReader([]byte("x")), 1); err != nil {
					t.Fatalf("WriteFile(%q): %v", p, err)
				}
			}
			f.Close()
			link, err := boardfs.Connect(ctx, boardfs.LinkOptions{
				Dial: func(context.Context) (boardfs.Port, error) { return b.Open() },
			})
			if err != nil {
				t.Fatal(err)
			}
			lctx, stop := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { link.Run(lctx); close(done) }()
			defer func() { stop(); <-done }()
			lf, err := link.FS()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := lf.Stat(ctx, c.temp); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Stat(%q) after the sweep: %v, want fs.ErrNotExist", c.temp, err)
			}
			if _, err := lf.Stat(ctx, c.kept); err != nil {
				t.Errorf("Stat(%q), not an upload temporary, after the sweep: %v", c.kept, err)
			}
		})
	}
}
