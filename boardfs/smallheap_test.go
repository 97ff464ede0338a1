package boardfs_test

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/boardfs"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
	"github.com/ftpbridge/ftpbridge/scripts/rig"
)

// An ESP8266 has about 30 KB free after boot, less once the helpers are
// in: Python source, which goes deflated, must still upload whole there.
func TestPythonUploadOnESP8266Heap(t *testing.T) {
	f, b, dir := startWith(t, boardtest.ESP8266, boardtest.Options{Baud: 115200, Heap: rig.RealHeap(rig.ESP8266), Flash: true, CPU: true}, boardfs.Options{})
	ctx := ctxFor(t, 2*time.Minute)
	// First a file that goes plain, as the benchmark uploads before.
	if err := f.WriteFile(ctx, dir+".bin", bytes.NewReader(random(96<<10)), 96<<10); err != nil {
		t.Fatal(err)
	}
	src := bytes.NewBuffer(pythonSource(t, 96<<10))
	p := dir + ".py"
	if err := f.WriteFile(ctx, p, bytes.NewReader(src.Bytes()), int64(src.Len())); err != nil {
		t.Fatalf("uploading %d bytes of Python on a %d-byte heap: %v", src.Len(), rig.RealHeap(rig.ESP8266), err)
	}
	got, err := os.ReadFile(hostPath(b, p))
	if err != nil || !bytes.Equal(got, src.Bytes()) {
		t.Fatalf("the board holds %d bytes (%v), want the %d uploaded", len(got), err, src.Len())
	}
}

// TestBigUploadOnESP8266Heap: the check that ends an upload reads the whole
// file in one exec; on a 30 KB heap it must not leave garbage per piece
// read (the VM collects only between execs): a 1 MB file failed there.
func TestBigUploadOnESP8266Heap(t *testing.T) {
	t.Parallel()
	f, b, dir := startWith(t, boardtest.ESP8266, boardtest.Options{Heap: rig.RealHeap(rig.ESP8266)}, boardfs.Options{})
	ctx := ctxFor(t, 2*time.Minute)
	data := random(1 << 20)
	if err := f.WriteFile(ctx, dir+".bin", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("uploading 1 MB on a %d-byte heap: %v", rig.RealHeap(rig.ESP8266), err)
	}
	if got, err := os.ReadFile(hostPath(b, dir+".bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the board holds %d other bytes (%v)", len(got), err)
	}
}
