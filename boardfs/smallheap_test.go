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
