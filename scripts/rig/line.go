package rig

import (
	"sync"
	"time"
)

// rxBuffer is a board's receive buffer: the host's bytes wait here until the
// firmware takes them. A UART's buffer is a ring filled by an interrupt
// handler, which drops what does not fit while the firmware is too busy to
// drain it; a USB device's buffer instead holds the host back (the endpoint
// NAKs), so nothing is lost.
//
// The firmware (vmboard) takes bytes in bursts and keeps the ones its
// program has not read yet; those still occupy the board's buffer. It
// reports how many it holds whenever the board stops reading for a while
// (it starts an exec, answers the host, or works for the board's own time),
// and they count against the limit until it next takes bytes. Between
// reports they count as read: the VM reads at the host's speed, and a host
// that stalls it for a moment (another process scheduled) must not make the
// board lose bytes a real one would have kept.
type rxBuffer struct {
	mu      sync.Mutex
	ready   *sync.Cond // data arrived, room freed, or the buffer closed
	data    []byte
	limit   int  // bytes the board's buffer holds; 0: unbounded
	block   bool // a full buffer holds the sender back instead of dropping
	held    int  // taken by the firmware, not yet read by its program
	intr    int  // the interrupt character as the firmware last reported it; -1: off
	pending bool // an interrupt character arrived while the buffer was full
	tick    time.Duration
	epoch   time.Time
	dropped int64
	closed  bool
}

// newRxBuffer makes a buffer holding limit bytes (0: unbounded). With block
// set, a full buffer holds the sender back; otherwise it drops. A positive
// tick makes a firmware that found the buffer empty look again only on
// that tick, counted from now (the ESP32's FreeRTOS tick, see profiles.go).
func newRxBuffer(limit int, block bool, tick time.Duration) *rxBuffer {
	b := &rxBuffer{limit: limit, block: block, intr: -1, tick: tick, epoch: time.Now()}
	b.ready = sync.NewCond(&b.mu)
	return b
}

// room is what the buffer can still take; the caller holds mu.
func (b *rxBuffer) room() int {
	if b.limit <= 0 {
		return 1 << 30
	}
	return max(b.limit-len(b.data)-b.held, 0)
}

// push stores p as a UART's interrupt handler does and returns how many
// bytes did not fit. An interrupt character that does not fit is not lost:
// the handler acts on it before it would go into the ring.
func (b *rxBuffer) push(p []byte) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return len(p)
	}
	keep := min(len(p), b.room())
	b.data = append(b.data, p[:keep]...)
	lost := 0
	for _, c := range p[keep:] {
		if int(c) == b.intr {
			b.pending = true
			continue
		}
		lost++
	}
	b.dropped += int64(lost)

	if keep > 0 || b.pending {
		b.ready.Broadcast()
	}
	return lost
}

// pushAll stores all of p, waiting for room as a USB device's flow control
// makes the host wait. It returns false if the buffer closed first.
func (b *rxBuffer) pushAll(p []byte) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(p) > 0 {
		for b.room() == 0 && !b.closed {
			b.ready.Wait()
		}
		if b.closed {
			return false
		}
		k := min(len(p), b.room())
		b.data = append(b.data, p[:k]...)
		p = p[k:]
		b.ready.Broadcast()
	}
	return true
}

// waitRoom waits until the buffer can take n more bytes: a USB device arms
// its OUT endpoint only when a whole packet fits. It returns false if the
// buffer closed first.
func (b *rxBuffer) waitRoom(n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.room() < n && !b.closed {
		b.ready.Wait()
	}
	return !b.closed
}

