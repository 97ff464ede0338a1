package console_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/ftpdriver"
	"github.com/ftpbridge/ftpbridge/ftpdriver/ftptest"
)

// How long an FTP operation (SIZE, uncached: one stat on the board) takes
// at 115200 baud: with nobody at the console, with a person at its idle
// prompt, and with a program printing every 100 ms there, which the
// operation interrupts; and, then, how long until the console has its
// prompt back. op-ms and prompt-ms are the figures; ns/op counts each
// round's setup too.
//
//	go test -run - -bench FTPBesideConsole -benchtime 10x ./console
func BenchmarkFTPBesideConsole(b *testing.B) {
	for _, mode := range []string{"no-console", "idle-prompt", "running-program"} {
		b.Run(mode, func(b *testing.B) {
			br := startBridge(b, bridgeOptions{ftp: ftptest.Options{Driver: ftpdriver.Options{CacheTTL: -1}}})
			if err := os.WriteFile(filepath.Join(br.Board.Root, "a.txt"), []byte("x"), 0o644); err != nil {
				b.Fatal(err)
			}
			c := br.Dial(b)
			var tm *term
			if mode != "no-console" {
				tm = dialTerm(b, br.Addr)
				tm.expect(">>> ", wait)
				tm.send("import time\r")
				tm.expect(">>> ", wait)
			}
			var op, back time.Duration
			n := 0
			for b.Loop() {
				if mode == "running-program" {
					tm.send("while True: print('tick'); time.sleep_ms(100)\r\r")
					tm.expect("tick", wait)
					tm.expect("tick", wait)
				} else {
					// The console takes the board back after FTP's quiet.
					time.Sleep(time.Second)
				}
				start := time.Now()
				if _, err := c.FileSize("/a.txt"); err != nil {
					b.Fatal(err)
				}
				op += time.Since(start)
				if mode == "running-program" {
					tm.expect("interrupted for FTP", wait)
					tm.expect(">>> ", wait)
					back += time.Since(start)
				}
				n++
			}
			b.ReportMetric(float64(op.Milliseconds())/float64(n), "op-ms")
			if back > 0 {
				b.ReportMetric(float64(back.Milliseconds())/float64(n), "prompt-ms")
			}
		})
	}
}
