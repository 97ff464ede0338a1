package main

import (
	"os"
	"path/filepath"
	"strings"
)

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
