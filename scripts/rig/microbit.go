package rig

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// MicrobitFirmware is where Debian's firmware-microbit-micropython package
// puts the MicroPython 1.9.2 image for the BBC micro:bit.
const MicrobitFirmware = "/usr/share/firmware-microbit-micropython/firmware.hex"

// microbitFlashSize is the nRF51822's flash. The hex file also carries a UICR
// record at 0x10001014 that qemu's loader cannot place; the firmware runs
// without it.
const microbitFlashSize = 256 * 1024

// qemuChip runs the real micro:bit firmware under qemu-system-arm -M microbit.
// One qemu process lives as long as the rig: the board's files are in its
// emulated flash, so a reset or replug is a machine reset, never a new process.
type qemuChip struct {
	qemu    string
	image   string // flat flash image made from the hex file
	monPath string // qemu monitor socket
	log     *slog.Logger
	tx      chan<- []byte
	stop    <-chan struct{}

	mu    sync.Mutex
	cmd   *exec.Cmd
	stdin io.WriteCloser
	mon   net.Conn
	monRd *bufio.Reader
	done  chan struct{}
	on    bool
}

func newQemuChip(workDir string, log *slog.Logger, tx chan<- []byte, stop <-chan struct{}) (*qemuChip, error) {
	qemu, err := exec.LookPath("qemu-system-arm")
	if err != nil {
		return nil, fmt.Errorf("rig: microbit profile needs qemu-system-arm (apt-get install qemu-system-arm firmware-microbit-micropython): %w", err)
	}
	hexData, err := os.ReadFile(MicrobitFirmware)
	if err != nil {
		return nil, fmt.Errorf("rig: microbit profile needs the firmware (apt-get install firmware-microbit-micropython): %w", err)
	}
	img, err := flashImage(hexData, microbitFlashSize)
	if err != nil {
		return nil, fmt.Errorf("rig: %s: %w", MicrobitFirmware, err)
	}
	image := filepath.Join(workDir, "microbit.bin")
	if err := os.WriteFile(image, img, 0o644); err != nil {
		return nil, fmt.Errorf("rig: write flash image: %w", err)
	}
	return &qemuChip{qemu: qemu, image: image, monPath: filepath.Join(workDir, "qemu-monitor.sock"),
		log: log, tx: tx, stop: stop}, nil
}

func (c *qemuChip) start() error {
	cmd := exec.Command(c.qemu, "-M", "microbit", "-kernel", c.image,
		"-nographic", "-serial", "stdio", "-monitor", "none",
		"-chardev", "socket,id=mon,path="+c.monPath+",server=on,wait=off",
		"-mon", "chardev=mon,mode=readline")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("rig: qemu stdin: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("rig: qemu stdout: %w", err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("rig: start qemu: %w", err)
	}
	c.cmd, c.stdin, c.done = cmd, stdin, make(chan struct{})
	go func() {
		copyChunks(stdout, c.tx, c.stop)
		err := cmd.Wait()
		if err != nil && stderr.Len() > 0 {
			c.log.Debug("qemu ended", "err", err, "stderr", stderr.String())
		}
		close(c.done)
	}()
	// The monitor socket appears once qemu has set up its devices.
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.Dial("unix", c.monPath)
		if err == nil {
			c.mon, c.monRd = conn, bufio.NewReader(conn)
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rig: qemu monitor at %s: %w (qemu said %q)", c.monPath, err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, err = c.monitorReply() // greeting
	return err
}

// monitor sends one human-monitor command and waits for the next prompt.
func (c *qemuChip) monitor(command string) error {
	if c.mon == nil {
		return errors.New("rig: qemu monitor not connected")
	}
	if _, err := io.WriteString(c.mon, command+"\n"); err != nil {
		return fmt.Errorf("rig: qemu monitor %q: %w", command, err)
	}
	_, err := c.monitorReply()
	return err
}

func (c *qemuChip) monitorReply() (string, error) {
	_ = c.mon.SetReadDeadline(time.Now().Add(10 * time.Second))
	var sb strings.Builder
	for !strings.HasSuffix(sb.String(), "(qemu) ") {
		b, err := c.monRd.ReadByte()
		if err != nil {
			return sb.String(), fmt.Errorf("rig: qemu monitor: %w (got %q)", err, sb.String())
		}
		sb.WriteByte(b)
	}
	return sb.String(), nil
}

func (c *qemuChip) powerOn() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.on {
		return nil
	}
	if c.cmd == nil {
		if err := c.start(); err != nil {
			return err
		}
	} else {
		if err := c.monitor("system_reset"); err != nil {
			return err
		}
		if err := c.monitor("cont"); err != nil {
			return err
		}
	}
	c.on = true
	return nil
}

// powerOff halts the CPU; the flash (the board's files) stays as it was.
func (c *qemuChip) powerOff() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.on {
		return
	}
	if err := c.monitor("stop"); err != nil {
		c.log.Debug("qemu stop failed", "err", err)
	}
	c.on = false
}

func (c *qemuChip) reset() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.monitor("system_reset")
}

func (c *qemuChip) receive(b []byte) bool {
	c.mu.Lock()
	on, w := c.on, c.stdin
	c.mu.Unlock()
	if !on || w == nil {
		return false
	}
	_, err := w.Write(b)
	return err == nil
}

// waitRoom: qemu's UART model takes what it gets; its firmware's own ring
// drops what does not fit.
func (c *qemuChip) waitRoom(int) bool { return true }

func (c *qemuChip) dropped() int64 { return 0 }

func (c *qemuChip) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return
	}
	if c.mon != nil {
		c.mon.Close()
	}
	c.stdin.Close()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(3 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	c.cmd = nil
}

// flashImage turns an Intel HEX file into a flat image of the address space
// below size, erased flash (0xFF) in the gaps the file leaves.
func flashImage(hexData []byte, size int) ([]byte, error) {
	img := bytes.Repeat([]byte{0xFF}, size)
	var base uint32
	used := 0
	for i, line := range strings.Split(string(hexData), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if line[0] != ':' {
			return nil, fmt.Errorf("line %d: not an Intel HEX record", i+1)
		}
		rec, err := hex.DecodeString(line[1:])
		if err != nil || len(rec) < 5 || len(rec) != int(rec[0])+5 {
			return nil, fmt.Errorf("line %d: malformed record", i+1)
		}
		var sum byte
		for _, b := range rec {
			sum += b
		}
		if sum != 0 {
			return nil, fmt.Errorf("line %d: bad checksum", i+1)
		}
		n, addr, typ, data := int(rec[0]), uint32(rec[1])<<8|uint32(rec[2]), rec[3], rec[4:4+int(rec[0])]
		switch typ {
		case 0x00:
			a := base + addr
			if int(a)+n <= size {
				copy(img[a:], data)
				used = max(used, int(a)+n)
			}
		case 0x01:
			if used == 0 {
				return nil, errors.New("no data below the flash size")
			}
			// Only up to the last byte the file sets: qemu copies the whole
			// image back into flash on every reset, and the filesystem
			// pages above the firmware must survive that.
			return img[:used], nil
		case 0x02:
			base = (uint32(data[0])<<8 | uint32(data[1])) << 4
		case 0x04:
			base = (uint32(data[0])<<8 | uint32(data[1])) << 16
		}
	}
	return nil, errors.New("no end-of-file record")
}
