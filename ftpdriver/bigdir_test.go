package ftpdriver_test

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/ftpdriver"
	"github.com/ftpbridge/ftpbridge/ftpdriver/ftptest"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

// TestBigDirectory: a directory of 2,000 files with 40-character names
// lists completely at 115200 baud by NLST, LIST and MLSD, however long
// that takes (about 10 s, over OpTimeout, which bounds other operations),
// and another session's SIZE meanwhile gets the board between the
// listing's pages (issue 11, item 5: each listing failed with "the board
// did not answer in time" after 12-16 s, holding the board meanwhile).
// It runs alone: it asserts that SIZE gets the board within OpTimeout.
func TestBigDirectory(t *testing.T) {
	root := t.TempDir()
	var names []string
	for i := range 2000 {
		n := fmt.Sprintf("%04d-%s.csv", i, strings.Repeat("n", 31))
		put(t, root, "big/"+n, []byte("t,v\n"))
		names = append(names, n)
	}
	put(t, root, "other.txt", []byte("other"))
	s := ftptest.Start(t, ftptest.Options{
		Board:  boardtest.Options{Root: root, Baud: 115200},
		Driver: ftpdriver.Options{CacheTTL: -1, OpTimeout: 5 * time.Second},
	})
	c := rawDial(t, s.Addr, "anonymous", "x@")
	other := s.Dial(t)
	for _, cmd := range []string{"NLST /big", "LIST /big", "MLSD /big"} {
		t.Run(cmd, func(t *testing.T) {
			// Once the listing is under way, another session asks for
			// something else on the board.
			size := make(chan error, 1)
			go func() {
				time.Sleep(3 * time.Second)
				n, err := other.FileSize("/other.txt")
				if err == nil && n != 5 {
					err = fmt.Errorf("SIZE = %d, want 5", n)
				}
				size <- err
			}()
			start := time.Now()
			code, msg, data := c.transfer("%s", cmd)
			took := time.Since(start)
			if err := <-size; err != nil {
				t.Errorf("SIZE during %s: %v", cmd, err)
			}
			if code != 226 {
				t.Fatalf("%s = %d %s after %v", cmd, code, msg, took)
			}
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(string(data)), "\r\n") {
				switch {
				case strings.HasPrefix(cmd, "MLSD"):
					_, line, _ = strings.Cut(line, " ")
				case strings.HasPrefix(cmd, "LIST"):
					fields := strings.Fields(line)
					line = fields[len(fields)-1]
				}
				got = append(got, path.Base(line))
			}
			slices.Sort(got)
			if !slices.Equal(got, names) {
				t.Errorf("%s: %d names, want the %d files", cmd, len(got), len(names))
			}
			t.Logf("%s: %d entries, %d bytes, in %v", cmd, len(got), len(data), took.Round(time.Millisecond))
		})
	}
}
