package ftpdriver_test

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/ftpdriver"
	"github.com/ftpbridge/ftpbridge/ftpdriver/ftptest"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

const lineRate = 115200 / 10 // bytes a second at 115200 baud, 8N1

// BenchmarkTransfer moves a 128 KB file through a real FTP client at 115200
// baud and reports line-ratio = payload bytes / (elapsed x 11,520): what the
// FTP layer costs on top of boardfs is the gap to boardfs's own benchmark.
func BenchmarkTransfer(b *testing.B) {
	const size = 128 * 1024
	data := randomBytes(size, 10)
	for _, p := range []boardtest.Profile{boardtest.ESP32, boardtest.ESP8266} {
		// STOR answers once the board has the file, however long that
		// takes: the line is what is measured, not the spool.
		s := ftptest.Start(b, ftptest.Options{Profile: p, Board: boardtest.Options{Baud: 115200},
			Driver: ftpdriver.Options{UploadWait: time.Hour}})
		c := s.Dial(b)
		b.Run("RETR/"+string(p), func(b *testing.B) {
			put(b, s.Board.Root, "big.bin", data)
			b.SetBytes(size)
			var elapsed time.Duration
			for b.Loop() {
				start := time.Now()
				r, err := c.Retr("/big.bin")
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.Copy(io.Discard, r)
				if cerr := r.Close(); err == nil {
					err = cerr
				}
				elapsed += time.Since(start)
				if err != nil || n != size {
					b.Fatalf("RETR = %d, %v", n, err)
				}
			}
			b.ReportMetric(float64(size)*float64(b.N)/elapsed.Seconds()/lineRate, "line-ratio")
		})
		b.Run("STOR/"+string(p), func(b *testing.B) {
			b.SetBytes(size)
			var elapsed time.Duration
			for b.Loop() {
				start := time.Now()
				err := c.Stor("/up.bin", bytes.NewReader(data))
				elapsed += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(size)*float64(b.N)/elapsed.Seconds()/lineRate, "line-ratio")
		})
	}
}
