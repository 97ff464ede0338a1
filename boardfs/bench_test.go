package boardfs_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/boardfs"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

const lineRate = 115200 / 10 // bytes a second at 115200 baud, 8N1

// BenchmarkTransfer moves a 256 KB file of random bytes and one of Python
// source at 115200 baud and reports line-ratio = file bytes / (elapsed x
// 11,520): above 1 when deflate makes the bytes on the wire fewer than the
// file's.
func BenchmarkTransfer(b *testing.B) {
	const size = 256 * 1024
	kinds := []struct {
		name string
		data []byte
	}{{"random", random(size)}, {"python", pythonSource(b, size)}}
	for _, p := range []boardtest.Profile{boardtest.ESP32, boardtest.ESP8266} {
		f, board, dir := start(b, p, boardtest.Options{Baud: 115200})
		ctx := ctxFor(b, 10*time.Minute)
		if err := f.Mkdir(ctx, dir); err != nil {
			b.Fatal(err)
		}
		for _, kind := range kinds {
			data := kind.data
			name := dir + "/" + kind.name
			b.Run("download/"+kind.name+"/"+string(p), func(b *testing.B) {
				if err := os.WriteFile(hostPath(board, name), data, 0o644); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(size)
				var elapsed time.Duration
				for b.Loop() {
					start := time.Now()
					var got bytes.Buffer
					n, err := f.ReadFile(ctx, name, 0, &got)
					elapsed += time.Since(start)
					if err != nil || n != size || !bytes.Equal(got.Bytes(), data) {
						b.Fatalf("ReadFile = %d, %v (equal: %v)", n, err, bytes.Equal(got.Bytes(), data))
					}
				}
				b.ReportMetric(float64(size)*float64(b.N)/elapsed.Seconds()/lineRate, "line-ratio")
			})
			b.Run("upload/"+kind.name+"/"+string(p), func(b *testing.B) {
				b.SetBytes(size)
				var elapsed time.Duration
				// A new file each time: over a file the board holds, only
				// what differs would cross (BenchmarkUploadEdited).
				up := name + ".new"
				for b.Loop() {
					_ = os.Remove(hostPath(board, up))
					start := time.Now()
					err := f.WriteFile(ctx, up, bytes.NewReader(data), size)
					elapsed += time.Since(start)
					if err != nil {
						b.Fatal(err)
					}
				}
				if got, err := os.ReadFile(hostPath(board, up)); err != nil || !bytes.Equal(got, data) {
					b.Fatalf("the board holds %d other bytes (%v)", len(got), err)
				}
				b.ReportMetric(float64(size)*float64(b.N)/elapsed.Seconds()/lineRate, "line-ratio")
			})
		}
	}
}

// pythonSource returns n bytes of real Python: the host's own standard
// library, the nearest thing at hand to the scripts people keep on boards.
func pythonSource(tb testing.TB, n int) []byte {
	tb.Helper()
	files, _ := filepath.Glob("/usr/lib/python3*/*.py")
	var src []byte
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			continue
		}
		src = append(src, b...)
		if len(src) >= n {
			return src[:n]
		}
	}
	tb.Skipf("no Python standard library under /usr/lib/python3* (apt-get install python3)")
	return nil
}

// BenchmarkList lists a 200-entry directory at 115200 baud, of names of
// 11 characters (file-000.py) and of 40, on a plain line and through a
// USB-serial adapter with FTDI's default 16 ms latency timer (with the
// ESP32's CPU time), and reports the execs and the bytes on the wire (both
// ways) per listing.
func BenchmarkList(b *testing.B) {
	lines := []struct {
		name string
		opts boardtest.Options
	}{
		{"plain", boardtest.Options{Baud: 115200}},
		{"ftdi-16ms", boardtest.Options{Baud: 115200, Latency: 16 * time.Millisecond, CPU: true}},
	}
	for _, line := range lines {
		for _, n := range []int{11, 40} {
			b.Run(fmt.Sprintf("%s/%d-char-names", line.name, n), func(b *testing.B) {
				benchList(b, line.opts, n)
			})
		}
	}
}

func benchList(b *testing.B, opts boardtest.Options, n int) {
	f, board, dir := start(b, boardtest.ESP32, opts)
	ctx := ctxFor(b, time.Minute)
	if err := f.Mkdir(ctx, dir); err != nil {
		b.Fatal(err)
	}
	for i := range 200 {
		name := fmt.Sprintf("file-%03d", i) + strings.Repeat("x", n-11) + ".py"
		os.WriteFile(filepath.Join(hostPath(board, dir), name), []byte("x=1\n"), 0o644)
	}
	before := f.Stats()
	for b.Loop() {
		entries, err := f.List(ctx, dir)
		if err != nil || len(entries) != 200 {
			b.Fatalf("List = %d entries, %v", len(entries), err)
		}
	}
	after := f.Stats()
	ops := float64(b.N)
	b.ReportMetric(float64(after.Execs-before.Execs)/ops, "execs/op")
	b.ReportMetric(float64(after.Sent+after.Received-before.Sent-before.Received)/ops, "wire-bytes/op")
}

