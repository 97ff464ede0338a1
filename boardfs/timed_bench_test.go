package boardfs_test

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/boardfs"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
	"github.com/ftpbridge/ftpbridge/scripts/rig"
)

// BenchmarkTimedTransfer moves 96 KiB of random bytes, cold (no cache),
// at 115200 baud behind a USB-serial adapter's latency timer, to and from
// a board whose flash takes time ("flash") and whose Python also takes its
// chip's time in a board-sized heap ("timed"), and reports line-ratio =
// file bytes / (elapsed x 11,520). On the timed ESP32 it also uploads 96
// KiB of Python source, where deflate should make the ratio 2 or more. At
// the end it logs the ratios side by side, a row per adapter latency, as
// issue 12's table has them.
func BenchmarkTimedTransfer(b *testing.B) {
	const size = 96 * 1024
	data := random(size)
	source := pythonSource(b, size)
	ratios := map[string]float64{}
	var rows []string
	for _, p := range []boardtest.Profile{boardtest.ESP32, boardtest.ESP8266} {
		for _, latency := range []time.Duration{2 * time.Millisecond, 16 * time.Millisecond} {
			for _, model := range []string{"flash", "timed"} {
				opts := boardtest.Options{Baud: 115200, Latency: latency, Flash: true}
				if model == "timed" {
					opts.CPU, opts.Heap = true, rig.RealHeap(p)
				}
				name := fmt.Sprintf("%s/latency=%v/%s", p, latency, model)
				rows = append(rows, name)
				f, board, dir := start(b, p, opts)
				ctx := ctxFor(b, 10*time.Minute)
				if err := f.Mkdir(ctx, dir); err != nil {
					b.Fatal(err)
				}
				kinds := map[string][]byte{"upload": data}
				if model == "timed" && p == boardtest.ESP32 {
					// Not the ESP8266: there _wz runs out of its 30 KB
					// heap (MemoryError allocating its 4 KB window) after
					// a plain upload, and uploads go plain from then on
					// (TestPythonUploadOnESP8266Heap).
					kinds["upload-python"] = source
				}
				for _, kind := range []string{"upload", "upload-python"} {
					file := kinds[kind]
					if file == nil {
						continue
					}
					b.Run(kind+"/"+name, func(b *testing.B) {
						b.SetBytes(size)
						var elapsed time.Duration
						up := dir + "/up.bin"
						for b.Loop() {
							_ = os.Remove(hostPath(board, up))
							start := time.Now()
							if err := f.WriteFile(ctx, up, bytes.NewReader(file), size); err != nil {
								b.Fatal(err)
							}
							elapsed += time.Since(start)
						}
						if got, err := os.ReadFile(hostPath(board, up)); err != nil || !bytes.Equal(got, file) {
							b.Fatalf("the board holds %d other bytes (%v)", len(got), err)
						}
						if n := board.Dropped(); n != 0 {
							b.Fatalf("the board's input ring dropped %d bytes", n)
						}
						r := float64(size) * float64(b.N) / elapsed.Seconds() / lineRate
						ratios[kind+"/"+name] = r
						b.ReportMetric(r, "line-ratio")
					})
				}
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
					r := float64(size) * float64(b.N) / elapsed.Seconds() / lineRate
					ratios["download/"+name] = r
					b.ReportMetric(r, "line-ratio")
				})
			}
		}
	}
	// A leaf of its own: go test prints a parent benchmark's log only
	// when it fails.
	b.Run("table", func(b *testing.B) {
		var t strings.Builder
		fmt.Fprintf(&t, "line ratios, 96 KiB at 115200 baud, cold:\n%-30s %6s %6s %8s\n", "board/latency/model", "STOR", "RETR", "STOR py")
		for _, row := range rows {
			py := "-"
			if r, ok := ratios["upload-python/"+row]; ok {
				py = fmt.Sprintf("%.2f", r)
			}
			fmt.Fprintf(&t, "%-30s %6.3f %6.3f %8s\n", row, ratios["upload/"+row], ratios["download/"+row], py)
		}
		b.Log(t.String())
	})
}

// BenchmarkUSBCDCTransfer moves 96 KiB of random bytes, cold, to and from
// a timed ESP32 on its native USB (USB CDC: 64-byte packets, one a 1 ms
// frame, no baud rate) and reports file-B/s, to set against
// BenchmarkReferenceUpload's usb-cdc row in scripts/rig (mpremote's way).
func BenchmarkUSBCDCTransfer(b *testing.B) {
	const size = 96 * 1024
	data := random(size)
	p := boardtest.ESP32
	f, board, dir := startWith(b, p, boardtest.Options{USBCDC: true, Flash: true, CPU: true, Heap: rig.RealHeap(p)}, boardfs.Options{HeldBack: true})
	ctx := ctxFor(b, 10*time.Minute)
	if err := f.Mkdir(ctx, dir); err != nil {
		b.Fatal(err)
	}
	b.Run("upload", func(b *testing.B) {
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
		b.ReportMetric(float64(size)*float64(b.N)/elapsed.Seconds(), "file-B/s")
	})
	b.Run("download", func(b *testing.B) {
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
				b.Fatalf("ReadFile = %d, %v", n, err)
			}
		}
		b.ReportMetric(float64(size)*float64(b.N)/elapsed.Seconds(), "file-B/s")
	})
}