// take is the firmware pulling bytes: it holds none of the earlier ones any
// more (it pulls only when it has none left), waits for at least one byte,
// and returns up to n. When intr is a
// byte value (0..255) and appears among them, take returns the bytes before
// it, removes it, and reports interrupted: that is what a UART interrupt
// handler does with the keyboard-interrupt character. ok is false once the
// buffer is closed.
func (b *rxBuffer) take(n int, intr int) (p []byte, interrupted, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.held = 0
	b.intr = intr
	b.ready.Broadcast()
	waited := false
	for len(b.data) == 0 && !b.pending && !b.closed {
		waited = true
		b.ready.Wait()
	}
	if waited && b.tick > 0 && !b.closed {
		// The firmware sleeps until its next tick and only then sees what
		// the interrupt handler stored meanwhile.
		since := time.Since(b.epoch)
		wait := b.tick - since%b.tick
		b.mu.Unlock()
		time.Sleep(wait)
		b.mu.Lock()
	}
	if b.closed {
		return nil, false, false
	}
	if b.pending {
		b.pending = false
		return nil, true, true
	}
	n = min(n, len(b.data))
	if intr >= 0 {
		for i := range n {
			if int(b.data[i]) == intr {
				p = append([]byte(nil), b.data[:i]...)
				b.data = append(b.data[:0], b.data[i+1:]...)
				b.ready.Broadcast()
				return p, true, true
			}
		}
	}
	p = append([]byte(nil), b.data[:n]...)
	b.data = append(b.data[:0], b.data[n:]...)
	b.ready.Broadcast()
	return p, false, true
}

// pollInterrupt records what the firmware holds and removes the first intr
// byte without waiting, as the UART interrupt handler would have on arrival.
func (b *rxBuffer) pollInterrupt(intr, held int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.setHeldLocked(held)
	b.intr = intr
	if intr < 0 {
		return false
	}
	if b.pending {
		b.pending = false
		return true
	}
	for i, c := range b.data {
		if int(c) == intr {
			b.data = append(b.data[:i], b.data[i+1:]...)
			return true
		}
	}
	return false
}

// setHeld records how many bytes the firmware holds unread.
func (b *rxBuffer) setHeld(held int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.setHeldLocked(held)
}

