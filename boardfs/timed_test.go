package boardfs_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/boardfs"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
	"github.com/ftpbridge/ftpbridge/scripts/rig"
)

// TestUploadBehindLatencyTimer uploads 256 KB of random bytes at 115200
// baud behind a 16 ms latency timer to boards whose flash pauses them and
// whose Python takes its chip's time: the file arrives SHA-256-exact and
// the board's input ring never lost a byte.
func TestUploadBehindLatencyTimer(t *testing.T) {
	if testing.Short() {
		t.Skip("about 25 s a board")
	}
	for _, p := range []boardtest.Profile{boardtest.ESP32, boardtest.ESP8266} {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			opts := boardtest.Options{Baud: 115200, Latency: 16 * time.Millisecond, Flash: true, CPU: true, Heap: rig.RealHeap(p)}
			f, b, dir := start(t, p, opts)
			ctx := ctxFor(t, 3*time.Minute)
			if err := f.Mkdir(ctx, dir); err != nil {
				t.Fatal(err)
			}
			data := random(256 * 1024)
			if err := f.WriteFile(ctx, dir+"/big.bin", bytes.NewReader(data), int64(len(data))); err != nil {
				t.Fatalf("WriteFile: %v (the board dropped %d bytes)", err, b.Dropped())
			}
			got, err := os.ReadFile(hostPath(b, dir+"/big.bin"))
			if err != nil || sha256.Sum256(got) != sha256.Sum256(data) {
				t.Errorf("the board holds %d bytes of another SHA-256 (%v)", len(got), err)
			}
			if n := b.Dropped(); n != 0 {
				t.Errorf("the board's input ring dropped %d bytes", n)
			}
		})
	}
}

// TestUploadFitsInputRing uploads at 115200 baud to boards that write
// flash and keep only their real input ring (the ESP32's 260 bytes, the
// ESP8266's 256): the host never has more on its way than the ring takes
// while the board writes flash, so the ring never overruns.
func TestUploadFitsInputRing(t *testing.T) {
	for _, p := range []boardtest.Profile{boardtest.ESP32, boardtest.ESP8266} {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			f, b, dir := start(t, p, boardtest.Options{Baud: 115200, Latency: 2 * time.Millisecond, Flash: true})
			ctx := ctxFor(t, 2*time.Minute)
			if err := f.Mkdir(ctx, dir); err != nil {
				t.Fatal(err)
			}
			data := random(24 * 1024)
			err := f.WriteFile(ctx, dir+"/x.bin", bytes.NewReader(data), int64(len(data)))
			if n := b.Dropped(); n != 0 {
				t.Errorf("the board's input ring dropped %d bytes (WriteFile: %v)", n, err)
			}
			if err != nil {
				t.Fatalf("WriteFile: %v", err)
			}
			if got, err := os.ReadFile(hostPath(b, dir+"/x.bin")); err != nil || !bytes.Equal(got, data) {
				t.Errorf("the board holds %d other bytes (%v)", len(got), err)
			}
		})
	}
}

// TestUploadHeldBackOnUSB: on native USB the host sends an upload without
// waiting for acknowledgements (Options.HeldBack); the board's full buffer
// holds it back through its flash pauses and the file lands whole.
func TestUploadHeldBackOnUSB(t *testing.T) {
	t.Parallel()
	f, b, dir := startWith(t, boardtest.ESP32, boardtest.Options{USBCDC: true, Flash: true}, boardfs.Options{HeldBack: true})
	ctx := ctxFor(t, 2*time.Minute)
	if err := f.Mkdir(ctx, dir); err != nil {
		t.Fatal(err)
	}
	data := random(64 * 1024)
	if err := f.WriteFile(ctx, dir+"/x.bin", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	if got, err := os.ReadFile(hostPath(b, dir+"/x.bin")); err != nil || !bytes.Equal(got, data) {
		t.Errorf("the board holds %d other bytes (%v)", len(got), err)
	}
}

// TestHeldBackOnUARTSaysSo: HeldBack on a line that is a UART (a user's
// wrong --line usb) loses bytes in the board's ring. The upload fails
// with ErrLineNotHeld, which says so, not with a silent board that a
// retry would wait out forever; the old file stays and the board works.
func TestHeldBackOnUARTSaysSo(t *testing.T) {
	t.Parallel()
	f, b, dir := startWith(t, boardtest.ESP32, boardtest.Options{Baud: 115200, Flash: true}, boardfs.Options{HeldBack: true})
	ctx := ctxFor(t, 2*time.Minute)
	if err := f.Mkdir(ctx, dir); err != nil {
		t.Fatal(err)
	}
	old := []byte("the old file\n")
	if err := f.WriteFile(ctx, dir+"/x.bin", bytes.NewReader(old), int64(len(old))); err != nil {
		t.Fatal(err)
	}
	data := random(16 * 1024)
	err := f.WriteFile(ctx, dir+"/x.bin", bytes.NewReader(data), int64(len(data)))
	if !errors.Is(err, boardfs.ErrLineNotHeld) || errors.Is(err, boardfs.ErrSilent) {
		t.Fatalf("WriteFile over a UART with HeldBack: %v, want ErrLineNotHeld (and not ErrSilent)", err)
	}
	if b.Dropped() == 0 {
		t.Errorf("the ring dropped nothing: the test did not overrun it")
	}
	if got, err := f.ReadFile(ctx, dir+"/x.bin", 0, io.Discard); err != nil || got != int64(len(old)) {
		t.Errorf("after the failed upload ReadFile = %d, %v; want the old %d bytes", got, err, len(old))
	}
}

// TestUploadStreamsInOneExec: bytes at hand (a bytes.Reader's, the
// spool's) go on in the exec that has the board, a block at a time,
// instead of a new exec per span: 96 KiB take one exec of data, besides
// the old file's probe and the check with the rename (_vr).
func TestUploadStreamsInOneExec(t *testing.T) {
	t.Parallel()
	f, b, dir := start(t, boardtest.ESP32, boardtest.Options{})
	ctx := ctxFor(t, 2*time.Minute)
	if err := f.Mkdir(ctx, dir); err != nil {
		t.Fatal(err)
	}
	data := random(96 * 1024)
	before := f.Stats().Execs
	if err := f.WriteFile(ctx, dir+"/x.bin", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	if n := f.Stats().Execs - before; n != 3 {
		t.Errorf("the upload took %d execs, want 3 (probe, data, check and rename)", n)
	}
	if got, err := os.ReadFile(hostPath(b, dir+"/x.bin")); err != nil || !bytes.Equal(got, data) {
		t.Errorf("the board holds %d other bytes (%v)", len(got), err)
	}
}
