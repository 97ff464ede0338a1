package rig

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// rxSpec is the board's receive buffer: its size, whether a full one holds
// the host back (USB) or drops (UART), and the firmware's input tick.
type rxSpec struct {
	limit int
	block bool
	tick  time.Duration
}

// vmChip runs the MicroPython WebAssembly VM under Node (scripts/vmboard).
// Each power-on is a fresh Node process: a hard reset loses all Python state,
// and the files stay because they live in the host root directory.
type vmChip struct {
	node     string // path to the node binary
	script   string // vmboard.mjs
	profile  Profile
	root     string
	running  bool
	rx       rxSpec
	heap     int  // free heap after boot; 0: the VM's own
	flash    bool // flash writes take time
	cpu      bool // Python takes the chip's time
	clockMHz int  // the chip's clock, with cpu; 0: its own
	log      *slog.Logger
	logLine  func(string)
	tx       chan<- []byte
	stop     <-chan struct{} // closed when the rig shuts down

	mu   sync.Mutex
	proc *vmProc
}

type vmProc struct {
	cmd  *exec.Cmd
	rx   *rxBuffer
	done chan struct{} // closed when the process has exited and its pipes are drained
}

func (c *vmChip) powerOn() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc != nil {
		return nil
	}
	args := []string{c.script, "--profile", string(c.profile), "--root", c.root}
	if c.running {
		args = append(args, "--running")
	}
	if c.heap > 0 {
		args = append(args, "--heap", strconv.Itoa(c.heap))
	}
	if c.flash {
		args = append(args, "--flash")
	}
	if c.cpu {
		args = append(args, "--cpu")
	}
	if c.clockMHz > 0 {
		args = append(args, "--clock", strconv.Itoa(c.clockMHz))
	}
	cmd := exec.Command(c.node, args...)
	// Our own process group, so a Ctrl-C at the terminal reaches boardsim
	// only, and boardsim decides when the board dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}

	replyR, replyW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("rig: pipe: %w", err)
	}
	reqR, reqW, err := os.Pipe()
	if err != nil {
		replyR.Close()
		replyW.Close()
		return fmt.Errorf("rig: pipe: %w", err)
	}
	cmd.Stdin = replyR
	cmd.ExtraFiles = []*os.File{reqW}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("rig: stdout pipe: %w", err)
	}
	shrinkPipe(stdout)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("rig: stderr pipe: %w", err)
	}
	if err := cmd.Start(); err != nil {
		replyR.Close()
		replyW.Close()
		reqR.Close()
		reqW.Close()
		return fmt.Errorf("rig: start %s: %w", c.node, err)
	}
	// The child holds its own copies now.
	replyR.Close()
	reqW.Close()

	p := &vmProc{cmd: cmd, rx: newRxBuffer(c.rx.limit, c.rx.block, c.rx.tick), done: make(chan struct{})}
	c.proc = p
	c.log.Debug("vm board powered on", "pid", cmd.Process.Pid, "profile", c.profile)

	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		defer replyW.Close()
		defer reqR.Close()
		serveRequests(reqR, replyW, p.rx)
	}()
	go func() {
		defer wg.Done()
		copyChunks(stdout, c.tx, c.stop)
	}()
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			c.logLine(sc.Text())
		}
	}()
	go func() {
		wg.Wait()
		err := cmd.Wait()
		c.log.Debug("vm board process ended", "pid", cmd.Process.Pid, "err", err)
		close(p.done)
	}()
	return nil
}

func (c *vmChip) powerOff() {
	c.mu.Lock()
	p := c.proc
	c.proc = nil
	c.mu.Unlock()
	if p == nil {
		return
	}
	p.rx.close()
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (c *vmChip) reset() error {
	c.powerOff()
	return c.powerOn()
}

func (c *vmChip) receive(b []byte) bool {
	c.mu.Lock()
	p := c.proc
	c.mu.Unlock()
	if p == nil {
		return false
	}
	if c.rx.block {
		return p.rx.pushAll(b)
	}
	if n := p.rx.push(b); n > 0 {
		c.log.Debug("receive buffer full: bytes dropped", "dropped", n)
	}
	return true
}

func (c *vmChip) waitRoom(n int) bool {
	c.mu.Lock()
	p := c.proc
	c.mu.Unlock()
	if p == nil {
		return false
	}
	return p.rx.waitRoom(n)
}

func (c *vmChip) dropped() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil {
		return 0
	}
	return c.proc.rx.droppedBytes()
}

func (c *vmChip) close() { c.powerOff() }

// serveRequests answers the firmware's pulls on its receive buffer
// (scripts/vmboard/PROTOCOL.md) until either side goes away.
func serveRequests(req io.Reader, reply io.Writer, rx *rxBuffer) {
	br := bufio.NewReader(req)
	var hdr [6]byte
	for {
		op, err := br.ReadByte()
		if err != nil {
			return
		}
		var data []byte
		var interrupted bool
		switch op {
		case 'R':
			if _, err := io.ReadFull(br, hdr[:6]); err != nil {
				return
			}
			n := int(binary.LittleEndian.Uint32(hdr[0:4]))
			intr := int(int16(binary.LittleEndian.Uint16(hdr[4:6])))
			var ok bool
			data, interrupted, ok = rx.take(max(n, 1), intr)
			if !ok {
				return
			}
		case 'P':
			if _, err := io.ReadFull(br, hdr[:6]); err != nil {
				return
			}
			intr := int(int16(binary.LittleEndian.Uint16(hdr[0:2])))
			held := int(binary.LittleEndian.Uint32(hdr[2:6]))
			interrupted = rx.pollInterrupt(intr, held)
		case 'H':
			// What the firmware holds unread, before it goes busy: no reply.
			if _, err := io.ReadFull(br, hdr[:4]); err != nil {
				return
			}
			rx.setHeld(int(binary.LittleEndian.Uint32(hdr[0:4])))
			continue
		default:
			return
		}
		out := make([]byte, 5, 5+len(data))
		if interrupted {
			out[0] = 1
		}
		binary.LittleEndian.PutUint32(out[1:5], uint32(len(data)))
		out = append(out, data...)
		if _, err := reply.Write(out); err != nil {
			return
		}
	}
}

// txChunk and txQueue bound what the board's output holds between the
// board and the line's pacer: with the pipe from Node shrunk to a page
// (shrinkPipe), about 5 KB, under half a second at 115200 baud, where
// 32 KB reads queued 64 deep held minutes of a program's output after a
// Ctrl-C had stopped it.
const (
	txChunk = 256
	txQueue = 4
)

// shrinkPipe makes the pipe behind f hold one page, its least, so a board
// printing faster than the line waits for it as a UART's FIFO makes it wait.
// Where the system cannot, the pipe keeps its size: only timing suffers.
func shrinkPipe(f any) {
	sc, ok := f.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) {
		_, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, unix.Getpagesize())
	})
}

// copyChunks forwards what r yields to tx, one fresh slice per read, until r
// ends or stop is closed.
func copyChunks(r io.Reader, tx chan<- []byte, stop <-chan struct{}) {
	buf := make([]byte, txChunk)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			select {
			case tx <- append([]byte(nil), buf[:n]...):
			case <-stop:
				return
			}
		}
		if err != nil {
			return
		}
	}
}
