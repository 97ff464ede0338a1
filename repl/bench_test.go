package repl_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/repl"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

const lineRate = 115200 / 10 // bytes a second at 115200 baud, 8N1

// BenchmarkEmptyExec is the round trip of an exec that does nothing, at
// 115200 baud: the fixed cost of every board operation.
func BenchmarkEmptyExec(b *testing.B) {
	for _, p := range []boardtest.Profile{boardtest.ESP32, boardtest.ESP8266} {
		// Behind an adapter's latency timer every wait for the board's
		// answer costs up to that long.
		for _, latency := range []time.Duration{0, 2 * time.Millisecond, 16 * time.Millisecond} {
			b.Run(fmt.Sprintf("%s/latency=%v", p, latency), func(b *testing.B) {
				board := boardtest.Start(b, p, boardtest.Options{Baud: 115200, Latency: latency})
				c := open(b, board, repl.Options{})
				ctx := ctxFor(b, time.Minute)
				if _, err := c.Exec(ctx, "pass"); err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				for b.Loop() {
					if _, err := c.Exec(ctx, "pass"); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/exec")
			})
		}
	}
}

// BenchmarkUpload10KCode sends 10 KB of code: raw-paste on the esp32, plain
// raw mode in pieces on the esp8266. line-ratio = code bytes / (elapsed x
// 11,520): the share of the line the upload uses.
func BenchmarkUpload10KCode(b *testing.B) {
	code, want := bigCode(10 * 1024)
	for _, p := range []boardtest.Profile{boardtest.ESP32, boardtest.ESP8266} {
		b.Run(string(p), func(b *testing.B) {
			board := boardtest.Start(b, p, boardtest.Options{Baud: 115200})
			c := open(b, board, repl.Options{})
			ctx := ctxFor(b, 5*time.Minute)
			if _, err := c.Exec(ctx, "pass"); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(code)))
			start := time.Now()
			for b.Loop() {
				out, err := c.Exec(ctx, code)
				if err != nil || trim(out) != want {
					b.Fatalf("Exec = %q, %v", out, err)
				}
			}
			elapsed := time.Since(start).Seconds() / float64(b.N)
			b.ReportMetric(float64(len(code))/(elapsed*lineRate), "line-ratio")
		})
	}
}