// BenchmarkCachedDownload reads a 96 KB Python file the bridge has read
// before, unchanged and with 1 KB changed on the board since, at 115200
// baud, and reports line-ratio = file bytes / (elapsed x 11,520).
func BenchmarkCachedDownload(b *testing.B) {
	const size = 96 * 1024
	for _, p := range []boardtest.Profile{boardtest.ESP32, boardtest.ESP8266} {
		cache := &memCache{m: map[string][]byte{}}
		f, board, dir := startWith(b, p, boardtest.Options{Baud: 115200}, boardfs.Options{Cache: cache})
		ctx := ctxFor(b, 10*time.Minute)
		if err := f.Mkdir(ctx, dir); err != nil {
			b.Fatal(err)
		}
		name := dir + "/app.py"
		data := pythonSource(b, size)
		if err := os.WriteFile(hostPath(board, name), data, 0o644); err != nil {
			b.Fatal(err)
		}
		if _, err := f.ReadFile(ctx, name, 0, io.Discard); err != nil {
			b.Fatal(err)
		}
		for _, change := range []int{0, 1024} {
			label := "unchanged"
			if change > 0 {
				label = "1KB-changed"
			}
			b.Run(label+"/"+string(p), func(b *testing.B) {
				b.SetBytes(size)
				var elapsed time.Duration
				i := 0
				for b.Loop() {
					if change > 0 {
						// A different KB each time, so each read has news.
						i++
						at := (i * 7919 * 13) % (size - change)
						for j := range change {
							data[at+j] = 'a' + byte((i+j)%26)
						}
						if err := os.WriteFile(hostPath(board, name), data, 0o644); err != nil {
							b.Fatal(err)
						}
					}
					start := time.Now()
					var got bytes.Buffer
					_, err := f.ReadFile(ctx, name, 0, &got)
					elapsed += time.Since(start)
					if err != nil || !bytes.Equal(got.Bytes(), data) {
						b.Fatalf("ReadFile = %d bytes, %v (equal: %v)", got.Len(), err, bytes.Equal(got.Bytes(), data))
					}
				}
				b.ReportMetric(float64(size)*float64(b.N)/elapsed.Seconds()/lineRate, "line-ratio")
			})
		}
	}
}

// BenchmarkUploadEdited uploads a 96 KB Python file the board already
// holds, with 1 KB changed each time, at 115200 baud, and reports
// line-ratio = file bytes / (elapsed x 11,520).
func BenchmarkUploadEdited(b *testing.B) {
	const size = 96 * 1024
	for _, p := range []boardtest.Profile{boardtest.ESP32, boardtest.ESP8266} {
		f, board, dir := start(b, p, boardtest.Options{Baud: 115200})
		ctx := ctxFor(b, 10*time.Minute)
		if err := f.Mkdir(ctx, dir); err != nil {
			b.Fatal(err)
		}
		name := dir + "/app.py"
		data := pythonSource(b, size)
		if err := os.WriteFile(hostPath(board, name), data, 0o644); err != nil {
			b.Fatal(err)
		}
		b.Run("1KB-changed/"+string(p), func(b *testing.B) {
			b.SetBytes(size)
			var elapsed time.Duration
			i := 0
			for b.Loop() {
				i++
				at := (i * 7919 * 13) % (size - 1024)
				for j := range 1024 {
					data[at+j] = 'a' + byte((i+j)%26)
				}
				start := time.Now()
				err := f.WriteFile(ctx, name, bytes.NewReader(data), size)
				elapsed += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
			}
			if got, err := os.ReadFile(hostPath(board, name)); err != nil || !bytes.Equal(got, data) {
				b.Fatalf("the board holds %d other bytes (%v)", len(got), err)
			}
			b.ReportMetric(float64(size)*float64(b.N)/elapsed.Seconds()/lineRate, "line-ratio")
		})
	}
}

// BenchmarkMicrobitTransfer moves 4 KB of random bytes to and from the
// micro:bit's real firmware at 115200 baud, raw through microbit.uart in
// acknowledged pieces up and summed frames down. line-ratio = file bytes /
// (elapsed x 11,520).
func BenchmarkMicrobitTransfer(b *testing.B) {
	const size = 4 * 1024
	f, _, _ := start(b, boardtest.Microbit, boardtest.Options{Baud: 115200})
	ctx := ctxFor(b, 10*time.Minute)
	data := random(size)
	var up, down time.Duration
	for b.Loop() {
		start := time.Now()
		if err := f.WriteFile(ctx, "/bench.bin", bytes.NewReader(data), size); err != nil {
			b.Fatal(err)
		}
		up += time.Since(start)
		start = time.Now()
		var got bytes.Buffer
		if _, err := f.ReadFile(ctx, "/bench.bin", 0, &got); err != nil || !bytes.Equal(got.Bytes(), data) {
			b.Fatalf("ReadFile: %v (equal: %v)", err, bytes.Equal(got.Bytes(), data))
		}
		down += time.Since(start)
		if err := f.Remove(ctx, "/bench.bin"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size)*float64(b.N)/up.Seconds()/lineRate, "upload-line-ratio")
	b.ReportMetric(float64(size)*float64(b.N)/down.Seconds()/lineRate, "download-line-ratio")
}
