package rig

import (
	"sync"
	"time"
)

// rxBuffer is a board's receive buffer: the host's bytes wait here until the
// firmware takes them. A bounded buffer drops what does not fit, as a UART's
// ring buffer does when the firmware is too busy to drain it.
type rxBuffer struct {
	mu      sync.Mutex
	ready   *sync.Cond
	data    []byte
	limit   int // 0: unbounded
	dropped int64
	closed  bool
}

func newRxBuffer(limit int) *rxBuffer {
	b := &rxBuffer{limit: limit}
	b.ready = sync.NewCond(&b.mu)
	return b
}

// push stores p and returns how many bytes did not fit.
func (b *rxBuffer) push(p []byte) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return len(p)
	}
	keep := len(p)
	if b.limit > 0 && len(b.data)+keep > b.limit {
		keep = max(b.limit-len(b.data), 0)
	}
	b.data = append(b.data, p[:keep]...)
	b.dropped += int64(len(p) - keep)
	if keep > 0 {
		b.ready.Broadcast()
	}
	return len(p) - keep
}

// take waits for at least one byte and returns up to n of them. When intr is
// a byte value (0..255) and appears among them, take returns the bytes before
// it, removes it, and reports interrupted: that is what a UART interrupt
// handler does with the keyboard-interrupt character. ok is false once the
// buffer is closed.
func (b *rxBuffer) take(n int, intr int) (p []byte, interrupted, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.data) == 0 && !b.closed {
		b.ready.Wait()
	}
	if b.closed {
		return nil, false, false
	}
	n = min(n, len(b.data))
	if intr >= 0 {
		for i := range n {
			if int(b.data[i]) == intr {
				p = append([]byte(nil), b.data[:i]...)
				b.data = append(b.data[:0], b.data[i+1:]...)
				return p, true, true
			}
		}
	}
	p = append([]byte(nil), b.data[:n]...)
	b.data = append(b.data[:0], b.data[n:]...)
	return p, false, true
}

// pollInterrupt removes the first intr byte without waiting, as the UART
// interrupt handler would have on arrival.
func (b *rxBuffer) pollInterrupt(intr int) bool {
	if intr < 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, c := range b.data {
		if int(c) == intr {
			b.data = append(b.data[:i], b.data[i+1:]...)
			return true
		}
	}
	return false
}

func (b *rxBuffer) close() {
	b.mu.Lock()
	b.closed = true
	b.ready.Broadcast()
	b.mu.Unlock()
}

func (b *rxBuffer) droppedBytes() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped
}

// pacer holds a byte stream to a line rate. It schedules on an absolute
// clock, so sleeping longer than asked (timer slack) is made up later and the
// average rate stays exact.
type pacer struct {
	perByte time.Duration // 0: unthrottled
	next    time.Time
}

func newPacer(baud int) *pacer {
	if baud <= 0 {
		return &pacer{}
	}
	// 8N1: ten bit times a byte.
	return &pacer{perByte: time.Duration(int64(time.Second) * 10 / int64(baud))}
}

// chunk is how many bytes to release at once: about a millisecond's worth,
// so a reader sees a steady trickle rather than bursts.
func (p *pacer) chunk() int {
	if p.perByte == 0 {
		return 1 << 16
	}
	return max(1, int(time.Millisecond/p.perByte))
}

// wait blocks until n more bytes may cross the line, or stop is closed.
func (p *pacer) wait(n int, stop <-chan struct{}) bool {
	if p.perByte == 0 {
		return true
	}
	now := time.Now()
	if p.next.Before(now) {
		// An idle line does not bank credit for a later burst.
		p.next = now
	}
	if d := p.next.Sub(now); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-stop:
			t.Stop()
			return false
		}
	}
	p.next = p.next.Add(time.Duration(n) * p.perByte)
	return true
}
