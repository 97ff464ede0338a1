package boardfs_test

import (
	"bytes"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

// script returns n bytes of Python that deflate shrinks the way it shrinks
// real scripts.
func script(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "def handler_%d(pin, value=%d):\n    # toggle the LED on pin %d\n    led = machine.Pin(pin, machine.Pin.OUT)\n    led.value(value ^ %d)\n    return led\n\n", i, i%7, i%40, i%3)
	}
	return b.Bytes()[:n]
}

// TestDeflatedTransfers: on a board with deflate, Python source crosses the
// line in fewer bytes than it has, both ways, and arrives exact; a bit
// flipped in a deflated segment is caught and the segment read again.
func TestDeflatedTransfers(t *testing.T) {
	t.Parallel()
	const size = 48 * 1024
	data := script(size)
	// Connecting moves under 1 KB from the board; the first download's
	// deflated 48 KB then take the next 4.5 KB, where the bit flips.
	f, b, dir := start(t, boardtest.ESP32, boardtest.Options{FlipAt: 2500})
	ctx := ctxFor(t, time.Minute)
	if !f.Board().Compress {
		t.Fatalf("the esp32 profile's VM cannot deflate: %+v", f.Board())
	}
	if err := f.Mkdir(ctx, dir); err != nil {
		t.Fatal(err)
	}
	name := dir + "/main.py"
	if err := os.WriteFile(hostPath(b, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	var execs []int64
	for _, round := range []string{"with a flipped bit", "clean"} {
		before := f.Stats()
		var got bytes.Buffer
		if _, err := f.ReadFile(ctx, name, 0, &got); err != nil || !bytes.Equal(got.Bytes(), data) {
			t.Fatalf("%s: ReadFile = %d bytes (equal %v), %v", round, got.Len(), bytes.Equal(got.Bytes(), data), err)
		}
		after := f.Stats()
		execs = append(execs, after.Execs-before.Execs)
		if received := after.Received - before.Received; round == "clean" && received > size/2 {
			t.Errorf("downloading %d bytes of Python received %d bytes", size, received)
		}
	}
	if execs[0] != execs[1]+1 {
		t.Errorf("the download with a flipped bit took %d execs, the clean one %d: want one segment read again", execs[0], execs[1])
	}

	data = script(size + 1000)[1000:]
	before := f.Stats()
	if err := f.WriteFile(ctx, name, bytes.NewReader(data), size); err != nil {
		t.Fatal(err)
	}
	if sent := f.Stats().Sent - before.Sent; sent > size/2 {
		t.Errorf("uploading %d bytes of Python sent %d bytes", size, sent)
	}
	if got, err := os.ReadFile(hostPath(b, name)); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the board holds %d other bytes (%v)", len(got), err)
	}
}
