//go:build darwin && !cgo

package main

import (
	"fmt"

	"go.bug.st/serial"
)

// listSerialPorts lists port names only: go.bug.st/serial's enumerator
// needs cgo on macOS (IOKit), and a cross-build from Linux has none.
// nameFamily guesses boards from the names macOS gives USB serial devices.
func listSerialPorts() ([]serialPort, error) {
	names, err := serial.GetPortsList()
	if err != nil {
		return nil, fmt.Errorf("listing serial ports: %w", err)
	}
	ports := make([]serialPort, 0, len(names))
	for _, n := range names {
		ports = append(ports, serialPort{Name: n})
	}
	return ports, nil
}