func (b *rxBuffer) setHeldLocked(held int) {
	if held != b.held {
		b.held = max(held, 0)
		b.ready.Broadcast()
	}
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

// usbFrame is a full-speed USB frame: the host schedules bulk transfers in
// 1 ms frames.
const usbFrame = time.Millisecond

// cdcPacket is a full-speed bulk endpoint's largest packet.
const cdcPacket = 64

// pacer holds a byte stream to a line rate. It schedules on an absolute
// clock, so sleeping longer than asked (timer slack) is made up later and the
// average rate stays exact.
type pacer struct {
	perByte time.Duration // 0: unthrottled
	// frame, if set, makes a line that was idle start again only at the next
	// frame boundary, as bytes a host writes to a USB adapter leave in the
	// next USB frame.
	frame time.Duration
	// packet, if set, makes the line a USB CDC endpoint: at most packet
	// bytes each frame.
	packet int
	epoch  time.Time
	next   time.Time
}

func newPacer(baud int) *pacer {
	if baud <= 0 {
		return &pacer{epoch: time.Now()}
	}
	// 8N1: ten bit times a byte.
	return &pacer{perByte: time.Duration(int64(time.Second) * 10 / int64(baud)), epoch: time.Now()}
}

// newCDCPacer paces a USB CDC endpoint: one packet each frame.
func newCDCPacer() *pacer {
	return &pacer{frame: usbFrame, packet: cdcPacket, epoch: time.Now()}
}

// chunk is how many bytes to release at once: a packet on USB, else about
// a millisecond's worth, so a reader sees a steady trickle rather than
// bursts.
func (p *pacer) chunk() int {
	if p.packet > 0 {
		return p.packet
	}
	if p.perByte == 0 {
		return 1 << 16
	}
	return max(1, int(time.Millisecond/p.perByte))
}

// frameAfter is the first frame boundary at or after t.
func (p *pacer) frameAfter(t time.Time) time.Time {
	d := t.Sub(p.epoch)
	if r := d % p.frame; r != 0 {
		d += p.frame - r
	}
	return p.epoch.Add(d)
}

// maxCatchUp is the most time a pacer that woke late makes up for.
const maxCatchUp = 10 * time.Millisecond

// queuedSlack is how late after the line's last byte a pacer may come back
// for bytes that were already waiting and still count the line as busy all
// along: the time its own goroutine took to be scheduled and to hand the
// last bytes on.
const queuedSlack = time.Millisecond

// wait blocks until n more bytes, which came to the line at arrived, may
// cross it, or stop is closed. The line was idle only if they came after
// it could have sent them: a pacer that merely woke late (the host's
// scheduler, under load) makes up for it instead of losing the time. A
// zero arrived says the bytes were already waiting when the line came back
// for more: a UART sends waiting bytes back to back, so the line stays
// busy unless the pacer came back more than queuedSlack late.
func (p *pacer) wait(n int, arrived time.Time, stop <-chan struct{}) bool {
	if p.perByte == 0 && p.frame == 0 {
		return true
	}
	if arrived.IsZero() {
		arrived = time.Now()
		if !p.next.Before(arrived.Add(-queuedSlack)) {
			arrived = p.next
		}
	}
	if p.next.Before(arrived) {
		// An idle line does not bank credit for a later burst.
		p.next = arrived
		if p.frame > 0 {
			p.next = p.frameAfter(arrived)
		}
	}
	if now := time.Now(); p.next.Before(now.Add(-maxCatchUp)) {
		// Bytes held back longer (a stall, a long descheduling) leave at
		// the line's rate from now, not in one burst.
		p.next = now.Add(-maxCatchUp)
	}
	if !sleepUntil(p.next, stop) {
		return false
	}
	if p.packet > 0 {
		p.next = p.next.Add(p.frame)
	} else {
		p.next = p.next.Add(time.Duration(n) * p.perByte)
	}
	return true
}

// sleepUntil waits for t, or returns false when stop closes first.
func sleepUntil(t time.Time, stop <-chan struct{}) bool {
	d := time.Until(t)
	if d <= 0 {
		select {
		case <-stop:
			return false
		default:
			return true
		}
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-stop:
		return false
	}
}

// adapter is a USB-serial adapter's receive side as FTDI documents it
// (application note AN232B-04, "Small Amounts of Data and End of Buffer
// Conditions"): bytes from the board collect in a buffer that goes to the
// host when a packet is full (64 bytes: 2 status bytes and 62 of data), or
// when the latency timer expires. The timer measures the time since the
// chip last sent anything to the host and restarts with every packet; when
// it expires the chip sends its status bytes and whatever data it holds,
// even none, so on an idle line it runs as a clock ticking every latency.
// CP210x and CH340 adapters, and FTDI ones under Linux's ftdi_sio, hold
// bytes about 1-2 ms; FTDI's Windows and macOS drivers leave 16 ms.
type adapter struct {
	latency time.Duration
	buf     []byte
	last    time.Time // when the chip last sent a packet
	since   time.Time // when the oldest byte it holds arrived
}

// ftdiPayload is an FTDI packet's data: 64 bytes less 2 status bytes.
const ftdiPayload = 62

func newAdapter(latency time.Duration) *adapter {
	return &adapter{latency: latency, last: time.Now()}
}

// add takes bytes from the board's UART at now and returns the packets the
// adapter sends at once: every full one.
func (a *adapter) add(p []byte, now time.Time) [][]byte {
	if len(a.buf) == 0 {
		a.since = now
	}
	a.buf = append(a.buf, p...)
	var out [][]byte
	for len(a.buf) >= ftdiPayload {
		out = append(out, append([]byte(nil), a.buf[:ftdiPayload]...))
		a.buf = a.buf[ftdiPayload:]
		a.last = now
		a.since = now
	}
	return out
}

// due is when the latency timer sends what the adapter holds: its first
// expiry after the oldest held byte arrived. Zero when it holds nothing.
func (a *adapter) due() time.Time {
	if len(a.buf) == 0 {
		return time.Time{}
	}
	ticks := a.since.Sub(a.last)/a.latency + 1
	return a.last.Add(ticks * a.latency)
}

// expire is the latency timer firing at t: the adapter sends what it holds.
func (a *adapter) expire(t time.Time) []byte {
	p := a.buf
	a.buf = nil
	a.last = t
	return p
}
