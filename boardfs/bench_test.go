package boardfs_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

const lineRate = 115200 / 10 // bytes a second at 115200 baud, 8N1

// BenchmarkTransfer moves a 256 KB random file at 115200 baud and reports
// line-ratio = payload bytes / (elapsed x 11,520).
func BenchmarkTransfer(b *testing.B) {
	const size = 256 * 1024
	data := random(size)
	for _, p := range []boardtest.Profile{boardtest.ESP32, boardtest.ESP8266} {
		f, board, dir := start(b, p, boardtest.Options{Baud: 115200})
		ctx := ctxFor(b, 10*time.Minute)
		if err := f.Mkdir(ctx, dir); err != nil {
			b.Fatal(err)
		}
		name := dir + "/big.bin"
		b.Run("download/"+string(p), func(b *testing.B) {
			if err := os.WriteFile(hostPath(board, name), data, 0o644); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(size)
			var elapsed time.Duration
			for b.Loop() {
				start := time.Now()
				n, err := f.ReadFile(ctx, name, 0, io.Discard)
				elapsed += time.Since(start)
				if err != nil || n != size {
					b.Fatalf("ReadFile = %d, %v", n, err)
				}
			}
			b.ReportMetric(float64(size)*float64(b.N)/elapsed.Seconds()/lineRate, "line-ratio")
		})
		b.Run("upload/"+string(p), func(b *testing.B) {
			b.SetBytes(size)
			var elapsed time.Duration
			for b.Loop() {
				start := time.Now()
				err := f.WriteFile(ctx, name, bytes.NewReader(data), size)
				elapsed += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(size)*float64(b.N)/elapsed.Seconds()/lineRate, "line-ratio")
		})
	}
}

// BenchmarkList lists a 200-entry directory: one exec, and the bytes the
// board sends for it.
func BenchmarkList(b *testing.B) {
	f, board, dir := start(b, boardtest.ESP32, boardtest.Options{Baud: 115200})
	ctx := ctxFor(b, time.Minute)
	if err := f.Mkdir(ctx, dir); err != nil {
		b.Fatal(err)
	}
	for i := range 200 {
		os.WriteFile(filepath.Join(hostPath(board, dir), fmt.Sprintf("file-%03d.py", i)), []byte("x=1\n"), 0o644)
	}
	before := f.Stats()
	for b.Loop() {
		entries, err := f.List(ctx, dir)
		if err != nil || len(entries) != 200 {
			b.Fatalf("List = %d entries, %v", len(entries), err)
		}
	}
	after := f.Stats()
	n := float64(b.N)
	b.ReportMetric(float64(after.Execs-before.Execs)/n, "execs/op")
	b.ReportMetric(float64(after.Sent+after.Received-before.Sent-before.Received)/n, "wire-bytes/op")
}
