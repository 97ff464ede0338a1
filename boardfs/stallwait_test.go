package boardfs_test

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/ftpbridge/ftpbridge/boardfs"
	"github.com/ftpbridge/ftpbridge/scripts/boardtest"
)

// A board that stalls for less than the silence bound, while an upload
// holds it and another operation waits: the wait does not count the
// stall as the upload's work, so once the board answers the waiting
// operation gets its turn, not "busy" (the attack pass's 6-8 s stalls
// failed a RETR behind a spooled upload so).
func TestShortStallIsNotBusy(t *testing.T) {
	t.Parallel()
	f, b, dir := startWith(t, boardtest.ESP32, boardtest.Options{Baud: 115200}, boardfs.Options{BusyWait: 3 * time.Second})
	ctx := ctxFor(t, 2*time.Minute)
	if err := os.WriteFile(hostPath(b, "/other.txt"), []byte("other"), 0o644); err != nil {
		t.Fatal(err)
	}
	data := random(160 << 10)
	up := make(chan error, 1)
	go func() { up <- f.WriteFile(ctx, dir+".bin", bytes.NewReader(data), int64(len(data))) }()
	time.Sleep(1500 * time.Millisecond) // the upload is under way
	b.Stall(6 * time.Second)            // past BusyWait, short of the silence bound
	start := time.Now()
	e, err := f.Stat(ctx, "/other.txt")
	if err != nil || e.Size != 5 {
		t.Fatalf("Stat behind an upload whose board stalled 6 s: %+v, %v (after %v)", e, err, time.Since(start).Round(time.Millisecond))
	}
	if err := <-up; err != nil {
		t.Fatalf("the upload: %v", err)
	}
	if got, _ := os.ReadFile(hostPath(b, dir+".bin")); !bytes.Equal(got, data) {
		t.Errorf("the board holds %d other bytes", len(got))
	}
}
