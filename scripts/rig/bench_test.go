package rig_test

import (
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

// BenchmarkLineRate measures how fast 64 KB written by the board reach the
// host at 115200 baud, as a ratio to the line's 11,520 bytes a second: a
// faithful line gives close to 1.
func BenchmarkLineRate(b *testing.B) {
	const size = 64 * 1024
	const lineRate = 115200 / 10
	board := boardtest.Start(b, boardtest.ESP32, boardtest.Options{Baud: 115200})
	l := openLine(b, board.Device)
	l.enterRaw()
	var elapsed time.Duration
	b.SetBytes(size)
	for b.Loop() {
		l.write("import sys\nb=bytes(1024)\nfor i in range(64): sys.stdout.buffer.write(b)\x04")
		l.expect("OK", 10*time.Second)
		// Time from the first payload byte to the last.
		first := l.expect("\x00", 10*time.Second)
		if first != "" {
			b.Fatalf("unexpected output before the payload: %q", first)
		}
		start := time.Now()
		payload := l.expect("\x04", time.Minute)
		elapsed += time.Since(start)
		if len(payload) != size-1 {
			b.Fatalf("payload is %d bytes, want %d", len(payload)+1, size)
		}
		l.expect("\x04>", 10*time.Second)
	}
	b.ReportMetric(float64(size-1)*float64(b.N)/elapsed.Seconds()/lineRate, "line-ratio")
}
