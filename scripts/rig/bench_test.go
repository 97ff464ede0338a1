package rig_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.bug.st/serial"

	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
	"github.com/ftpbridge/ftpbridge/scripts/rig"
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

// BenchmarkReferenceUpload uploads 32 KB the way mpremote's fs cp does
// (raw-paste, a repr-quoted 256-byte chunk per exec) and reports
// line-ratio = file bytes / (elapsed x 11,520), and file-B/s. On a real
// STM32WB55 at 115200 baud mpremote moves random data at 1.56-1.96 KB/s,
// 0.14-0.17 of the line, and Python source at 2.26-3.18 KB/s (micropython
// PR #18785): the stm32wb55 rows, a Pyboard's Cortex-M4 at the WB55's 64
// MHz, are the rig's calibration and should land there.
func BenchmarkReferenceUpload(b *testing.B) {
	const size = 32 * 1024
	const lineRate = 115200 / 10
	timed := func(p boardtest.Profile, o boardtest.Options) boardtest.Options {
		o.Flash, o.CPU, o.Heap = true, true, rig.RealHeap(p)
		return o
	}
	wb55 := timed(boardtest.Pyboard, boardtest.Options{Baud: 115200, Latency: 2 * time.Millisecond, ClockMHz: 64})
	random := make([]byte, size)
	rand.Read(random)
	source := pythonSource(b, size)
	type refCase struct {
		name    string
		profile boardtest.Profile
		opts    boardtest.Options
		data    []byte
	}
	cases := []refCase{
		{"stm32wb55/latency=2ms/timed/random", boardtest.Pyboard, wb55, random},
		{"stm32wb55/latency=2ms/timed/python", boardtest.Pyboard, wb55, source},
	}
	// The smaller files of the same table, which the model was not fitted
	// to: their open and close weigh more (PROTOCOL.md, Calibration).
	for _, kb := range []int{1, 5, 10} {
		cases = append(cases,
			refCase{fmt.Sprintf("stm32wb55/latency=2ms/timed/random/%dKB", kb), boardtest.Pyboard, wb55, random[:kb<<10]},
			refCase{fmt.Sprintf("stm32wb55/latency=2ms/timed/python/%dKB", kb), boardtest.Pyboard, wb55, source[:kb<<10]})
	}
	cases = append(cases, []refCase{
		{"esp32/untimed", boardtest.ESP32, boardtest.Options{Baud: 115200}, random},
		{"esp32/latency=2ms/flash", boardtest.ESP32, boardtest.Options{Baud: 115200, Latency: 2 * time.Millisecond, Flash: true}, random},
		{"esp32/latency=2ms/timed", boardtest.ESP32, timed(boardtest.ESP32, boardtest.Options{Baud: 115200, Latency: 2 * time.Millisecond}), random},
		{"esp32/latency=16ms/timed", boardtest.ESP32, timed(boardtest.ESP32, boardtest.Options{Baud: 115200, Latency: 16 * time.Millisecond}), random},
		{"esp32/usb-cdc/timed", boardtest.ESP32, timed(boardtest.ESP32, boardtest.Options{USBCDC: true}), random},
	}...)
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			board := boardtest.Start(b, c.profile, c.opts)
			port, err := serial.Open(board.Device, &serial.Mode{BaudRate: 115200})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { port.Close() })
			var phases [5]time.Duration
			m := &mpremote{s: newPyserial(port), phases: &phases}
			if err := m.enterRaw(); err != nil {
				b.Fatal(err)
			}
			size := len(c.data)
			b.SetBytes(int64(size))
			var elapsed time.Duration
			for b.Loop() {
				start := time.Now()
				if err := m.writeFile("ref.bin", c.data); err != nil {
					b.Fatal(err)
				}
				elapsed += time.Since(start)
			}
			// A Pyboard starts in /flash, its internal drive.
			home := board.Root
			if c.profile == boardtest.Pyboard {
				home = filepath.Join(home, "flash")
			}
			if got, err := os.ReadFile(filepath.Join(home, "ref.bin")); err != nil || !bytes.Equal(got, c.data) {
				b.Fatalf("the board holds %d other bytes (%v)", len(got), err)
			}
			perSecond := float64(size) * float64(b.N) / elapsed.Seconds()
			b.ReportMetric(perSecond/lineRate, "line-ratio")
			b.ReportMetric(perSecond, "file-B/s")
			// Where an exec's time goes (open, chunks and close).
			execs := float64(b.N * ((size+255)/256 + 2))
			for i, name := range []string{"prompt", "paste-ok", "send", "end-ack", "output"} {
				b.ReportMetric(phases[i].Seconds()*1000/execs, name+"-ms/exec")
			}
		})
	}
}

// pythonSource returns n bytes of real Python: the host's own standard
// library, as the upload benchmarks in boardfs use.
func pythonSource(tb testing.TB, n int) []byte {
	tb.Helper()
	files, _ := filepath.Glob("/usr/lib/python3*/*.py")
	var src []byte
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			src = append(src, b...)
		}
		if len(src) >= n {
			return src[:n]
		}
	}
	tb.Skip("no Python standard library under /usr/lib/python3* (apt-get install python3)")
	return nil
}
