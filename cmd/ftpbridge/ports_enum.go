//go:build !darwin || cgo

package main

import (
	"fmt"
	"strings"

	"go.bug.st/serial/enumerator"
)

// listSerialPorts lists ports with their USB details. No active USB
// probing: it opens devices, and on some boards that disturbs them.
func listSerialPorts() ([]serialPort, error) {
	details, err := enumerator.GetDetailedPortsList()
	if err != nil {
		return nil, fmt.Errorf("enumerating serial ports: %w", err)
	}
	ports := make([]serialPort, 0, len(details))
	for _, d := range details {
		if d.Name == "" {
			continue
		}
		p := serialPort{Name: d.Name}
		if d.IsUSB {
			p.VID, p.PID = strings.ToLower(d.VID), strings.ToLower(d.PID)
			p.Product, p.Serial = d.Product, d.SerialNumber
		}
		ports = append(ports, p)
	}
	return ports, nil
}
