package boardfs_test

import (
	"bytes"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
	"github.com/ftpbridge/ftpbridge/scripts/rig"
)

// BenchmarkTimedTransfer moves 96 KiB of random bytes, cold (no cache),
// at 115200 baud behind a USB-serial adapter's latency timer, to and from
// a board whose flash takes time ("flash") and whose Python also takes its
// chip's time in a board-sized heap ("timed"), and reports line-ratio =
// file bytes / (elapsed x 11,520). It is the baseline for transfers made
// for a real board's timing.
func BenchmarkTimedTransfer(b *testing.B) {
	const size = 96 * 1024
	data := random(size)
	for _, p := range []boardtest.Profile{boardtest.ESP32, boardtest.ESP8266} {
		for _, latency := range []time.Duration{2 * time.Millisecond, 16 * time.Millisecond} {
			for _, model := range []string{"flash", "timed"} {
				opts := boardtest.Options{Baud: 115200, Latency: latency, Flash: true}
				if model == "timed" {
					opts.CPU, opts.Heap = true, rig.RealHeap(p)
				}
				name := fmt.Sprintf("%s/latency=%v/%s", p, latency, model)
				f, board, dir := start(b, p, opts)
				ctx := ctxFor(b, 10*time.Minute)
				if err := f.Mkdir(ctx, dir); err != nil {
					b.Fatal(err)
				}
				b.Run("upload/"+name, func(b *testing.B) {
					b.SetBytes(size)
					var elapsed time.Duration
					up := dir + "/up.bin"
					for b.Loop() {
						_ = os.Remove(hostPath(board, up))
						start := time.Now()
						if err := f.WriteFile(ctx, up, bytes.NewReader(data), size); err != nil {
							b.Fatal(err)
						}
						elapsed += time.Since(start)
					}
					if got, err := os.ReadFile(hostPath(board, up)); err != nil || !bytes.Equal(got, data) {
						b.Fatalf("the board holds %d other bytes (%v)", len(got), err)
					}
					b.ReportMetric(float64(size)*float64(b.N)/elapsed.Seconds()/lineRate, "line-ratio")
				})
				b.Run("download/"+name, func(b *testing.B) {
					down := dir + "/down.bin"
					if err := os.WriteFile(hostPath(board, down), data, 0o644); err != nil {
						b.Fatal(err)
					}
					b.SetBytes(size)
					var elapsed time.Duration
					for b.Loop() {
						start := time.Now()
						var got bytes.Buffer
						n, err := f.ReadFile(ctx, down, 0, &got)
						elapsed += time.Since(start)
						if err != nil || n != size || !bytes.Equal(got.Bytes(), data) {
							b.Fatalf("ReadFile = %d, %v (equal: %v)", n, err, bytes.Equal(got.Bytes(), data))
						}
					}
					b.ReportMetric(float64(size)*float64(b.N)/elapsed.Seconds()/lineRate, "line-ratio")
				})
			}
		}
	}
}
