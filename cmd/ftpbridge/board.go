package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.bug.st/serial"
)

// openPort opens the serial device at path at baud (115200 when 0), 8N1,
// without moving DTR or RTS: on many ESP boards those lines reset the chip
// or put it into its bootloader. It is the only place ftpbridge opens a
// port by name.
func openPort(path string, baud int) (serial.Port, error) {
	if baud == 0 {
		baud = 115200
	}
	mode := &serial.Mode{BaudRate: baud, InitialStatusBits: &serial.ModemOutputBits{DTR: false, RTS: false}}
	port, err := serial.Open(path, mode)
	if err != nil {
		// A pty answers the modem-line ioctls with ENOTTY; the serial
		// library then fails the open, so retry without touching them.
		port, err = serial.Open(path, &serial.Mode{BaudRate: baud})
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
	}
	return port, nil
}

// boardPort finds the board's serial port again after an unplug: at the
// same path, or, when the board has a USB serial number, wherever the
// system put it this time (a board replugged while its old ttyACM0 is
// still held open comes back as ttyACM1).
type boardPort struct {
	path      string
	usb       serialPort // the port's USB identity at start; no Serial: the path only
	listPorts func() ([]serialPort, error)
	exists    func(path string) bool
}

// newBoardPort remembers the USB identity of the port at path, if the
// system lists one (by its name, or by where a /dev/serial/by-id link
// points).
func newBoardPort(path string, listPorts func() ([]serialPort, error)) *boardPort {
	b := &boardPort{path: path, listPorts: listPorts, exists: deviceExists}
	ports, err := listPorts()
	if err != nil {
		return b
	}
	want := resolve(path)
	for _, p := range ports {
		if p.Name == path || resolve(p.Name) == want {
			b.usb = p
			break
		}
	}
	return b
}

// locate returns where the board's port is now; false while it is away.
func (b *boardPort) locate() (string, bool) {
	if b.exists(b.path) {
		return b.path, true
	}
	if b.usb.Serial == "" {
		return "", false
	}
	ports, err := b.listPorts()
	if err != nil {
		return "", false
	}
	for _, p := range ports {
		if p.Serial == b.usb.Serial && p.VID == b.usb.VID && p.PID == b.usb.PID {
			return p.Name, true
		}
	}
	return "", false
}

// deviceExists tells whether a device node is there. Windows' COM names
// are not files; for them the open itself is the test.
func deviceExists(path string) bool {
	if !strings.ContainsAny(path, `/\`) {
		return true
	}
	_, err := os.Stat(path)
	return err == nil
}

func resolve(path string) string {
	if r, err := filepath.EvalSymlinks(path); err == nil {
		return r
	}
	return path
}
