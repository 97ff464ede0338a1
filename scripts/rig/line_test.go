package rig

import (
	"bytes"
	"testing"
	"time"
)

// TestAdapterPackets: full 62-byte packets leave at once, the rest at the
// latency timer's next expiry after it arrived, counted from the last
// packet sent; order is kept.
func TestAdapterPackets(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := &adapter{latency: 16 * time.Millisecond, last: t0}
	data := make([]byte, 130)
	for i := range data {
		data[i] = byte(i)
	}
	at := t0.Add(5 * time.Millisecond)
	packets := a.add(data, at)
	if len(packets) != 2 || len(packets[0]) != 62 || len(packets[1]) != 62 {
		t.Fatalf("add(130 bytes) sent %d packets, want two of 62", len(packets))
	}
	// The timer restarted with the packets: the 6 bytes left go 16 ms later.
	if due := a.due(); !due.Equal(at.Add(16 * time.Millisecond)) {
		t.Errorf("due = %v after the packets, want %v", due.Sub(t0), at.Add(16*time.Millisecond).Sub(t0))
	}
	tail := a.expire(a.due())
	got := append(append(append([]byte(nil), packets[0]...), packets[1]...), tail...)
	if !bytes.Equal(got, data) {
		t.Errorf("the adapter reordered or lost bytes")
	}
	if a.due() != (time.Time{}) {
		t.Errorf("an empty adapter is due at %v", a.due())
	}
	// On an idle line the timer keeps ticking every 16 ms from the last
	// packet: a byte arriving 40 ms later waits for the tick at 48 ms.
	last := a.last
	a.add([]byte{1}, last.Add(40*time.Millisecond))
	if due := a.due(); !due.Equal(last.Add(48 * time.Millisecond)) {
		t.Errorf("due = %v after the last packet, want 48ms", due.Sub(last))
	}
}

// TestPacerFrames: an idle adapter line starts on the next 1 ms frame; a
// CDC line carries one 64-byte packet per frame.
func TestPacerFrames(t *testing.T) {
	p := newPacer(115200)
	p.frame = usbFrame
	p.epoch = time.Now().Add(-300 * time.Microsecond)
	if !p.wait(1, time.Now(), nil) {
		t.Fatal("wait failed")
	}
	if left := p.next.Add(-p.perByte).Sub(p.epoch); left%usbFrame != 0 {
		t.Errorf("the first byte left %v into a frame, want at its start", left%usbFrame)
	}
	c := newCDCPacer()
	start := time.Now()
	if c.chunk() != 64 {
		t.Errorf("a CDC line moves %d bytes a frame, want 64", c.chunk())
	}
	for range 20 {
		c.wait(64, time.Now(), nil)
	}
	if took := time.Since(start); took < 19*time.Millisecond {
		t.Errorf("20 packets took %v, want at least 19 frames", took)
	}
}

// TestPacerMakesUpForLateWakes: bytes that waited while the pacer woke
// late (a loaded host) still leave at the line's rate; only a line the
// host left idle loses the time, and bytes held back long (a stall) do not
// leave in one burst.
func TestPacerMakesUpForLateWakes(t *testing.T) {
	p := newPacer(115200)
	arrived := time.Now()
	const chunks = 10
	for i := range chunks {
		if !p.wait(p.chunk(), arrived, nil) {
			t.Fatal("wait failed")
		}
		if i == 0 {
			time.Sleep(4 * time.Millisecond) // three chunks' time late
		}
	}
	want := time.Duration(chunks*p.chunk()) * p.perByte
	if got := p.next.Sub(arrived); got > want+1500*time.Microsecond {
		t.Errorf("after a late wake the line's schedule is %v on, want %v: the pacer lost the time it slept late", got, want)
	}
	idle := time.Now().Add(10 * time.Millisecond)
	time.Sleep(10 * time.Millisecond)
	p.wait(1, idle, nil)
	if p.next.Before(idle) {
		t.Errorf("bytes that came after the line went idle left at %v, before they came", p.next.Sub(idle))
	}
	held := time.Now()
	time.Sleep(50 * time.Millisecond)
	p.wait(1, held, nil)
	if late := time.Since(p.next); late > maxCatchUp+5*time.Millisecond {
		t.Errorf("bytes held back 50 ms may leave %v behind the line's time: a burst", late)
	}
}
